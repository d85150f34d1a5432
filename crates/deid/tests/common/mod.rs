//! Helpers shared by the integration tests: where the fixtures are, and a
//! walk over every element of a data set at any depth.
#![allow(dead_code)] // each test binary uses a different subset

pub mod corrupt;
mod fixtures;
pub use fixtures::fixtures_dir;

use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;

/// Every `.dcm` fixture: (file name, bytes), sorted by name.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures dir readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dcm"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("fixture readable");
            (n, bytes)
        })
        .collect()
}

/// A test key.
pub fn key() -> deid::DeidKey {
    deid::DeidKey::new(b"cohort test key, not a real secret").expect("long enough")
}

/// (tag, VR, text value) of every primitive element, at any depth.
pub fn all_values(obj: &InMemDicomObject) -> Vec<(Tag, VR, String)> {
    let mut out = Vec::new();
    walk(obj, &mut out);
    out
}

fn walk(obj: &InMemDicomObject, out: &mut Vec<(Tag, VR, String)>) {
    for element in obj.iter() {
        match element.value() {
            Value::Sequence(seq) => {
                out.push((element.tag(), VR::SQ, String::new()));
                for item in seq.items() {
                    walk(item, out);
                }
            }
            Value::Primitive(_) => {
                let text = element
                    .to_str()
                    .map(|t| t.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default();
                out.push((element.tag(), element.vr(), text));
            }
            Value::PixelSequence(_) => {}
        }
    }
}

/// Text of a top-level attribute.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = obj.get(tag)?.to_str().ok()?;
    Some(value.trim_end_matches(['\0', ' ']).to_string())
}
