//! What the index needs to know about one received instance, read from its
//! header (the pixel data is not parsed; [`crate::validate`] checks it).

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
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
    /// Patient's Name (as encoded, components separated by `^`).
    #[serde(default)]
    pub patient_name: Option<String>,
    /// Patient's Birth Date.
    #[serde(default)]
    pub patient_birth_date: Option<String>,
    /// Patient's Sex.
    #[serde(default)]
    pub patient_sex: Option<String>,
    /// Study ID.
    #[serde(default)]
    pub study_id: Option<String>,
    /// Referring Physician's Name.
    #[serde(default)]
    pub referring_physician: Option<String>,
    /// Rows.
    #[serde(default)]
    pub rows: Option<u32>,
    /// Columns.
    #[serde(default)]
    pub columns: Option<u32>,
    /// Samples per Pixel.
    #[serde(default)]
    pub samples_per_pixel: Option<u32>,
    /// Bits Allocated.
    #[serde(default)]
    pub bits_allocated: Option<u32>,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = obj.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
    (!value.is_empty()).then(|| value.to_string())
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

/// Bytes of a stored file read first for its header (more while the header runs on).
const HEADER_READ: u64 = 64 * 1024;

fn count(obj: &InMemDicomObject, tag: Tag) -> Option<u32> {
    int(obj, tag).and_then(|n| u32::try_from(n).ok())
}

impl InstanceInfo {
    /// Read the header of a DICOM Part 10 file in memory. Refuses files
    /// without the three identifying UIDs or whose SOP class is not accepted.
    pub fn read(bytes: &[u8], accepted_classes: &[&str]) -> Result<Self> {
        // The parser reserves a value's declared length before reading it: no length in the
        // header may outgrow the file.
        deid::lengths::check_prefix(bytes, bytes.len() as u64, true)
            .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
        let file = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .from_reader(bytes)
            .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
        Self::from_header(&file, accepted_classes)
    }

    /// Like [`InstanceInfo::read`], for a file on disk (only as much of it as the header
    /// takes is read).
    pub fn read_file(path: &std::path::Path, accepted_classes: &[&str]) -> Result<Self> {
        use std::io::Read;
        let unreadable = |e: std::io::Error| {
            ImagingError::InvalidInstance(format!("cannot read {}: {e}", path.display()))
        };
        let mut file = std::fs::File::open(path).map_err(unreadable)?;
        let total = file.metadata().map_err(unreadable)?.len();
        let mut head = Vec::new();
        let mut want = HEADER_READ;
        loop {
            (&mut file)
                .take(want - head.len() as u64)
                .read_to_end(&mut head)
                .map_err(unreadable)?;
            let whole = head.len() as u64 >= total;
            let prefix = deid::lengths::check_prefix(&head, total, true)
                .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
            if whole || prefix == deid::lengths::Prefix::Fits {
                break;
            }
            want *= 4;
        }
        let file = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .from_reader(head.as_slice())
            .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
        Self::from_header(&file, accepted_classes)
    }

    fn from_header(file: &DefaultDicomObject, accepted_classes: &[&str]) -> Result<Self> {
        let required = |tag: Tag, name: &str| -> Result<String> {
            let value = text(file, tag)
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
            patient: text(file, tags::PATIENT_ID).map(|value| PatientIdentifier {
                issuer: text(file, tags::ISSUER_OF_PATIENT_ID),
                value,
            }),
            accession_number: text(file, tags::ACCESSION_NUMBER),
            study_date: text(file, tags::STUDY_DATE),
            study_time: text(file, tags::STUDY_TIME),
            study_description: text(file, tags::STUDY_DESCRIPTION),
            modality: text(file, tags::MODALITY),
            series_number: int(file, tags::SERIES_NUMBER),
            series_description: text(file, tags::SERIES_DESCRIPTION),
            instance_number: int(file, tags::INSTANCE_NUMBER),
            frames: int(file, tags::NUMBER_OF_FRAMES)
                .map_or(1, |n| n.clamp(1, u32::MAX.into()) as u32),
            patient_name: text(file, tags::PATIENT_NAME),
            patient_birth_date: text(file, tags::PATIENT_BIRTH_DATE),
            patient_sex: text(file, tags::PATIENT_SEX),
            study_id: text(file, tags::STUDY_ID),
            referring_physician: text(file, tags::REFERRING_PHYSICIAN_NAME),
            rows: count(file, tags::ROWS),
            columns: count(file, tags::COLUMNS),
            samples_per_pixel: count(file, tags::SAMPLES_PER_PIXEL),
            bits_allocated: count(file, tags::BITS_ALLOCATED),
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
