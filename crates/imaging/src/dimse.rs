//! DIMSE command sets for C-ECHO and C-STORE (PS3.7): reading requests and
//! writing responses, always in implicit VR little endian.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{ImagingError, Result};

/// C-STORE-RQ command field.
pub const C_STORE_RQ: u16 = 0x0001;
/// C-ECHO-RQ command field.
pub const C_ECHO_RQ: u16 = 0x0030;
/// Command Data Set Type meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// DIMSE status: success.
pub const SUCCESS: u16 = 0x0000;
/// DIMSE status: refused, SOP class not supported.
pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// DIMSE status: error, data set does not match SOP class.
pub const DATA_SET_MISMATCH: u16 = 0xA900;
/// DIMSE status: error, cannot understand.
pub const CANNOT_UNDERSTAND: u16 = 0xC000;
/// DIMSE status: refused, out of resources.
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// DIMSE status: failure, duplicate SOP instance (a different object is
/// already stored under this SOP Instance UID).
pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;

/// The failure status (C-STORE status, STOW-RS Failure Reason) for an
/// instance refused with `error`.
pub fn failure_status(error: &ImagingError) -> u16 {
    match error {
        ImagingError::InvalidInstance(_) => CANNOT_UNDERSTAND,
        ImagingError::Inconsistent(_)
        | ImagingError::UnsupportedSopClass(_)
        | ImagingError::InvalidUid(_) => DATA_SET_MISMATCH,
        ImagingError::Conflict(_) => DUPLICATE_SOP_INSTANCE,
        _ => OUT_OF_RESOURCES,
    }
}

/// The fields of a request this receiver acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Command Field.
    pub command: u16,
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID.
    pub sop_class_uid: String,
    /// Affected SOP Instance UID (C-STORE).
    pub sop_instance_uid: String,
    /// Whether a data set follows.
    pub has_data_set: bool,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// Read a command set.
pub fn read_request(bytes: &[u8]) -> Result<Request> {
    let ts = TransferSyntaxRegistry
        .get(uids::IMPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| ImagingError::Network("implicit VR little endian not registered".into()))?;
    // The parser reserves a value's declared length before reading it.
    deid::lengths::check_dataset(bytes, uids::IMPLICIT_VR_LITTLE_ENDIAN)
        .map_err(|e| ImagingError::Network(format!("unreadable command set: {e}")))?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| ImagingError::Network(format!("unreadable command set: {e}")))?;
    let int = |tag: Tag| obj.get(tag).and_then(|e| e.to_int::<u16>().ok());
    Ok(Request {
        command: int(tags::COMMAND_FIELD)
            .ok_or_else(|| ImagingError::Network("command field missing".into()))?,
        message_id: int(tags::MESSAGE_ID).unwrap_or(0),
        sop_class_uid: text(&obj, tags::AFFECTED_SOP_CLASS_UID),
        sop_instance_uid: text(&obj, tags::AFFECTED_SOP_INSTANCE_UID),
        has_data_set: int(tags::COMMAND_DATA_SET_TYPE) != Some(NO_DATA_SET),
    })
}

/// The response to `request` with `status` and, for failures, an Error
/// Comment (cut to its 64 characters), encoded.
pub fn response(request: &Request, status: u16, comment: Option<&str>) -> Result<Vec<u8>> {
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_class_uid.as_str()),
        ),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            PrimitiveValue::from(request.command | 0x8000),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            PrimitiveValue::from(request.message_id),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(NO_DATA_SET),
        ),
        DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(status)),
    ];
    if let Some(comment) = comment {
        let comment: String = comment.chars().filter(char::is_ascii).take(64).collect();
        elements.push(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            PrimitiveValue::from(comment),
        ));
    }
    if request.command == C_STORE_RQ {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_instance_uid.as_str()),
        ));
    }
    let ts = TransferSyntaxRegistry
        .get(uids::IMPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| ImagingError::Network("implicit VR little endian not registered".into()))?;
    let mut out = Vec::new();
    InMemDicomObject::command_from_element_iter(elements)
        .write_dataset_with_ts(&mut out, ts)
        .map_err(|e| ImagingError::Network(format!("cannot encode response: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_response_answers_the_request_it_read() {
        let request = Request {
            command: C_ECHO_RQ,
            message_id: 7,
            sop_class_uid: uids::VERIFICATION.to_string(),
            sop_instance_uid: String::new(),
            has_data_set: false,
        };
        let bytes = response(&request, SUCCESS, None).expect("encodes");
        let back = read_request(&bytes).expect("decodes");
        assert_eq!(back.command, C_ECHO_RQ | 0x8000);
        assert_eq!(back.sop_class_uid, uids::VERIFICATION);
        assert!(!back.has_data_set);
    }
}
