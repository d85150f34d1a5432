//! The search parameters of every supported resource type (a subset of FHIR R4's, with the
//! same names and meanings), as element paths the indexer follows.
//!
//! A path is a chain of element names separated by `.`; arrays are walked transparently, choice
//! elements are spelled out (`effectiveDateTime|effectivePeriod`). A reference parameter with
//! target types only indexes references to those types.

/// The type of a search parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Case- and accent-insensitive prefix match on text.
    String,
    /// A code, optionally with its system (`system|code`).
    Token,
    /// A reference to another resource.
    Reference,
    /// A date, dateTime, instant or Period.
    Date,
    /// A plain number.
    Number,
    /// A Quantity: number with system and unit.
    Quantity,
    /// A URI, matched exactly.
    Uri,
}

impl Kind {
    /// The FHIR name of the type, as the CapabilityStatement lists it.
    pub fn fhir_name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Token => "token",
            Kind::Reference => "reference",
            Kind::Date => "date",
            Kind::Number => "number",
            Kind::Quantity => "quantity",
            Kind::Uri => "uri",
        }
    }
}

/// One search parameter of one resource type (`*` = every type).
#[derive(Debug)]
pub struct Param {
    /// The resource type, or `*` for the parameters every type has.
    pub resource: &'static str,
    /// The parameter's name in URLs.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Element paths, `|`-separated.
    pub paths: &'static str,
    /// For references: the target types (`,`-separated), empty for any.
    pub targets: &'static str,
}

impl Param {
    /// The element paths, each split into its steps.
    pub fn paths(&self) -> impl Iterator<Item = std::str::Split<'static, char>> {
        self.paths.split('|').map(|p| p.split('.'))
    }

    /// The allowed target types of a reference parameter (none = any).
    pub fn targets(&self) -> impl Iterator<Item = &'static str> {
        self.targets.split(',').filter(|t| !t.is_empty())
    }

    /// True when a reference to `target_type` is indexed by this parameter.
    pub fn accepts_target(&self, target_type: &str) -> bool {
        self.targets.is_empty() || self.targets().any(|t| t == target_type)
    }
}

/// Finds the parameter `name` of `resource` (its own, or one every type has).
pub fn find(resource: &str, name: &str) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.name == name && (p.resource == resource || p.resource == "*"))
}

/// The parameters of `resource`, the common ones included.
pub fn of_type(resource: &str) -> impl Iterator<Item = &'static Param> {
    PARAMS
        .iter()
        .filter(move |p| p.resource == resource || p.resource == "*")
}

const fn p(
    resource: &'static str,
    name: &'static str,
    kind: Kind,
    paths: &'static str,
    targets: &'static str,
) -> Param {
    Param {
        resource,
        name,
        kind,
        paths,
        targets,
    }
}

use Kind::{
    Date as D, Number as N, Quantity as Q, Reference as R, String as S, Token as T, Uri as U,
};

const ADDRESS: &str = "address";
const PATIENT: &str = "Patient";

