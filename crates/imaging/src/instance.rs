//! What the index needs to know about one received instance, read from its
//! header (the pixel data is not parsed).

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use serde::{Deserialize, Serialize};

use crate::ehr::PatientIdentifier;
use crate::error::{ImagingError, Result};
use crate::uid;

/// SOP classes stored by this receiver: ultrasound single- and multi-frame
/// images (current and retired), enhanced ultrasound volumes.
pub const ULTRASOUND_SOP_CLASSES: [&str; 5] = [
    "1.2.840.10008.5.1.4.1.1.6.1", // Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1", // Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.6.2", // Enhanced US Volume Storage
    "1.2.840.10008.5.1.4.1.1.6",   // Ultrasound Image Storage (retired)
    "1.2.840.10008.5.1.4.1.1.3",   // Ultrasound Multi-frame Image Storage (retired)
];

/// Header facts of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub sop_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Transfer syntax of the stored file.
    pub transfer_syntax: String,
    /// The hospital's patient identifier, if the instance carries one.
    pub patient: Option<PatientIdentifier>,
    /// Accession Number.
    pub accession_number: Option<String>,
    /// Study Date (`YYYYMMDD`).
    pub study_date: Option<String>,
    /// Study Time (`HHMMSS.F`).
    pub study_time: Option<String>,
    /// Study Description.
    pub study_description: Option<String>,
    /// Modality.
    pub modality: Option<String>,
    /// Series Number.
    pub series_number: Option<i64>,
    /// Series Description.
    pub series_description: Option<String>,
    /// Instance Number.
    pub instance_number: Option<i64>,
    /// Number of Frames (1 when absent).
    pub frames: u32,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = obj.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
    (!value.is_empty()).then(|| value.to_string())
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

impl InstanceInfo {
    /// Read the header of a DICOM Part 10 file. Refuses files without the
    /// three identifying UIDs or whose SOP class is not accepted.
    pub fn read(bytes: &[u8], accepted_classes: &[&str]) -> Result<Self> {
        let file = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .from_reader(bytes)
            .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
        let required = |tag: Tag, name: &str| -> Result<String> {
            let value = text(&file, tag)
                .ok_or_else(|| ImagingError::InvalidInstance(format!("{name} missing")))?;
            Ok(uid::checked(&value)?.to_string())
        };
        let sop_class_uid = required(tags::SOP_CLASS_UID, "SOPClassUID")?;
        if !accepted_classes.contains(&sop_class_uid.as_str()) {
            return Err(ImagingError::UnsupportedSopClass(sop_class_uid));
        }
        Ok(Self {
            study_uid: required(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?,
            series_uid: required(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?,
            sop_uid: required(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?,
            sop_class_uid,
            transfer_syntax: file.meta().transfer_syntax().to_string(),
            patient: text(&file, tags::PATIENT_ID).map(|value| PatientIdentifier {
                issuer: text(&file, tags::ISSUER_OF_PATIENT_ID),
                value,
            }),
            accession_number: text(&file, tags::ACCESSION_NUMBER),
            study_date: text(&file, tags::STUDY_DATE),
            study_time: text(&file, tags::STUDY_TIME),
            study_description: text(&file, tags::STUDY_DESCRIPTION),
            modality: text(&file, tags::MODALITY),
            series_number: int(&file, tags::SERIES_NUMBER),
            series_description: text(&file, tags::SERIES_DESCRIPTION),
            instance_number: int(&file, tags::INSTANCE_NUMBER),
            frames: int(&file, tags::NUMBER_OF_FRAMES).map_or(1, |n| n.max(1) as u32),
        })
    }

    /// Where the instance is stored in the object store.
    pub fn path(&self) -> String {
        instance_path(&self.study_uid, &self.series_uid, &self.sop_uid)
    }
}

/// Object path of an instance (UIDs must have been checked).
pub fn instance_path(study: &str, series: &str, instance: &str) -> String {
    format!("studies/{study}/series/{series}/instances/{instance}.dcm")
}
