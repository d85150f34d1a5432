//! The header part of the profile on every ultrasound fixture: nothing
//! identifying keeps its value, UIDs are replaced consistently, dates of a
//! patient move together, and the output is DICOM again.

mod common;

use std::collections::{HashMap, HashSet};

use common::{all_values, fixtures, key, text};
use deid::action::{Effective, resolve};
use deid::patient::PatientIdentity;
use deid::table::ProfileTable;
use deid::{Deidentifier, Options, ProfileOption};
use dicom_core::VR;
use dicom_dictionary_std::tags;

fn headers_only(options: Options) -> Deidentifier {
    Deidentifier::new(key(), options.without(ProfileOption::CleanPixelData)).expect("valid")
}

/// The fixture parsed, and its de-identified output parsed back.
fn before_after(
    deid: &Deidentifier,
    bytes: &[u8],
) -> (
    dicom_object::DefaultDicomObject,
    dicom_object::DefaultDicomObject,
) {
    let input = deid::parse(bytes).expect("fixture parses");
    let out = deid::parse(&deid.deidentify(bytes).expect("deid").bytes).expect("reparse");
    (input, out)
}

/// (tag, value) of every primitive element at any depth.
fn value_set(obj: &dicom_object::InMemDicomObject) -> HashSet<(dicom_core::Tag, String)> {
    all_values(obj)
        .into_iter()
        .map(|(t, _, v)| (t, v))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_fixture_comes_out_as_readable_dicom_with_the_markers_set() {
    let deid = headers_only(Options::training());
    for (name, bytes) in fixtures() {
        let out = deid
            .deidentify(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let obj = deid::parse(&out.bytes).unwrap_or_else(|e| panic!("{name}: output: {e}"));
        assert_eq!(
            text(&obj, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
            Some("YES")
        );
        assert_eq!(
            text(&obj, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).as_deref(),
            Some("MODIFIED")
        );
        let codes: Vec<String> = obj
            .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
            .and_then(|e| e.items())
            .expect("code sequence")
            .iter()
            .filter_map(|item| text(item, tags::CODE_VALUE))
            .collect();
        assert_eq!(
            codes,
            ["113100", "113105", "113107", "113108", "113109"],
            "{name}"
        );
        assert_eq!(
            obj.meta().media_storage_sop_instance_uid(),
            text(&obj, tags::SOP_INSTANCE_UID)
                .expect("SOP instance")
                .as_str()
        );
    }
}

#[test]
fn no_attribute_of_the_table_keeps_its_value_under_the_basic_profile() {
    let deid = headers_only(Options::basic());
    let table = ProfileTable::standard();
    for (name, bytes) in fixtures() {
        let (input, out) = before_after(&deid, &bytes);
        let after = value_set(&out);
        for (tag, vr, value) in all_values(&input) {
            if value.is_empty() || vr == VR::SQ || table.rule(tag).is_none() {
                continue;
            }
            assert!(
                !after.contains(&(tag, value.clone())),
                "{name}: {tag} kept its value {value:?}"
            );
        }
        assert!(
            all_values(&out).iter().all(|(t, _, _)| t.group() % 2 == 0),
            "{name}: a private attribute survived"
        );
    }
}

#[test]
fn identifying_values_are_gone_under_the_training_profile_except_retained_ones() {
    let options = Options::training();
    let deid = headers_only(options.clone());
    let table = ProfileTable::standard();
    for (name, bytes) in fixtures() {
        let (input, out) = before_after(&deid, &bytes);
        let after = value_set(&out);
        for (tag, vr, value) in all_values(&input) {
            let Some(rule) = table.rule(tag) else {
                continue;
            };
            let effective = resolve(rule, tag, &options);
            // kept by a claimed option, or free text with nothing identifying in it
            let may_stay = effective == Effective::Keep
                || (effective == Effective::Clean && !matches!(vr, VR::DA | VR::DT | VR::AE));
            if value.is_empty() || vr == VR::SQ || may_stay {
                continue;
            }
            assert!(
                !after.contains(&(tag, value.clone())),
                "{name}: {} ({tag}) kept {value:?}",
                rule.keyword
            );
        }
    }
}

#[test]
fn no_original_instance_uid_survives_anywhere_in_the_output_bytes() {
    let deid = headers_only(Options::training());
    for (name, bytes) in fixtures() {
        let input = deid::parse(&bytes).expect("fixture parses");
        let out = deid.deidentify(&bytes).expect("deid").bytes;
        for (tag, vr, value) in all_values(&input) {
            let class = [tags::SOP_CLASS_UID, tags::REFERENCED_SOP_CLASS_UID].contains(&tag);
            if vr != VR::UI || class || value.is_empty() || value.starts_with("1.2.840.10008.") {
                continue;
            }
            assert!(
                !contains(&out, value.as_bytes()),
                "{name}: original UID {value} ({tag}) found in the output"
            );
        }
    }
}

#[test]
fn the_same_key_gives_the_same_bytes_across_runs() {
    let first = headers_only(Options::training());
    let second = headers_only(Options::training());
    for (name, bytes) in fixtures() {
        let a = first.deidentify(&bytes).expect("deid").bytes;
        let b = second.deidentify(&bytes).expect("deid").bytes;
        assert!(a == b, "{name}: two runs differ");
    }
}

#[test]
fn uids_shared_between_input_files_stay_shared_and_distinct_ones_stay_distinct() {
    let deid = headers_only(Options::training());
    let mut mapping: HashMap<String, String> = HashMap::new();
    for (name, bytes) in fixtures() {
        let (input, out) = before_after(&deid, &bytes);
        for tag in [
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::SOP_INSTANCE_UID,
        ] {
            let (Some(before), Some(after)) = (text(&input, tag), text(&out, tag)) else {
                continue;
            };
            assert!(after.starts_with("2.25."), "{name}: {after}");
            let previous = mapping.entry(before.clone()).or_insert(after.clone());
            assert_eq!(
                *previous, after,
                "{name}: {before} mapped twice differently"
            );
        }
    }
    let outputs: HashSet<&String> = mapping.values().collect();
    assert_eq!(
        outputs.len(),
        mapping.len(),
        "two originals share a replacement"
    );
}

#[test]
fn dates_of_one_patient_move_by_one_offset() {
    let deid = headers_only(Options::training());
    let mut offsets: HashMap<String, i64> = HashMap::new();
    for (name, bytes) in fixtures() {
        let input = deid::parse(&bytes).expect("fixture parses");
        let result = deid.deidentify(&bytes).expect("deid");
        let out = deid::parse(&result.bytes).expect("reparse");
        // the key holder re-derives the offset: the report does not carry it
        let offset = key().date_offset_days(&PatientIdentity::of(&input).key_text);
        if let Some(id) = text(&input, tags::PATIENT_ID).filter(|id| !id.is_empty()) {
            let previous = *offsets.entry(id.clone()).or_insert(offset);
            assert_eq!(
                previous, offset,
                "{name}: patient {id} moved by two offsets"
            );
        }
        let (Some(before), Some(after)) = (
            text(&input, tags::STUDY_DATE).filter(|d| !d.is_empty()),
            text(&out, tags::STUDY_DATE),
        ) else {
            continue;
        };
        let expected = deid::dates::shift_dates(&before, offset).expect("fixture date");
        assert_eq!(after, expected, "{name}");
        assert_ne!(after, before, "{name}");
    }
    assert!(offsets.len() >= 4, "fixtures cover several patients");
}

#[test]
fn pseudonymous_patient_ids_are_stable_and_reveal_nothing() {
    let deid = headers_only(Options::training());
    let mut seen: HashMap<String, String> = HashMap::new();
    for (name, bytes) in fixtures() {
        let (input, out) = before_after(&deid, &bytes);
        let Some(id) = text(&input, tags::PATIENT_ID).filter(|id| !id.is_empty()) else {
            continue;
        };
        let pseudonym = text(&out, tags::PATIENT_ID).expect("pseudonym written");
        assert_ne!(pseudonym, id, "{name}");
        assert_eq!(pseudonym.len(), 16, "{name}");
        let previous = seen.entry(id).or_insert(pseudonym.clone());
        assert_eq!(*previous, pseudonym, "{name}");
    }
}
