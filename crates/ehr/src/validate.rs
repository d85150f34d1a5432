//! Checks a resource before it is stored: FHIR JSON rules, supported type, id, meta, each
//! element's FHIR R4 type (from a table of the R4 definitions), the elements each type requires, the codes its
//! required bindings allow, and date formats.
//!
//! Errors name the element (`Observation.status`) and say what is wrong.

mod elements;

use serde_json::{Map, Value};

use crate::datetime;
use crate::error::{Error, Result};
use crate::types;

/// Elements every resource of a type must have (FHIR R4 cardinality 1..), `[x]` for choices.
const REQUIRED: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &["patient"]),
    ("AuditEvent", &["type", "recorded", "agent", "source"]),
    ("Binary", &["contentType"]),
    ("CarePlan", &["status", "intent", "subject"]),
    ("ChargeItem", &["status", "code", "subject"]),
    (
        "Claim",
        &[
            "status",
            "type",
            "use",
            "patient",
            "created",
            "provider",
            "priority",
            "insurance",
        ],
    ),
    (
        "Composition",
        &["status", "type", "date", "author", "title"],
    ),
    ("Condition", &["subject"]),
    ("Consent", &["status", "scope", "category"]),
    ("Coverage", &["status", "beneficiary", "payor"]),
    ("DiagnosticReport", &["status", "code"]),
    ("DocumentReference", &["status", "content"]),
    ("Encounter", &["status", "class"]),
    (
        "ExplanationOfBenefit",
        &[
            "status",
            "type",
            "use",
            "patient",
            "created",
            "insurer",
            "provider",
            "outcome",
            "insurance",
        ],
    ),
    ("Goal", &["lifecycleStatus", "description", "subject"]),
    ("ImagingStudy", &["status", "subject"]),
    (
        "Immunization",
        &["status", "vaccineCode", "patient", "occurrence[x]"],
    ),
    (
        "MedicationAdministration",
        &["status", "medication[x]", "subject", "effective[x]"],
    ),
    (
        "MedicationRequest",
        &["status", "intent", "medication[x]", "subject"],
    ),
    ("Observation", &["status", "code"]),
    ("Procedure", &["status", "subject"]),
    ("Provenance", &["target", "recorded", "agent"]),
    ("RelatedPerson", &["patient"]),
    ("ServiceRequest", &["status", "intent", "subject"]),
];

/// Codes allowed by required bindings on `code` elements, `(type, element, codes)`.
const BINDINGS: &[(&str, &str, &[&str])] = &[
    ("*", "gender", &["male", "female", "other", "unknown"]),
    (
        "Observation",
        "status",
        &[
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "DiagnosticReport",
        "status",
        &[
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "Encounter",
        "status",
        &[
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "Consent",
        "status",
        &[
            "draft",
            "proposed",
            "active",
            "rejected",
            "inactive",
            "entered-in-error",
        ],
    ),
    (
        "Procedure",
        "status",
        &[
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "MedicationRequest",
        "status",
        &[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ],
    ),
    (
        "MedicationRequest",
        "intent",
        &[
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ],
    ),
    (
        "Composition",
        "status",
        &["preliminary", "final", "amended", "entered-in-error"],
    ),
    (
        "DocumentReference",
        "status",
        &["current", "superseded", "entered-in-error"],
    ),
    (
        "DocumentReference",
        "docStatus",
        &["preliminary", "final", "amended", "entered-in-error"],
    ),
    ("AuditEvent", "action", &["C", "R", "U", "D", "E"]),
    ("AuditEvent", "outcome", &["0", "4", "8", "12"]),
];

/// Element names whose string values are FHIR dates, dateTimes or instants.
fn is_date_element(key: &str) -> bool {
    matches!(
        key,
        "birthDate"
            | "recorded"
            | "issued"
            | "created"
            | "started"
            | "date"
            | "dateTime"
            | "lastUpdated"
            | "start"
            | "end"
            | "authoredOn"
            | "recordedDate"
            | "occurrenceDateTime"
    ) || key.ends_with("DateTime")
        || key.ends_with("Instant")
        || (key.ends_with("Date") && key.len() > 4)
}

/// Validates `resource` as a resource of a supported type and returns that type.
///
/// `expected_type` is the type named by the URL, if any.
pub fn validate(resource: &Value, expected_type: Option<&str>) -> Result<&'static str> {
    let Value::Object(map) = resource else {
        return Err(Error::invalid(
            "the body must be a JSON object (a FHIR resource)",
        ));
    };
    let type_name = map
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::invalid_at("resourceType", "resourceType is missing or not a string")
        })?;
    let resource_type = types::resource_type(type_name)?;
    if let Some(expected) = expected_type
        && expected != resource_type
    {
        return Err(Error::invalid_at(
            "resourceType",
            format!("the URL names {expected} but the body is a {resource_type}"),
        ));
    }
    if let Some(id) = map.get("id") {
        match id.as_str() {
            Some(id) if types::is_valid_id(id) => {}
            _ => {
                return Err(Error::invalid_at(
                    format!("{resource_type}.id"),
                    format!("id {id} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})"),
                ));
            }
        }
    }
    json_rules(resource, Path::Root(resource_type))?;
    elements::check(map, resource_type, Path::Root(resource_type))?;
    if let Some(meta) = map.get("meta") {
        check_meta(meta, resource_type)?;
    }
    required(map, resource_type)?;
    bindings(map, resource_type)?;
    Ok(resource_type)
}

/// Where an element is, built up while walking and written out only for an error message.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// FHIR JSON: no nulls outside arrays, no empty strings, objects or arrays, valid names,
/// well-formed dates and references.
fn json_rules(value: &Value, path: Path<'_>) -> Result<()> {
    let empty = |what: &str| {
        Err(Error::invalid_at(
            path.to_string(),
            format!("{what} are not allowed (omit the element)"),
        ))
    };
    match value {
        Value::Null => Err(Error::invalid_at(
            path.to_string(),
            "null is not allowed (omit the element)",
        )),
        Value::String(s) if s.is_empty() => empty("empty strings"),
        Value::String(s) if s.contains('\0') => Err(nul(path)),
        Value::Array(items) if items.is_empty() => empty("empty arrays"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_null() {
                    json_rules(item, Path::Index(&path, i))?;
                }
            }
            Ok(())
        }
        Value::Object(map) if map.is_empty() => empty("empty objects"),
        Value::Object(map) => object_rules(map, path),
        _ => Ok(()),
    }
}

