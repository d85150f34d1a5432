//! UCI Heart Disease records as FHIR: one transaction Bundle per centre with the centre's
//! Organization and, per record, a Patient (sex as `gender`, split membership as a
//! `meta.tag`), one Observation per recorded variable (LOINC-coded where LOINC has the concept,
//! and always with the UCI variable as a coding) and a Condition for the angiographic diagnosis
//! (SNOMED CT 53741008 coronary arteriosclerosis; `confirmed` when num > 0, `refuted` when
//! num = 0; the UCI severity 1-4 as its stage).
//!
//! Ids are deterministic (`uci-<centre>-<line>[-<variable>]`) and entries are `PUT`s, so loading
//! the same files twice changes nothing. Patients are registered in data-file line order, which
//! is the order of FLamby's split file.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The UCI variables' code system.
pub const UCI: &str = "https://archive.ics.uci.edu/dataset/45/heart+disease";
/// The tag system recording train/test membership.
pub const SPLIT_SYSTEM: &str = "urn:cohort:split:fed-heart-disease";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

/// Centre names (FLamby order) and their hospitals.
pub const CENTRES: [(&str, &str); 4] = [
    ("cleveland", "Cleveland Clinic Foundation"),
    ("hungarian", "Hungarian Institute of Cardiology, Budapest"),
    ("switzerland", "University Hospitals of Zurich and Basel"),
    ("va", "V.A. Medical Center, Long Beach"),
];

const COLUMNS: [&str; 14] = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
    "slope", "ca", "thal", "num",
];

/// Display texts of the coded UCI values.
fn level_display(variable: &str, level: &str) -> Option<&'static str> {
    Some(match (variable, level) {
        ("cp", "1") => "typical angina",
        ("cp", "2") => "atypical angina",
        ("cp", "3") => "non-anginal pain",
        ("cp", "4") => "asymptomatic",
        ("restecg", "0") => "normal",
        ("restecg", "1") => "ST-T wave abnormality",
        ("restecg", "2") => "left ventricular hypertrophy",
        ("slope", "1") => "upsloping",
        ("slope", "2") => "flat",
        ("slope", "3") => "downsloping",
        ("thal", "3") => "normal",
        ("thal", "6") => "fixed defect",
        ("thal", "7") => "reversible defect",
        _ => return None,
    })
}

/// Reads FLamby's split CSV: for `centre`, data-file line → `train` or `test`.
pub fn split_membership(centre: &str, split_csv: &str) -> Result<HashMap<usize, String>> {
    let mut membership = HashMap::new();
    for (i, line) in split_csv.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.trim().split(',').collect();
        let [_, name, source_line, part] = fields[..] else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::Dataset(format!(
                "split CSV line {}: expected 4 columns",
                i + 1
            )));
        };
        if name != centre {
            continue;
        }
        let source_line: usize = source_line.parse().map_err(|_| {
            Error::Dataset(format!(
                "split CSV line {}: bad source_line {source_line:?}",
                i + 1
            ))
        })?;
        if part != "train" && part != "test" {
            return Err(Error::Dataset(format!(
                "split CSV line {}: split {part:?} is neither train nor test",
                i + 1
            )));
        }
        membership.insert(source_line, part.to_string());
    }
    Ok(membership)
}

fn code(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// The transaction Bundle loading every record of `centre`'s data file, tagging the rows the
/// split lists.
pub fn centre_bundle(centre: &str, data_file: &str, split_csv: &str) -> Result<Value> {
    let hospital = CENTRES
        .iter()
        .find(|(name, _)| *name == centre)
        .map(|(_, hospital)| *hospital)
        .ok_or_else(|| Error::Dataset(format!("unknown heart-disease centre {centre:?}")))?;
    let split = split_membership(centre, split_csv)?;
    let organization = format!("uci-heart-{centre}");
    let mut resources = vec![json!({
        "resourceType": "Organization",
        "id": organization,
        "identifier": [{"system": "urn:cohort:uci-heart-disease:centre", "value": centre}],
        "name": hospital,
    })];
    for (index, line) in data_file.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        resources.extend(record(
            centre,
            &organization,
            index + 1,
            line,
            split.get(&(index + 1)),
        )?);
    }
    Ok(crate::bundle::put_transaction(resources))
}

