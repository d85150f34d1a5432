//! DICOM JSON (PS3.18 F.2) of an instance's header, for WADO-RS metadata.
//! Pixel Data is never included (the header is read up to it); other binary
//! values up to [`MAX_INLINE_BINARY`] bytes are inlined as base64.

use base64::Engine;
use dicom_core::{DicomValue, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use serde_json::{Map, Value, json};

use crate::error::{ImagingError, Result};

/// Largest binary value written inline; longer ones are left out.
pub const MAX_INLINE_BINARY: usize = 64 * 1024;

/// The metadata of a DICOM file held in memory.
pub fn metadata(bytes: &[u8]) -> Result<Value> {
    let file = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
    Ok(to_json(&file))
}

/// The DICOM JSON object of a data set.
pub fn to_json(object: &InMemDicomObject) -> Value {
    let mut out = Map::new();
    for element in object {
        let header = element.header();
        let vr = header.vr;
        let mut attribute = json!({ "vr": vr.to_string() });
        match element.value() {
            DicomValue::Sequence(sequence) => {
                attribute["Value"] = sequence.items().iter().map(to_json).collect();
            }
            DicomValue::PixelSequence(_) => continue,
            DicomValue::Primitive(value) if value.multiplicity() == 0 => {}
            DicomValue::Primitive(value) => match vr {
                VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
                    let bytes = value.to_bytes();
                    if bytes.len() > MAX_INLINE_BINARY {
                        continue;
                    }
                    attribute["InlineBinary"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                }
                VR::PN => {
                    attribute["Value"] = strings(value)
                        .into_iter()
                        .map(|name| json!({ "Alphabetic": name }))
                        .collect();
                }
                VR::AT => {
                    if let PrimitiveValue::Tags(tags) = value {
                        attribute["Value"] = tags
                            .iter()
                            .map(|tag| json!(format!("{:04X}{:04X}", tag.0, tag.1)))
                            .collect();
                    }
                }
                VR::US | VR::SS | VR::UL | VR::SL | VR::SV | VR::UV | VR::IS => {
                    attribute["Value"] = match value.to_multi_int::<i64>() {
                        Ok(numbers) => numbers.into_iter().map(|n| json!(n)).collect(),
                        Err(_) => strings(value).into_iter().map(Value::String).collect(),
                    };
                }
                VR::FL | VR::FD | VR::DS => {
                    attribute["Value"] = match value.to_multi_float64() {
                        Ok(numbers) => numbers
                            .into_iter()
                            .map(|n| {
                                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
                            })
                            .collect(),
                        Err(_) => strings(value).into_iter().map(Value::String).collect(),
                    };
                }
                _ => {
                    attribute["Value"] = strings(value).into_iter().map(Value::String).collect();
                }
            },
        }
        out.insert(
            format!("{:04X}{:04X}", header.tag.0, header.tag.1),
            attribute,
        );
    }
    Value::Object(out)
}

/// The text values of an element, padding trimmed.
fn strings(value: &PrimitiveValue) -> Vec<String> {
    value
        .to_multi_str()
        .iter()
        .map(|v| v.trim_matches([' ', '\0']).to_string())
        .collect()
}