fn object_rules(map: &Map<String, Value>, path: Path<'_>) -> Result<()> {
    for (key, child) in map {
        let child_path = Path::Key(&path, key);
        let name = key.strip_prefix('_').unwrap_or(key);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_at(
                child_path.to_string(),
                format!("{key:?} is not a valid element name"),
            ));
        }
        if key == "contained" {
            for (i, inner) in child
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .enumerate()
            {
                validate(inner, None)
                    .map_err(|e| prefix(e, &Path::Index(&child_path, i).to_string()))?;
            }
            continue;
        }
        if key == "div"
            && let Value::String(text) = child
        {
            if text.contains('\0') {
                return Err(nul(child_path));
            }
            continue;
        }
        json_rules(child, child_path)?;
        if let Value::String(text) = child {
            if is_date_element(key) {
                datetime::parse_range(text)
                    .map_err(|e| Error::invalid_at(child_path.to_string(), e.to_string()))?;
            }
            if key == "reference" {
                check_reference(text).map_err(|m| Error::invalid_at(child_path.to_string(), m))?;
            }
        }
    }
    Ok(())
}

/// FHIR strings cannot hold U+0000 (nor can the database store it).
fn nul(path: Path<'_>) -> Error {
    Error::invalid_at(
        path.to_string(),
        "contains a NUL character (U+0000), which FHIR strings cannot hold",
    )
}

fn prefix(error: Error, path: &str) -> Error {
    match error {
        Error::Invalid {
            message,
            expression,
        } => Error::Invalid {
            message,
            expression: Some(match expression {
                Some(inner) => format!("{path}.{inner}"),
                None => path.to_string(),
            }),
        },
        other => other,
    }
}

/// A stored reference is relative (`Type/id`), absolute, or contained (`#id`).
fn check_reference(text: &str) -> std::result::Result<(), String> {
    if text.starts_with('#') || text.contains("://") || text.starts_with("urn:oid:") {
        return Ok(());
    }
    if text.starts_with("urn:uuid:") {
        return Err(format!(
            "reference {text:?} is a urn:uuid that nothing resolves (urn:uuid references are only valid inside a transaction Bundle)"
        ));
    }
    let (target_type, rest) = text
        .split_once('/')
        .ok_or_else(|| format!("reference {text:?} is not of the form Type/id"))?;
    if target_type.contains('?') || rest.contains('?') {
        return Err(format!(
            "conditional reference {text:?} is only valid inside a transaction Bundle"
        ));
    }
    types::resource_type(target_type)
        .map_err(|_| format!("reference {text:?} names unknown resource type {target_type:?}"))?;
    match crate::search::extract::parse_reference(text) {
        Some(_) => Ok(()),
        None => Err(format!("reference {text:?} is not of the form Type/id")),
    }
}