/// The resources of data-file line `line`.
fn record(
    centre: &str,
    organization: &str,
    line: usize,
    text: &str,
    part: Option<&String>,
) -> Result<Vec<Value>> {
    let fields: Vec<&str> = text.trim().split(',').map(str::trim).collect();
    if fields.len() != COLUMNS.len() {
        return Err(Error::Dataset(format!(
            "{centre} line {line}: expected {} columns, got {}",
            COLUMNS.len(),
            fields.len()
        )));
    }
    let value = |name: &str| -> Result<Option<f64>> {
        let i = COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
        let raw = fields[i];
        if raw.is_empty() || raw == "?" || raw.eq_ignore_ascii_case("nan") {
            return Ok(None);
        }
        raw.parse::<f64>().map(Some).map_err(|_| {
            Error::Dataset(format!(
                "{centre} line {line}: {name} {raw:?} is not a number"
            ))
        })
    };
    let level = |name: &str| -> Result<Option<String>> { Ok(value(name)?.map(|v| format!("{v}"))) };
    let id = format!("uci-{centre}-{line}");
    let subject = json!({"reference": format!("Patient/{id}")});
    let mut patient = json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{"system": format!("urn:cohort:uci-heart-disease:{centre}"), "value": line.to_string()}],
        "managingOrganization": {"reference": format!("Organization/{organization}")},
    });
    let gender = match value("sex")? {
        None => "unknown",
        Some(1.0) => "male",
        Some(0.0) => "female",
        Some(v) => {
            return Err(Error::Dataset(format!(
                "{centre} line {line}: sex {v} is neither 0 nor 1"
            )));
        }
    };
    patient["gender"] = json!(gender);
    if let Some(part) = part {
        patient["meta"] = json!({"tag": [{"system": SPLIT_SYSTEM, "code": part}]});
    }
    let mut resources = vec![patient];
    let observation = |variable: &str, codings: Vec<Value>, value: (&str, Value)| {
        let mut resource = json!({
            "resourceType": "Observation",
            "id": format!("{id}-{variable}"),
            "status": "final",
            "code": {"coding": codings},
            "subject": subject,
        });
        resource[value.0] = value.1;
        resource
    };
    let uci = |variable: &str, display: &str| code(UCI, variable, display);
    let quantity = |v: f64, unit: &str, ucum: &str| json!({"value": v, "unit": unit, "system": UCUM, "code": ucum});
    // Measured variables: (variable, LOINC code and name, UCI meaning, unit, UCUM unit).
    const MEASURED: [(&str, &str, &str, &str, &str, &str); 4] = [
        ("age", "30525-0", "Age", "age in years", "a", "a"),
        (
            "trestbps",
            "8480-6",
            "Systolic blood pressure",
            "resting blood pressure on admission",
            "mmHg",
            "mm[Hg]",
        ),
        (
            "chol",
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            "serum cholesterol",
            "mg/dL",
            "mg/dL",
        ),
        (
            "thalach",
            "8867-4",
            "Heart rate",
            "maximum heart rate achieved",
            "/min",
            "/min",
        ),
    ];
    for (variable, loinc, name, meaning, unit, ucum) in MEASURED {
        if let Some(v) = value(variable)? {
            let codings = vec![code(LOINC, loinc, name), uci(variable, meaning)];
            resources.push(observation(
                variable,
                codings,
                ("valueQuantity", quantity(v, unit, ucum)),
            ));
        }
    }
    if let Some(v) = value("fbs")? {
        let comparator = if v == 1.0 { ">" } else { "<=" };
        let mut q = quantity(120.0, "mg/dL", "mg/dL");
        q["comparator"] = json!(comparator);
        let codings = vec![
            code(
                LOINC,
                "1558-6",
                "Fasting glucose [Mass/volume] in Serum or Plasma",
            ),
            uci("fbs", "fasting blood sugar > 120 mg/dl"),
        ];
        resources.push(observation("fbs", codings, ("valueQuantity", q)));
    }
    if let Some(v) = value("exang")? {
        resources.push(observation(
            "exang",
            vec![uci("exang", "exercise induced angina")],
            ("valueBoolean", json!(v == 1.0)),
        ));
    }
    if let Some(v) = value("oldpeak")? {
        resources.push(observation(
            "oldpeak",
            vec![uci(
                "oldpeak",
                "ST depression induced by exercise relative to rest",
            )],
            ("valueQuantity", quantity(v, "mm", "mm")),
        ));
    }
    if let Some(v) = value("ca")? {
        resources.push(observation(
            "ca",
            vec![uci("ca", "number of major vessels colored by fluoroscopy")],
            ("valueInteger", json!(v as i64)),
        ));
    }
    for (variable, loinc, display) in [
        ("cp", None, "chest pain type"),
        (
            "restecg",
            Some(("8601-7", "EKG impression")),
            "resting electrocardiographic results",
        ),
        ("slope", None, "slope of the peak exercise ST segment"),
        ("thal", None, "thallium stress test result"),
    ] {
        let Some(level) = level(variable)? else {
            continue;
        };
        let meaning = level_display(variable, &level).ok_or_else(|| {
            Error::Dataset(format!(
                "{centre} line {line}: {variable} {level} is not a known level"
            ))
        })?;
        let mut codings = Vec::new();
        if let Some((loinc, loinc_display)) = loinc {
            codings.push(code(LOINC, loinc, loinc_display));
        }
        codings.push(uci(variable, display));
        let concept = json!({"coding": [code(&format!("{UCI}/{variable}"), &level, meaning)]});
        resources.push(observation(
            variable,
            codings,
            ("valueCodeableConcept", concept),
        ));
    }
    if let Some(num) = value("num")? {
        let confirmed = num > 0.0;
        let mut condition = json!({
            "resourceType": "Condition",
            "id": format!("{id}-num"),
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": if confirmed { "confirmed" } else { "refuted" }}]},
            "code": {"coding": [code("http://snomed.info/sct", "53741008", "Coronary arteriosclerosis"), uci("num", "angiographic disease status (> 50% diameter narrowing)")]},
            "subject": subject,
        });
        if confirmed {
            condition["clinicalStatus"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]});
            condition["stage"] = json!([{"summary": {"coding": [code(&format!("{UCI}/num"), &format!("{num}"), "vessels with > 50% narrowing (UCI num)")]}}]);
        }
        resources.push(condition);
    }
    Ok(resources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_becomes_patient_observations_and_condition() {
        let data = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n";
        let csv = "center,center_name,source_line,split\n0,cleveland,1,test\n";
        let bundle = centre_bundle("cleveland", data, csv).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        let patient = &entries[1]["resource"];
        assert_eq!(patient["gender"], "male");
        assert_eq!(patient["meta"]["tag"][0]["code"], "test");
        let types: Vec<&str> = entries
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(types.iter().filter(|t| **t == "Observation").count(), 12);
        let condition = entries.last().unwrap();
        assert_eq!(
            condition["resource"]["verificationStatus"]["coding"][0]["code"],
            "refuted"
        );
        for entry in entries {
            crate::validate::validate(&entry["resource"], None).unwrap();
        }
    }

    #[test]
    fn missing_values_leave_out_their_observation() {
        let data = "63,1,1,?,233,1,2,150,0,2.3,?,?,?,2\n";
        let bundle = centre_bundle("va", data, "center,center_name,source_line,split\n").unwrap();
        let ids: Vec<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap())
            .collect();
        assert!(!ids.contains(&"uci-va-1-trestbps"));
        assert!(ids.contains(&"uci-va-1-chol"));
        assert!(centre_bundle("mars", data, "").is_err());
    }
}
