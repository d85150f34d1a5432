//! The entry point: one DICOM file in (bytes), one de-identified DICOM file
//! out (bytes) with its report. Pure: no file system, no network.

use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

use crate::error::{DeidError, Result};
use crate::header::HeaderContext;
use crate::keys::DeidKey;
use crate::marking::{DateTreatment, mark, method_options};
use crate::options::{Options, ProfileOption};
use crate::patient::{PatientIdentity, scrubber_for, text};
use crate::report::{FileReport, HeaderReport};
use crate::table::ProfileTable;
use crate::{passthrough, pixel};

/// Implementation Class UID written in the file meta of every output.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.186920142751131472811857809843289505389";
/// Implementation Version Name written in the file meta of every output.
pub const IMPLEMENTATION_VERSION_NAME: &str = "COHORT_DEID_1";

/// Explicit VR Big Endian (retired).
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// A de-identified file.
#[derive(Debug, Clone)]
pub struct Deidentified {
    /// The DICOM Part 10 bytes.
    pub bytes: Vec<u8>,
    /// What was done.
    pub report: FileReport,
}

/// De-identifies DICOM files under one key and one set of options.
#[derive(Debug, Clone)]
pub struct Deidentifier {
    key: DeidKey,
    options: Options,
}

impl Deidentifier {
    /// A de-identifier claiming `options`, keyed by `key`.
    pub fn new(key: DeidKey, options: Options) -> Result<Self> {
        options.validate()?;
        Ok(Self { key, options })
    }

    /// The options claimed.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// De-identify one DICOM Part 10 file. Nothing is returned on error, so
    /// a caller never holds half a result.
    pub fn deidentify(&self, input: &[u8]) -> Result<Deidentified> {
        let mut bytes = Vec::with_capacity(input.len() + 4096);
        let report = self.deidentify_to(input, &mut bytes)?;
        Ok(Deidentified { bytes, report })
    }

    /// De-identify one file into `out`. Every check that can fail on the
    /// input happens before the first byte is written; an error after that
    /// comes from `out` itself.
    pub fn deidentify_to(&self, input: &[u8], out: &mut impl std::io::Write) -> Result<FileReport> {
        let clean_pixels = self.options.claims(ProfileOption::CleanPixelData);
        // headers only: try to copy the pixel data through untouched
        let (mut file, pixel_tail) = if clean_pixels {
            (parse(input)?, None)
        } else {
            let header = OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .from_reader(input)
                .map_err(|e| DeidError::Parse(error_chain(&e)))?;
            match passthrough::pixel_data_offset(input, &header) {
                Some(offset) => (header, Some(&input[offset..])),
                None => (parse(input)?, None),
            }
        };
        let transfer_syntax_in = file.meta().transfer_syntax().to_string();
        let sop_class_uid = text(&file, tags::SOP_CLASS_UID).ok_or(DeidError::Invalid {
            attribute: "SOPClassUID",
            reason: "missing".into(),
        })?;
        if text(&file, tags::SOP_INSTANCE_UID).is_none() {
            return Err(DeidError::Invalid {
                attribute: "SOPInstanceUID",
                reason: "missing".into(),
            });
        }

        let pixels = if clean_pixels && file.get(tags::PIXEL_DATA).is_some() {
            Some(pixel::clean(&mut file)?)
        } else {
            None
        };
        let transfer_syntax_out = match file.meta().transfer_syntax() {
            // retired: written as explicit little endian (values are kept, not bytes)
            EXPLICIT_VR_BIG_ENDIAN => uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
            ts => ts.to_string(),
        };

        let identity = PatientIdentity::of(&file);
        let dates = if self
            .options
            .claims(ProfileOption::RetainLongitudinalModifiedDates)
        {
            DateTreatment::Modified
        } else if self
            .options
            .claims(ProfileOption::RetainLongitudinalFullDates)
        {
            DateTreatment::Unmodified
        } else {
            DateTreatment::Removed
        };
        let date_offset = (dates == DateTreatment::Modified)
            .then(|| self.key.date_offset_days(&identity.key_text));
        let scrubber = scrubber_for(&file);
        let mut context = HeaderContext {
            table: ProfileTable::standard(),
            options: &self.options,
            key: &self.key,
            date_offset,
            scrubber: &scrubber,
            patient_pseudonym: self
                .options
                .pseudonymous_patient_id
                .then(|| self.key.pseudonym("PatientID", &identity.key_text, 16)),
            report: HeaderReport::default(),
        };
        let mut dataset = context.clean(file.into_inner());
        let header = context.report;
        mark(&mut dataset, &self.options, dates, pixels.is_some());

        let method_codes = method_options(&self.options, pixels.is_some())
            .iter()
            .map(|o| o.code().to_string())
            .collect();
        let header_bytes = write(dataset, &transfer_syntax_out)?;
        out.write_all(&header_bytes)
            .and_then(|()| out.write_all(pixel_tail.unwrap_or_default()))
            .map_err(|e| DeidError::Write(e.to_string()))?;
        Ok(FileReport {
            sop_class_uid,
            transfer_syntax_in,
            transfer_syntax_out,
            patient_identity: identity.source,
            date_offset_days: date_offset,
            header,
            pixels,
            method_codes,
        })
    }
}

/// Read a DICOM Part 10 file from memory.
pub fn parse(input: &[u8]) -> Result<DefaultDicomObject> {
    OpenFileOptions::new()
        .from_reader(input)
        .map_err(|e| DeidError::Parse(error_chain(&e)))
}

/// An error with its causes, one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn write(dataset: InMemDicomObject, transfer_syntax: &str) -> Result<Vec<u8>> {
    let file = dataset
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(transfer_syntax)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| DeidError::Write(error_chain(&e)))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| DeidError::Write(error_chain(&e)))?;
    Ok(bytes)
}