fn check_meta(meta: &Value, resource_type: &str) -> Result<()> {
    let path = format!("{resource_type}.meta");
    let Value::Object(map) = meta else {
        return Err(Error::invalid_at(path, "meta must be an object"));
    };
    for key in ["profile"] {
        if let Some(v) = map.get(key)
            && !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        {
            return Err(Error::invalid_at(
                format!("{path}.{key}"),
                "must be an array of canonical URLs",
            ));
        }
    }
    for key in ["tag", "security"] {
        if let Some(v) = map.get(key)
            && !v.as_array().is_some_and(|a| a.iter().all(Value::is_object))
        {
            return Err(Error::invalid_at(
                format!("{path}.{key}"),
                "must be an array of Codings",
            ));
        }
    }
    Ok(())
}

fn required(map: &Map<String, Value>, resource_type: &str) -> Result<()> {
    let needed = REQUIRED
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map_or(&[][..], |(_, e)| e);
    for element in needed {
        let present = match element.strip_suffix("[x]") {
            Some(stem) => map.keys().any(|k| {
                k.strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            }),
            None => map.contains_key(*element),
        };
        if !present {
            return Err(Error::invalid_at(
                format!("{resource_type}.{element}"),
                format!("{resource_type}.{element} is required"),
            ));
        }
    }
    Ok(())
}

