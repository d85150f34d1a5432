//! The per-file report is stored beside the outputs: it says what was done
//! (attributes by action, pixel regions blanked) and nothing that undoes a
//! keyed transformation — no date offset, no original UID, no original
//! patient value.

mod common;

use common::{all_values, fixtures, key, text};
use deid::patient::PatientIdentity;
use deid::{Deidentifier, Options, ProfileOption};
use dicom_core::VR;
use dicom_dictionary_std::tags;

/// Every key of a JSON object, at any depth.
fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// Every number of a JSON value, at any depth.
fn numbers(value: &serde_json::Value, out: &mut Vec<f64>) {
    match value {
        serde_json::Value::Number(n) => out.extend(n.as_f64()),
        serde_json::Value::Object(map) => map.values().for_each(|v| numbers(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| numbers(v, out)),
        _ => {}
    }
}

/// The report of `bytes`, as JSON, with the date offset the key gives it.
fn report_and_offset(deid: &Deidentifier, bytes: &[u8]) -> (String, i64) {
    let input = deid::parse(bytes).expect("fixture parses");
    let result = deid.deidentify(bytes).expect("deid");
    let offset = key().date_offset_days(&PatientIdentity::of(&input).key_text);
    (serde_json::to_string(&result.report).expect("json"), offset)
}

fn assert_reveals_nothing(name: &str, bytes: &[u8], json: &str, offset: i64) {
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    let mut names = Vec::new();
    keys(&value, &mut names);
    assert!(
        !names.iter().any(|k| k.contains("offset")),
        "{name}: the report names an offset: {json}"
    );
    let mut found = Vec::new();
    numbers(&value, &mut found);
    assert!(
        !found.contains(&(offset as f64)) && !found.contains(&(-offset as f64)),
        "{name}: the date offset {offset} is in the report: {json}"
    );
    let input = deid::parse(bytes).expect("fixture parses");
    for (tag, vr, original) in all_values(&input) {
        // standard UIDs (SOP class, transfer syntax) name what a file is, not who
        if vr == VR::UI && !original.is_empty() && !original.starts_with("1.2.840.10008.") {
            assert!(
                !json.contains(&original),
                "{name}: original UID {original} of {tag} is in the report"
            );
        }
    }
    for tag in [
        tags::PATIENT_ID,
        tags::PATIENT_NAME,
        tags::PATIENT_BIRTH_DATE,
        tags::STUDY_DATE,
        tags::ACCESSION_NUMBER,
    ] {
        if let Some(original) = text(&input, tag).filter(|v| v.len() >= 3) {
            assert!(
                !json.contains(&original),
                "{name}: original value {original} of {tag} is in the report"
            );
        }
    }
}

#[test]
fn the_report_holds_no_date_offset_and_no_original_value() {
    let deid = Deidentifier::new(
        key(),
        Options::training().without(ProfileOption::CleanPixelData),
    )
    .expect("valid");
    let mut with_patient_id = 0;
    for (name, bytes) in fixtures() {
        let (json, offset) = report_and_offset(&deid, &bytes);
        assert_reveals_nothing(&name, &bytes, &json, offset);
        let input = deid::parse(&bytes).expect("fixture parses");
        with_patient_id +=
            usize::from(text(&input, tags::PATIENT_ID).is_some_and(|v| v.len() >= 3));
    }
    assert!(with_patient_id >= 4, "fixtures carry patient IDs");
}

#[test]
fn the_report_of_cleaned_pixels_says_what_was_blanked_and_nothing_more() {
    let deid = Deidentifier::new(key(), Options::training()).expect("valid");
    let bytes = std::fs::read(common::fixtures_dir().join("OBXXXX1A.dcm")).expect("fixture");
    let (json, offset) = report_and_offset(&deid, &bytes);
    assert_reveals_nothing("OBXXXX1A.dcm", &bytes, &json, offset);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    // what a reviewer needs is there
    assert!(
        value["pixels"]["boxes"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    );
    assert!(
        value["header"]["removed"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        value["header"]["dates_shifted"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
}
