//! The resource types this server stores, and the Patient compartment that says which of them
//! belong to a patient's record.

use crate::error::{Error, Result};

/// Every resource type this server accepts, in alphabetical order.
pub const RESOURCE_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "AuditEvent",
    "Binary",
    "CarePlan",
    "CareTeam",
    "ChargeItem",
    "Claim",
    "Composition",
    "Condition",
    "Consent",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "ExplanationOfBenefit",
    "Goal",
    "ImagingStudy",
    "Immunization",
    "Location",
    "Medication",
    "MedicationAdministration",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
    "SupplyDelivery",
];

/// For each type in the Patient compartment, the search parameters whose Patient references
/// put a resource into that patient's compartment (FHIR R4 CompartmentDefinition "patient",
/// restricted to the types above). Patient itself is in its own compartment.
///
/// One addition to R4's: a `Binary` (a recording, a scanned letter) whose `securityContext` is
/// a Patient is that patient's data, so patient/ scopes reach it, its reads are audited and it
/// is exported with the record; R4 leaves Binary out of every compartment.
pub const PATIENT_COMPARTMENT: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &["patient", "recorder", "asserter"]),
    ("AuditEvent", &["patient"]),
    ("Binary", &["securitycontext"]),
    ("CarePlan", &["patient", "performer"]),
    ("CareTeam", &["patient", "participant"]),
    ("ChargeItem", &["subject"]),
    ("Claim", &["patient", "payee"]),
    ("Composition", &["subject", "author", "attester"]),
    ("Condition", &["patient", "asserter"]),
    ("Consent", &["patient"]),
    (
        "Coverage",
        &["policy-holder", "subscriber", "beneficiary", "payor"],
    ),
    ("Device", &["patient"]),
    ("DiagnosticReport", &["subject"]),
    ("DocumentReference", &["subject", "author"]),
    ("Encounter", &["patient"]),
    ("ExplanationOfBenefit", &["patient", "payee"]),
    ("Goal", &["patient"]),
    ("ImagingStudy", &["patient"]),
    ("Immunization", &["patient"]),
    (
        "MedicationAdministration",
        &["patient", "performer", "subject"],
    ),
    ("MedicationRequest", &["subject"]),
    ("Observation", &["subject", "performer"]),
    ("Patient", &["link"]),
    ("Procedure", &["patient", "performer"]),
    ("Provenance", &["patient"]),
    ("RelatedPerson", &["patient"]),
    ("ServiceRequest", &["subject", "performer"]),
    ("Specimen", &["subject"]),
    ("SupplyDelivery", &["patient"]),
];

/// Checks that `name` is a supported resource type and returns its canonical spelling.
pub fn resource_type(name: &str) -> Result<&'static str> {
    RESOURCE_TYPES
        .binary_search(&name)
        .map(|i| RESOURCE_TYPES[i])
        .map_err(|_| Error::UnknownType(name.to_string()))
}

/// The compartment parameters of `resource_type`, empty when it is not patient data.
pub fn compartment_params(resource_type: &str) -> &'static [&'static str] {
    PATIENT_COMPARTMENT
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map_or(&[], |(_, params)| params)
}

/// True when resources of this type hold patient data (Patient or its compartment).
pub fn is_patient_data(resource_type: &str) -> bool {
    resource_type == "Patient" || !compartment_params(resource_type).is_empty()
}

/// True for a syntactically valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The text of a `DocumentReference`: its first attachment with inline `data` whose content
/// type is absent or `text/*`, base64-decoded as UTF-8 (`None` when it has none).
pub fn document_text(document: &serde_json::Value) -> Option<String> {
    use base64::Engine as _;
    document["content"]
        .as_array()?
        .iter()
        .map(|c| &c["attachment"])
        .filter(|a| {
            a["contentType"]
                .as_str()
                .is_none_or(|t| t.starts_with("text/"))
        })
        .find_map(|a| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a["data"].as_str()?)
                .ok()?;
            String::from_utf8(bytes).ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_list_is_sorted_for_lookup() {
        assert!(RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(resource_type("Patient").unwrap(), "Patient");
        assert!(matches!(resource_type("Foo"), Err(Error::UnknownType(_))));
    }

    #[test]
    fn every_compartment_type_is_supported() {
        for (t, _) in PATIENT_COMPARTMENT {
            assert!(resource_type(t).is_ok(), "{t}");
        }
        assert!(is_patient_data("Observation"));
        assert!(!is_patient_data("Practitioner"));
    }

    #[test]
    fn ids_follow_the_fhir_id_rule() {
        assert!(is_valid_id("abc-1.2"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id(&"a".repeat(65)));
    }
}