/// The search parameters (besides `_id` and `_lastUpdated`, which every type has).
pub const PARAMS: &[Param] = &[
    p("*", "_tag", T, "meta.tag", ""),
    p("*", "_profile", U, "meta.profile", ""),
    p("*", "_security", T, "meta.security", ""),
    p("*", "_source", U, "meta.source", ""),
    // Patient
    p("Patient", "identifier", T, "identifier", ""),
    p("Patient", "name", S, "name", ""),
    p("Patient", "family", S, "name.family", ""),
    p("Patient", "given", S, "name.given", ""),
    p("Patient", "birthdate", D, "birthDate", ""),
    p("Patient", "gender", T, "gender", ""),
    p("Patient", "active", T, "active", ""),
    p("Patient", "address", S, ADDRESS, ""),
    p("Patient", "address-city", S, "address.city", ""),
    p("Patient", "address-state", S, "address.state", ""),
    p("Patient", "address-postalcode", S, "address.postalCode", ""),
    p("Patient", "address-country", S, "address.country", ""),
    p("Patient", "telecom", T, "telecom", ""),
    p("Patient", "phone", T, "telecom", ""),
    p("Patient", "email", T, "telecom", ""),
    p(
        "Patient",
        "deceased",
        T,
        "deceasedBoolean|deceasedDateTime",
        "",
    ),
    p("Patient", "death-date", D, "deceasedDateTime", ""),
    p(
        "Patient",
        "general-practitioner",
        R,
        "generalPractitioner",
        "",
    ),
    p("Patient", "organization", R, "managingOrganization", ""),
    p("Patient", "link", R, "link.other", ""),
    p("Patient", "language", T, "communication.language", ""),
    // Practitioner
    p("Practitioner", "identifier", T, "identifier", ""),
    p("Practitioner", "name", S, "name", ""),
    p("Practitioner", "family", S, "name.family", ""),
    p("Practitioner", "given", S, "name.given", ""),
    p("Practitioner", "gender", T, "gender", ""),
    p("Practitioner", "active", T, "active", ""),
    p("Practitioner", "address", S, ADDRESS, ""),
    p("Practitioner", "telecom", T, "telecom", ""),
    // PractitionerRole
    p("PractitionerRole", "identifier", T, "identifier", ""),
    p("PractitionerRole", "practitioner", R, "practitioner", ""),
    p("PractitionerRole", "organization", R, "organization", ""),
    p("PractitionerRole", "role", T, "code", ""),
    p("PractitionerRole", "specialty", T, "specialty", ""),
    p("PractitionerRole", "location", R, "location", ""),
    p("PractitionerRole", "active", T, "active", ""),
    // Organization
    p("Organization", "identifier", T, "identifier", ""),
    p("Organization", "name", S, "name|alias", ""),
    p("Organization", "type", T, "type", ""),
    p("Organization", "active", T, "active", ""),
    p("Organization", "address", S, ADDRESS, ""),
    p("Organization", "address-city", S, "address.city", ""),
    p("Organization", "partof", R, "partOf", ""),
    // Location
    p("Location", "identifier", T, "identifier", ""),
    p("Location", "name", S, "name|alias", ""),
    p("Location", "address", S, ADDRESS, ""),
    p("Location", "address-city", S, "address.city", ""),
    p("Location", "type", T, "type", ""),
    p("Location", "status", T, "status", ""),
    p("Location", "organization", R, "managingOrganization", ""),
    p("Location", "partof", R, "partOf", ""),
    // RelatedPerson
    p("RelatedPerson", "identifier", T, "identifier", ""),
    p("RelatedPerson", "name", S, "name", ""),
    p("RelatedPerson", "patient", R, "patient", PATIENT),
    p("RelatedPerson", "relationship", T, "relationship", ""),
    // Encounter
    p("Encounter", "identifier", T, "identifier", ""),
    p("Encounter", "status", T, "status", ""),
    p("Encounter", "class", T, "class", ""),
    p("Encounter", "type", T, "type", ""),
    p("Encounter", "subject", R, "subject", ""),
    p("Encounter", "patient", R, "subject", PATIENT),
    p("Encounter", "date", D, "period", ""),
    p("Encounter", "participant", R, "participant.individual", ""),
    p(
        "Encounter",
        "practitioner",
        R,
        "participant.individual",
        "Practitioner",
    ),
    p("Encounter", "service-provider", R, "serviceProvider", ""),
    p("Encounter", "reason-code", T, "reasonCode", ""),
    p("Encounter", "reason-reference", R, "reasonReference", ""),
    p("Encounter", "location", R, "location.location", ""),
    p("Encounter", "diagnosis", R, "diagnosis.condition", ""),
    p("Encounter", "part-of", R, "partOf", ""),
    // Observation
    p("Observation", "identifier", T, "identifier", ""),
    p("Observation", "status", T, "status", ""),
    p("Observation", "category", T, "category", ""),
    p("Observation", "code", T, "code", ""),
    p("Observation", "combo-code", T, "code|component.code", ""),
    p("Observation", "component-code", T, "component.code", ""),
    p("Observation", "subject", R, "subject", ""),
    p("Observation", "patient", R, "subject", PATIENT),
    p("Observation", "encounter", R, "encounter", ""),
    p(
        "Observation",
        "date",
        D,
        "effectiveDateTime|effectivePeriod|effectiveInstant",
        "",
    ),
    p("Observation", "value-quantity", Q, "valueQuantity", ""),
    p(
        "Observation",
        "value-concept",
        T,
        "valueCodeableConcept|valueBoolean",
        "",
    ),
    p("Observation", "value-string", S, "valueString", ""),
    p(
        "Observation",
        "value-date",
        D,
        "valueDateTime|valuePeriod",
        "",
    ),
    p(
        "Observation",
        "component-value-quantity",
        Q,
        "component.valueQuantity",
        "",
    ),
    p(
        "Observation",
        "component-value-concept",
        T,
        "component.valueCodeableConcept",
        "",
    ),
    p("Observation", "performer", R, "performer", ""),
    p("Observation", "based-on", R, "basedOn", ""),
    p("Observation", "derived-from", R, "derivedFrom", ""),
    p("Observation", "has-member", R, "hasMember", ""),
    p("Observation", "part-of", R, "partOf", ""),
    p("Observation", "specimen", R, "specimen", ""),
    p("Observation", "device", R, "device", ""),
    p("Observation", "focus", R, "focus", ""),
    p("Observation", "method", T, "method", ""),
    p(
        "Observation",
        "data-absent-reason",
        T,
        "dataAbsentReason",
        "",
    ),
    // Condition
    p("Condition", "identifier", T, "identifier", ""),
    p("Condition", "clinical-status", T, "clinicalStatus", ""),
    p(
        "Condition",
        "verification-status",
        T,
        "verificationStatus",
        "",
    ),
    p("Condition", "category", T, "category", ""),
    p("Condition", "severity", T, "severity", ""),
    p("Condition", "code", T, "code", ""),
    p("Condition", "body-site", T, "bodySite", ""),
    p("Condition", "subject", R, "subject", ""),
    p("Condition", "patient", R, "subject", PATIENT),
    p("Condition", "encounter", R, "encounter", ""),
    p(
        "Condition",
        "onset-date",
        D,
        "onsetDateTime|onsetPeriod",
        "",
    ),
    p(
        "Condition",
        "abatement-date",
        D,
        "abatementDateTime|abatementPeriod",
        "",
    ),
    p("Condition", "recorded-date", D, "recordedDate", ""),
    p("Condition", "asserter", R, "asserter", ""),
    p("Condition", "evidence", T, "evidence.code", ""),
    p("Condition", "stage", T, "stage.summary", ""),
    // Procedure
    p("Procedure", "identifier", T, "identifier", ""),
    p("Procedure", "status", T, "status", ""),
    p("Procedure", "category", T, "category", ""),
    p("Procedure", "code", T, "code", ""),
    p("Procedure", "subject", R, "subject", ""),
    p("Procedure", "patient", R, "subject", PATIENT),
    p("Procedure", "encounter", R, "encounter", ""),
    p(
        "Procedure",
        "date",
        D,
        "performedDateTime|performedPeriod",
        "",
    ),
    p("Procedure", "performer", R, "performer.actor", ""),
    p("Procedure", "reason-code", T, "reasonCode", ""),
    p("Procedure", "reason-reference", R, "reasonReference", ""),
    p("Procedure", "location", R, "location", ""),
    p("Procedure", "based-on", R, "basedOn", ""),
    p("Procedure", "part-of", R, "partOf", ""),
    // Medication
    p("Medication", "identifier", T, "identifier", ""),
    p("Medication", "code", T, "code", ""),
    p("Medication", "status", T, "status", ""),
    // MedicationRequest
    p("MedicationRequest", "identifier", T, "identifier", ""),
    p("MedicationRequest", "status", T, "status", ""),
    p("MedicationRequest", "intent", T, "intent", ""),
    p("MedicationRequest", "category", T, "category", ""),
    p("MedicationRequest", "priority", T, "priority", ""),
    p(
        "MedicationRequest",
        "code",
        T,
        "medicationCodeableConcept",
        "",
    ),
    p(
        "MedicationRequest",
        "medication",
        R,
        "medicationReference",
        "",
    ),
    p("MedicationRequest", "subject", R, "subject", ""),
    p("MedicationRequest", "patient", R, "subject", PATIENT),
    p("MedicationRequest", "encounter", R, "encounter", ""),
    p("MedicationRequest", "authoredon", D, "authoredOn", ""),
    p("MedicationRequest", "requester", R, "requester", ""),
    p(
        "MedicationRequest",
        "intended-performer",
        R,
        "performer",
        "",
    ),
    // MedicationAdministration
    p(
        "MedicationAdministration",
        "identifier",
        T,
        "identifier",
        "",
    ),
    p("MedicationAdministration", "status", T, "status", ""),
    p(
        "MedicationAdministration",
        "code",
        T,
        "medicationCodeableConcept",
        "",
    ),
    p(
        "MedicationAdministration",
        "medication",
        R,
        "medicationReference",
        "",
    ),
    p("MedicationAdministration", "subject", R, "subject", ""),
    p("MedicationAdministration", "patient", R, "subject", PATIENT),
    p("MedicationAdministration", "context", R, "context", ""),
    p(
        "MedicationAdministration",
        "effective-time",
        D,
        "effectiveDateTime|effectivePeriod",
        "",
    ),
    p(
        "MedicationAdministration",
        "performer",
        R,
        "performer.actor",
        "",
    ),
    p("MedicationAdministration", "request", R, "request", ""),
    // AllergyIntolerance
    p("AllergyIntolerance", "identifier", T, "identifier", ""),
    p(
        "AllergyIntolerance",
        "clinical-status",
        T,
        "clinicalStatus",
        "",
    ),
    p(
        "AllergyIntolerance",
        "verification-status",
        T,
        "verificationStatus",
        "",
    ),
    p("AllergyIntolerance", "type", T, "type", ""),
    p("AllergyIntolerance", "category", T, "category", ""),
    p("AllergyIntolerance", "criticality", T, "criticality", ""),
    p(
        "AllergyIntolerance",
        "code",
        T,
        "code|reaction.substance",
        "",
    ),
    p(
        "AllergyIntolerance",
        "manifestation",
        T,
        "reaction.manifestation",
        "",
    ),
    p("AllergyIntolerance", "severity", T, "reaction.severity", ""),
    p("AllergyIntolerance", "patient", R, "patient", PATIENT),
    p("AllergyIntolerance", "recorder", R, "recorder", ""),
    p("AllergyIntolerance", "asserter", R, "asserter", ""),
    p("AllergyIntolerance", "date", D, "recordedDate", ""),
    p(
        "AllergyIntolerance",
        "onset",
        D,
        "onsetDateTime|onsetPeriod",
        "",
    ),
    p("AllergyIntolerance", "last-date", D, "lastOccurrence", ""),
    // DiagnosticReport
    p("DiagnosticReport", "identifier", T, "identifier", ""),
    p("DiagnosticReport", "status", T, "status", ""),
    p("DiagnosticReport", "category", T, "category", ""),
    p("DiagnosticReport", "code", T, "code", ""),
    p("DiagnosticReport", "subject", R, "subject", ""),
    p("DiagnosticReport", "patient", R, "subject", PATIENT),
    p("DiagnosticReport", "encounter", R, "encounter", ""),
    p(
        "DiagnosticReport",
        "date",
        D,
        "effectiveDateTime|effectivePeriod",
        "",
    ),
    p("DiagnosticReport", "issued", D, "issued", ""),
    p("DiagnosticReport", "performer", R, "performer", ""),
    p(
        "DiagnosticReport",
        "results-interpreter",
        R,
        "resultsInterpreter",
        "",
    ),
    p("DiagnosticReport", "result", R, "result", ""),
    p("DiagnosticReport", "based-on", R, "basedOn", ""),
    p("DiagnosticReport", "conclusion", T, "conclusionCode", ""),
    p("DiagnosticReport", "media", R, "media.link", ""),
    p("DiagnosticReport", "specimen", R, "specimen", ""),
    // ImagingStudy
    p("ImagingStudy", "identifier", T, "identifier", ""),
    p("ImagingStudy", "status", T, "status", ""),
    p("ImagingStudy", "subject", R, "subject", ""),
    p("ImagingStudy", "patient", R, "subject", PATIENT),
    p("ImagingStudy", "encounter", R, "encounter", ""),
    p("ImagingStudy", "started", D, "started", ""),
    p("ImagingStudy", "modality", T, "series.modality", ""),
    p("ImagingStudy", "bodysite", T, "series.bodySite", ""),
    p("ImagingStudy", "series", T, "series.uid", ""),
    p("ImagingStudy", "instance", T, "series.instance.uid", ""),
    p("ImagingStudy", "referrer", R, "referrer", ""),
    p("ImagingStudy", "interpreter", R, "interpreter", ""),
    p("ImagingStudy", "basedon", R, "basedOn", ""),
    p(
        "ImagingStudy",
        "endpoint",
        R,
        "endpoint|series.endpoint",
        "",
    ),
    p("ImagingStudy", "reason", T, "reasonCode", ""),
    // DocumentReference
    p(
        "DocumentReference",
        "identifier",
        T,
        "identifier|masterIdentifier",
        "",
    ),
    p("DocumentReference", "status", T, "status", ""),
    p("DocumentReference", "type", T, "type", ""),
    p("DocumentReference", "category", T, "category", ""),
    p("DocumentReference", "subject", R, "subject", ""),
    p("DocumentReference", "patient", R, "subject", PATIENT),
    p("DocumentReference", "encounter", R, "context.encounter", ""),
    p("DocumentReference", "date", D, "date", ""),
    p("DocumentReference", "period", D, "context.period", ""),
    p("DocumentReference", "author", R, "author", ""),
    p("DocumentReference", "custodian", R, "custodian", ""),
    p("DocumentReference", "related", R, "context.related", ""),
    p("DocumentReference", "relatesto", R, "relatesTo.target", ""),
    p(
        "DocumentReference",
        "contenttype",
        T,
        "content.attachment.contentType",
        "",
    ),
    p("DocumentReference", "format", T, "content.format", ""),
    p(
        "DocumentReference",
        "language",
        T,
        "content.attachment.language",
        "",
    ),
    p(
        "DocumentReference",
        "location",
        U,
        "content.attachment.url",
        "",
    ),
    p("DocumentReference", "description", S, "description", ""),
    p(
        "DocumentReference",
        "facility",
        T,
        "context.facilityType",
        "",
    ),
    p(
        "DocumentReference",
        "setting",
        T,
        "context.practiceSetting",
        "",
    ),
    p("DocumentReference", "event", T, "context.event", ""),
    p(
        "DocumentReference",
        "security-label",
        T,
        "securityLabel",
        "",
    ),
    // ServiceRequest
    p("ServiceRequest", "identifier", T, "identifier", ""),
    p("ServiceRequest", "status", T, "status", ""),
    p("ServiceRequest", "intent", T, "intent", ""),
    p("ServiceRequest", "priority", T, "priority", ""),
    p("ServiceRequest", "category", T, "category", ""),
    p("ServiceRequest", "code", T, "code", ""),
    p("ServiceRequest", "body-site", T, "bodySite", ""),
    p("ServiceRequest", "subject", R, "subject", ""),
    p("ServiceRequest", "patient", R, "subject", PATIENT),
    p("ServiceRequest", "encounter", R, "encounter", ""),
    p("ServiceRequest", "authored", D, "authoredOn", ""),
    p(
        "ServiceRequest",
        "occurrence",
        D,
        "occurrenceDateTime|occurrencePeriod",
        "",
    ),
    p("ServiceRequest", "requester", R, "requester", ""),
    p("ServiceRequest", "performer", R, "performer", ""),
    p("ServiceRequest", "based-on", R, "basedOn", ""),
    p("ServiceRequest", "replaces", R, "replaces", ""),
    p("ServiceRequest", "requisition", T, "requisition", ""),
    p("ServiceRequest", "specimen", R, "specimen", ""),
    p(
        "ServiceRequest",
        "instantiates-canonical",
        U,
        "instantiatesCanonical",
        "",
    ),
    // Specimen
    p(
        "Specimen",
        "identifier",
        T,
        "identifier|accessionIdentifier",
        "",
    ),
    p("Specimen", "type", T, "type", ""),
    p("Specimen", "subject", R, "subject", ""),
    p("Specimen", "patient", R, "subject", PATIENT),
    p(
        "Specimen",
        "collected",
        D,
        "collection.collectedDateTime|collection.collectedPeriod",
        "",
    ),
    p("Specimen", "status", T, "status", ""),
    // Claim
    p("Claim", "identifier", T, "identifier", ""),
    p("Claim", "status", T, "status", ""),
    p("Claim", "use", T, "use", ""),
    p("Claim", "priority", T, "priority", ""),
    p("Claim", "patient", R, "patient", PATIENT),
    p("Claim", "created", D, "created", ""),
    p("Claim", "provider", R, "provider", ""),
    p("Claim", "insurer", R, "insurer", ""),
    p("Claim", "enterer", R, "enterer", ""),
    p("Claim", "facility", R, "facility", ""),
    p("Claim", "payee", R, "payee.party", ""),
    p("Claim", "care-team", R, "careTeam.provider", ""),
    p("Claim", "encounter", R, "item.encounter", ""),
    // ExplanationOfBenefit
    p("ExplanationOfBenefit", "identifier", T, "identifier", ""),
    p("ExplanationOfBenefit", "status", T, "status", ""),
    p("ExplanationOfBenefit", "patient", R, "patient", PATIENT),
    p("ExplanationOfBenefit", "created", D, "created", ""),
    p("ExplanationOfBenefit", "claim", R, "claim", ""),
    p("ExplanationOfBenefit", "provider", R, "provider", ""),
    p(
        "ExplanationOfBenefit",
        "coverage",
        R,
        "insurance.coverage",
        "",
    ),
    p("ExplanationOfBenefit", "payee", R, "payee.party", ""),
    p(
        "ExplanationOfBenefit",
        "care-team",
        R,
        "careTeam.provider",
        "",
    ),
    p("ExplanationOfBenefit", "encounter", R, "item.encounter", ""),
    // ChargeItem
    p("ChargeItem", "identifier", T, "identifier", ""),
    p("ChargeItem", "code", T, "code", ""),
    p("ChargeItem", "subject", R, "subject", ""),
    p("ChargeItem", "patient", R, "subject", PATIENT),
    p("ChargeItem", "context", R, "context", ""),
    p(
        "ChargeItem",
        "occurrence",
        D,
        "occurrenceDateTime|occurrencePeriod",
        "",
    ),
    p("ChargeItem", "entered-date", D, "enteredDate", ""),
    p("ChargeItem", "enterer", R, "enterer", ""),
    p("ChargeItem", "performer-actor", R, "performer.actor", ""),
    p(
        "ChargeItem",
        "performing-organization",
        R,
        "performingOrganization",
        "",
    ),
    p(
        "ChargeItem",
        "requesting-organization",
        R,
        "requestingOrganization",
        "",
    ),
    p("ChargeItem", "account", R, "account", ""),
    p("ChargeItem", "quantity", Q, "quantity", ""),
    p("ChargeItem", "factor-override", N, "factorOverride", ""),
    p("ChargeItem", "service", R, "service", ""),
    // Coverage
    p("Coverage", "identifier", T, "identifier", ""),
    p("Coverage", "status", T, "status", ""),
    p("Coverage", "type", T, "type", ""),
    p("Coverage", "beneficiary", R, "beneficiary", ""),
    p("Coverage", "patient", R, "beneficiary", PATIENT),
    p("Coverage", "payor", R, "payor", ""),
    p("Coverage", "subscriber", R, "subscriber", ""),
    p("Coverage", "policy-holder", R, "policyHolder", ""),
    // Immunization
    p("Immunization", "identifier", T, "identifier", ""),
    p("Immunization", "status", T, "status", ""),
    p("Immunization", "vaccine-code", T, "vaccineCode", ""),
    p("Immunization", "patient", R, "patient", PATIENT),
    p("Immunization", "date", D, "occurrenceDateTime", ""),
    p("Immunization", "location", R, "location", ""),
    p("Immunization", "performer", R, "performer.actor", ""),
    p("Immunization", "lot-number", S, "lotNumber", ""),
    // CarePlan
    p("CarePlan", "identifier", T, "identifier", ""),
    p("CarePlan", "status", T, "status", ""),
    p("CarePlan", "intent", T, "intent", ""),
    p("CarePlan", "category", T, "category", ""),
    p("CarePlan", "subject", R, "subject", ""),
    p("CarePlan", "patient", R, "subject", PATIENT),
    p("CarePlan", "encounter", R, "encounter", ""),
    p("CarePlan", "date", D, "period", ""),
    p("CarePlan", "care-team", R, "careTeam", ""),
    p("CarePlan", "goal", R, "goal", ""),
    p("CarePlan", "performer", R, "activity.detail.performer", ""),
    p("CarePlan", "activity-code", T, "activity.detail.code", ""),
    // CareTeam
    p("CareTeam", "identifier", T, "identifier", ""),
    p("CareTeam", "status", T, "status", ""),
    p("CareTeam", "category", T, "category", ""),
    p("CareTeam", "subject", R, "subject", ""),
    p("CareTeam", "patient", R, "subject", PATIENT),
    p("CareTeam", "encounter", R, "encounter", ""),
    p("CareTeam", "date", D, "period", ""),
    p("CareTeam", "participant", R, "participant.member", ""),
    // Goal
    p("Goal", "identifier", T, "identifier", ""),
    p("Goal", "lifecycle-status", T, "lifecycleStatus", ""),
    p("Goal", "achievement-status", T, "achievementStatus", ""),
    p("Goal", "category", T, "category", ""),
    p("Goal", "subject", R, "subject", ""),
    p("Goal", "patient", R, "subject", PATIENT),
    p("Goal", "start-date", D, "startDate", ""),
    p("Goal", "target-date", D, "target.dueDate", ""),
    // Device
    p("Device", "identifier", T, "identifier", ""),
    p("Device", "status", T, "status", ""),
    p("Device", "type", T, "type", ""),
    p("Device", "patient", R, "patient", PATIENT),
    p("Device", "organization", R, "owner", ""),
    p("Device", "udi-di", S, "udiCarrier.deviceIdentifier", ""),
    p("Device", "manufacturer", S, "manufacturer", ""),
    p("Device", "model", S, "modelNumber", ""),
    // SupplyDelivery
    p("SupplyDelivery", "identifier", T, "identifier", ""),
    p("SupplyDelivery", "status", T, "status", ""),
    p("SupplyDelivery", "patient", R, "patient", PATIENT),
    p("SupplyDelivery", "supplier", R, "supplier", ""),
    p("SupplyDelivery", "receiver", R, "receiver", ""),
    // Consent
    p("Consent", "identifier", T, "identifier", ""),
    p("Consent", "status", T, "status", ""),
    p("Consent", "scope", T, "scope", ""),
    p("Consent", "category", T, "category", ""),
    p("Consent", "patient", R, "patient", PATIENT),
    p("Consent", "date", D, "dateTime", ""),
    p("Consent", "period", D, "provision.period", ""),
    p("Consent", "purpose", T, "provision.purpose", ""),
    p("Consent", "action", T, "provision.action", ""),
    p("Consent", "actor", R, "provision.actor.reference", ""),
    p("Consent", "consentor", R, "performer", ""),
    p("Consent", "organization", R, "organization", ""),
    p("Consent", "data", R, "provision.data.reference", ""),
    p("Consent", "source-reference", R, "sourceReference", ""),
    p(
        "Consent",
        "security-label",
        T,
        "provision.securityLabel",
        "",
    ),
    // Provenance
    p("Provenance", "target", R, "target", ""),
    p("Provenance", "patient", R, "target", PATIENT),
    p("Provenance", "agent", R, "agent.who", ""),
    p("Provenance", "agent-type", T, "agent.type", ""),
    p("Provenance", "recorded", D, "recorded", ""),
    p(
        "Provenance",
        "when",
        D,
        "occurredDateTime|occurredPeriod",
        "",
    ),
    p("Provenance", "location", R, "location", ""),
    p("Provenance", "entity", R, "entity.what", ""),
    // AuditEvent
    p("AuditEvent", "date", D, "recorded", ""),
    p("AuditEvent", "type", T, "type", ""),
    p("AuditEvent", "subtype", T, "subtype", ""),
    p("AuditEvent", "action", T, "action", ""),
    p("AuditEvent", "outcome", T, "outcome", ""),
    p("AuditEvent", "agent", R, "agent.who", ""),
    p("AuditEvent", "agent-name", S, "agent.name", ""),
    p("AuditEvent", "altid", T, "agent.altId", ""),
    p("AuditEvent", "address", S, "agent.network.address", ""),
    p("AuditEvent", "entity", R, "entity.what", ""),
    p("AuditEvent", "entity-type", T, "entity.type", ""),
    p("AuditEvent", "patient", R, "entity.what|agent.who", PATIENT),
    p("AuditEvent", "source", R, "source.observer", ""),
    p("AuditEvent", "site", T, "source.site", ""),
    p("AuditEvent", "policy", U, "agent.policy", ""),
    p(
        "AuditEvent",
        "purpose",
        T,
        "purposeOfEvent|agent.purposeOfUse",
        "",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PATIENT_COMPARTMENT, resource_type};

    #[test]
    fn every_parameter_belongs_to_a_supported_type_once() {
        let mut seen = std::collections::HashSet::new();
        for param in PARAMS {
            assert!(
                param.resource == "*" || resource_type(param.resource).is_ok(),
                "{param:?}"
            );
            assert!(
                seen.insert((param.resource, param.name)),
                "twice: {param:?}"
            );
            assert!(
                !param.paths.is_empty() && !param.paths.contains(".."),
                "{param:?}"
            );
        }
    }

    #[test]
    fn compartment_parameters_are_references() {
        for (t, params) in PATIENT_COMPARTMENT {
            for name in *params {
                let param = find(t, name).unwrap_or_else(|| panic!("{t}.{name} missing"));
                assert_eq!(param.kind, Kind::Reference, "{t}.{name}");
            }
        }
    }

    #[test]
    fn patient_parameter_only_accepts_patients() {
        let param = find("Observation", "patient").unwrap();
        assert!(param.accepts_target("Patient"));
        assert!(!param.accepts_target("Group"));
        assert!(
            find("Observation", "subject")
                .unwrap()
                .accepts_target("Group")
        );
        assert!(find("Observation", "_tag").is_some());
    }
}