fn bindings(map: &Map<String, Value>, resource_type: &str) -> Result<()> {
    for (t, element, codes) in BINDINGS {
        if *t != "*" && *t != resource_type {
            continue;
        }
        if let Some(value) = map.get(*element) {
            let ok = value.as_str().is_some_and(|v| codes.contains(&v));
            if !ok {
                return Err(Error::invalid_at(
                    format!("{resource_type}.{element}"),
                    format!(
                        "{value} is not one of the allowed codes: {}",
                        codes.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expression(err: Error) -> String {
        match err {
            Error::Invalid {
                expression,
                message,
            } => expression.unwrap_or(message),
            other => other.to_string(),
        }
    }

    #[test]
    fn well_formed_resource_passes() {
        let obs = json!({"resourceType": "Observation", "id": "o-1", "status": "final",
            "code": {"text": "x"}, "effectiveDateTime": "2024-01-01T10:00:00Z",
            "subject": {"reference": "Patient/1"}, "meta": {"profile": ["http://p"]}});
        assert_eq!(validate(&obs, Some("Observation")).unwrap(), "Observation");
    }

    #[test]
    fn each_broken_rule_names_its_element() {
        let cases = [
            (
                json!({"resourceType": "Observation", "code": {"text": "x"}}),
                "Observation.status",
            ),
            (
                json!({"resourceType": "Observation", "status": "done", "code": {"text": "x"}}),
                "Observation.status",
            ),
            (
                json!({"resourceType": "Patient", "name": []}),
                "Patient.name",
            ),
            (
                json!({"resourceType": "Patient", "gender": null}),
                "Patient.gender",
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "1990-02-31"}),
                "Patient.birthDate",
            ),
            (
                json!({"resourceType": "Patient", "id": "a b"}),
                "Patient.id",
            ),
            (
                json!({"resourceType": "Patient", "generalPractitioner": [{"reference": "urn:uuid:1"}]}),
                "Patient.generalPractitioner[0].reference",
            ),
            (
                json!({"resourceType": "Patient", "generalPractitioner": [{"reference": "Foo/1"}]}),
                "Patient.generalPractitioner[0].reference",
            ),
            (
                json!({"resourceType": "Patient", "contained": [{"resourceType": "Observation"}]}),
                "Patient.contained[0].Observation.status",
            ),
            (
                json!({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "x"}, "patient": {"reference": "Patient/1"}}),
                "Immunization.occurrence[x]",
            ),
        ];
        for (resource, path) in cases {
            assert_eq!(
                expression(validate(&resource, None).unwrap_err()),
                path,
                "{resource}"
            );
        }
    }

    #[test]
    fn elements_must_have_their_r4_types() {
        let obs = |extra: Value| {
            let mut o =
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
            o.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            o
        };
        let cases = [
            (
                json!({"resourceType": "Patient", "name": [{"family": 1}]}),
                "Patient.name[0].family",
            ),
            (
                json!({"resourceType": "Patient", "name": {"family": "x"}}),
                "Patient.name",
            ),
            (
                json!({"resourceType": "Patient", "gender": ["male"]}),
                "Patient.gender",
            ),
            (
                json!({"resourceType": "Patient", "active": "yes"}),
                "Patient.active",
            ),
            (
                json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
                "Patient.multipleBirthInteger",
            ),
            (
                json!({"resourceType": "Patient", "contact": [{"name": [{"family": "x"}]}]}),
                "Patient.contact[0].name",
            ),
            (
                json!({"resourceType": "Patient", "name": [{"given": ["a"], "_given": ["x"]}]}),
                "Patient.name[0]._given[0]",
            ),
            (
                json!({"resourceType": "Patient", "extension": [{"url": "http://x", "valueBoolean": "true"}]}),
                "Patient.extension[0].valueBoolean",
            ),
            (
                json!({"resourceType": "Patient", "contained": [{"resourceType": "Patient", "active": 1}]}),
                "Patient.contained[0].Patient.active",
            ),
            (
                obs(json!({"valueQuantity": {"value": "5"}})),
                "Observation.valueQuantity.value",
            ),
            (
                obs(
                    json!({"component": [{"code": {"text": "y"}, "referenceRange": [{"low": {"value": true}}]}]}),
                ),
                "Observation.component[0].referenceRange[0].low.value",
            ),
        ];
        for (resource, path) in cases {
            let err = validate(&resource, None).unwrap_err();
            assert!(err.to_string().contains("must be"), "{err}");
            assert_eq!(expression(err), path, "{resource}");
        }
        let well_typed = json!({"resourceType": "Patient", "multipleBirthInteger": 2,
            "deceasedBoolean": false, "name": [{"given": ["a", "b"],
            "_given": [null, {"extension": [{"url": "http://x", "valueString": "y"}]}]}]});
        validate(&well_typed, None).unwrap();
        let message = validate(
            &json!({"resourceType": "Patient", "name": [{"family": 1}]}),
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            message,
            "Patient.name[0].family must be a FHIR string (a JSON string), not the number 1"
        );
    }

    #[test]
    fn attachments_and_binaries_must_hold_base64() {
        let binary = |data: &str| json!({"resourceType": "Binary", "contentType": "audio/wav", "data": data});
        validate(&binary("UklGRg=="), None).unwrap();
        validate(&binary("Ukl GRg\n=="), None).unwrap();
        for bad in ["UklGRg=", "Ukl*Rg==", "U=klGRg=", "UklGRg==="] {
            let err = validate(&binary(bad), None).unwrap_err();
            assert_eq!(expression(err), "Binary.data", "{bad}");
        }
        let note = json!({"resourceType": "DocumentReference", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "not base64!"}}]});
        assert_eq!(
            expression(validate(&note, None).unwrap_err()),
            "DocumentReference.content[0].attachment.data"
        );
        let no_type = json!({"resourceType": "Binary", "data": "UklGRg=="});
        assert_eq!(
            expression(validate(&no_type, None).unwrap_err()),
            "Binary.contentType"
        );
    }

    #[test]
    fn compositions_need_their_r4_elements_and_status_codes() {
        let mut composition = json!({"resourceType": "Composition", "status": "preliminary",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "date": "2024-03-12T10:00:00Z", "author": [{"reference": "Practitioner/d1"}],
            "title": "Consultation note",
            "section": [{"title": "Plan", "text": {"status": "generated",
                "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Rest.</div>"}}]});
        validate(&composition, None).unwrap();
        composition["status"] = json!("signed");
        assert_eq!(
            expression(validate(&composition, None).unwrap_err()),
            "Composition.status"
        );
        composition["status"] = json!("final");
        composition["section"][0]["section"] = json!({"title": "nested"});
        assert_eq!(
            expression(validate(&composition, None).unwrap_err()),
            "Composition.section[0].section"
        );
        composition.as_object_mut().unwrap().remove("section");
        composition.as_object_mut().unwrap().remove("title");
        assert_eq!(
            expression(validate(&composition, None).unwrap_err()),
            "Composition.title"
        );
    }

    #[test]
    fn nul_characters_are_refused() {
        let err = validate(
            &json!({"resourceType": "Patient", "name": [{"given": ["a\u{0}"]}]}),
            None,
        )
        .unwrap_err();
        assert_eq!(expression(err), "Patient.name[0].given[0]");
    }

    #[test]
    fn type_must_be_known_and_match_the_url() {
        assert!(matches!(
            validate(&json!({"resourceType": "Foo"}), None),
            Err(Error::UnknownType(_))
        ));
        assert!(validate(&json!({"resourceType": "Patient"}), Some("Observation")).is_err());
        assert!(validate(&json!([1]), None).is_err());
    }
}
