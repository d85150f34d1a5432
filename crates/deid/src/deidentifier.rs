//! The entry point: one DICOM file in (bytes), one de-identified DICOM file
//! out (bytes) with its report. Pure: no file system, no network.

use dicom_core::header::Header;
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::mem::InMemElement;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{DeidError, Result};
use crate::header::HeaderContext;
use crate::keys::DeidKey;
use crate::lengths::{self, Prefix};
use crate::marking::{DateTreatment, mark, method_options};
use crate::options::{Options, ProfileOption};
use crate::passthrough::{self, ReadAt};
use crate::patient::{PatientIdentity, scrubber_for, text};
use crate::pixel;
use crate::report::{FileReport, HeaderReport};
use crate::table::ProfileTable;

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
    pixel_memory: usize,
}

impl Deidentifier {
    /// A de-identifier claiming `options`, keyed by `key`.
    pub fn new(key: DeidKey, options: Options) -> Result<Self> {
        options.validate()?;
        Ok(Self {
            key,
            options,
            pixel_memory: pixel::DEFAULT_PIXEL_MEMORY,
        })
    }

    /// Hold at most about `bytes` of decoded pixels at once while cleaning them (default
    /// [`pixel::DEFAULT_PIXEL_MEMORY`]; see [`pixel::clean`]).
    pub fn with_pixel_memory(mut self, bytes: usize) -> Self {
        self.pixel_memory = bytes;
        self
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
        // headers only: copy the pixel data through untouched (or, from big
        // endian, with its words swapped) instead of parsing and re-encoding it
        let (header_bytes, pixel_data, report) = match self.splice(input, input, true)? {
            Some(Splice::Copy(header)) => {
                let range = header.pixel_data.start as usize..header.pixel_data.end as usize;
                (header.bytes, &input[range], header.report)
            }
            Some(Splice::FromBigEndian {
                mut bytes,
                pixels,
                report,
            }) => {
                append_little_endian_pixels(&mut bytes, input, &pixels);
                (bytes, &[][..], report)
            }
            None => {
                let (dataset, report) = self.clean(parse(input)?)?;
                (
                    write(dataset, &report.transfer_syntax_out)?,
                    &[][..],
                    report,
                )
            }
        };
        out.write_all(&header_bytes)
            .and_then(|()| out.write_all(pixel_data))
            .map_err(|e| DeidError::Write(e.to_string()))?;
        Ok(report)
    }

    /// The headers-only path from the start of a file, for a caller that
    /// copies the pixel data itself: `head` holds the first bytes of
    /// `input` (enough for every element before Pixel Data, e.g. 64 KiB),
    /// and what follows is read from `input` a few bytes at a time.
    ///
    /// `Ok(None)` when this path does not apply: pixels are cleaned, `head`
    /// is too short, there is no Pixel Data, something after it is kept, or
    /// the transfer syntax is rewritten. The caller then reads the whole
    /// file and calls [`Self::deidentify`], which gives the same bytes when
    /// this path applies: the output is [`HeaderOnly::bytes`] followed by
    /// the input's [`HeaderOnly::pixel_data`] bytes.
    pub fn deidentify_header(
        &self,
        head: &[u8],
        input: &(impl ReadAt + ?Sized),
    ) -> Result<Option<HeaderOnly>> {
        Ok(match self.splice(head, input, false)? {
            Some(Splice::Copy(header)) => Some(header),
            _ => None,
        })
    }

    /// The headers-only paths: [`Self::deidentify_header`], and with
    /// `big_endian` (all of `input` in `head`) also big endian inputs whose
    /// native pixel data is rewritten as little endian without parsing it.
    fn splice(
        &self,
        head: &[u8],
        input: &(impl ReadAt + ?Sized),
        big_endian: bool,
    ) -> Result<Option<Splice>> {
        if self.options.claims(ProfileOption::CleanPixelData) {
            return Ok(None);
        }
        let whole = head.len() as u64 >= input.size();
        // no length in the header may outgrow the file (the parser allocates it first)
        if lengths::check_prefix(head, input.size(), true)? == Prefix::Incomplete {
            return Ok(None);
        }
        let mut file = match OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .from_reader(head)
        {
            Ok(header) => header,
            Err(e) if whole => return Err(DeidError::Parse(error_chain(&e))),
            // perhaps cut inside the header: the caller reads it all
            Err(_) => return Ok(None),
        };
        let mut swapped = None;
        let pixel_data = match passthrough::pixel_data_range(head, input, &file) {
            Some(range) => range,
            None if big_endian && whole => {
                let Some(pixels) = passthrough::big_endian_pixel_data(head, &file) else {
                    return Ok(None);
                };
                let range = pixels.range.clone();
                swapped = Some(pixels);
                range
            }
            None => return Ok(None),
        };
        if pixel_data.end < input.size() {
            // e.g. Data Set Trailing Padding: cleaned with the rest
            let Some(trailing) = trailing_elements(input, pixel_data.end, &file) else {
                return Ok(None);
            };
            for element in trailing {
                file.put(element);
            }
        }
        let (dataset, report) = self.clean(file)?;
        if dataset.iter().any(|e| e.tag() > tags::PIXEL_DATA) {
            // something after Pixel Data is kept: the output is not a splice
            return Ok(None);
        }
        let bytes = write(dataset, &report.transfer_syntax_out)?;
        Ok(Some(match swapped {
            Some(pixels) => Splice::FromBigEndian {
                bytes,
                pixels,
                report,
            },
            None => Splice::Copy(HeaderOnly {
                bytes,
                pixel_data,
                report,
            }),
        }))
    }

    /// Clean `file` (pixels too when claimed and present).
    fn clean(&self, mut file: DefaultDicomObject) -> Result<(InMemDicomObject, FileReport)> {
        let clean_pixels = self.options.claims(ProfileOption::CleanPixelData);
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
            Some(pixel::clean(&mut file, self.pixel_memory)?)
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
        let report = FileReport {
            sop_class_uid,
            transfer_syntax_in,
            transfer_syntax_out,
            patient_identity: identity.source,
            header,
            pixels,
            method_codes,
        };
        Ok((dataset, report))
    }
}

/// Most bytes after Pixel Data that the headers-only path reads and cleans.
const MAX_TRAILING_BYTES: u64 = 64 * 1024;

/// The top-level elements from `from` to the end of `input`, all after
/// Pixel Data; `None` when there are too many bytes, they do not parse, or
/// one is out of order (the whole-file path then decides).
fn trailing_elements(
    input: &(impl ReadAt + ?Sized),
    from: u64,
    header: &DefaultDicomObject,
) -> Option<Vec<InMemElement>> {
    let len = input.size().checked_sub(from)?;
    if len > MAX_TRAILING_BYTES {
        return None;
    }
    let mut bytes = vec![0u8; len as usize];
    input.read_exact_at(from, &mut bytes).ok()?;
    lengths::check_dataset(&bytes, header.meta().transfer_syntax()).ok()?;
    let ts = TransferSyntaxRegistry.get(header.meta().transfer_syntax())?;
    let elements: Vec<InMemElement> = InMemDicomObject::read_dataset_with_ts(&bytes[..], ts)
        .ok()?
        .into_iter()
        .collect();
    elements
        .iter()
        .all(|e| e.tag() > tags::PIXEL_DATA)
        .then_some(elements)
}

/// What the headers-only paths give.
enum Splice {
    /// The input's pixel data follows the header as it is.
    Copy(HeaderOnly),
    /// The big endian input's pixel data follows, written as little endian.
    FromBigEndian {
        bytes: Vec<u8>,
        pixels: passthrough::BigEndianPixels,
        report: FileReport,
    },
}

/// Append the Pixel Data element `pixels` of the big endian `input` to
/// `out` as Explicit VR Little Endian writes it: the same VR and length,
/// 16-bit words (OW) byte-swapped.
fn append_little_endian_pixels(
    out: &mut Vec<u8>,
    input: &[u8],
    pixels: &passthrough::BigEndianPixels,
) {
    let element = &input[pixels.range.start as usize..pixels.range.end as usize];
    let (element_header, value) = element.split_at(12);
    out.reserve(element.len());
    out.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
    out.extend_from_slice(&element_header[4..8]);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let from = out.len();
    out.extend_from_slice(value);
    if pixels.words {
        for word in out[from..].chunks_exact_mut(2) {
            word.swap(0, 1);
        }
    }
}

/// A de-identified header whose pixel data is copied through unchanged.
#[derive(Debug, Clone)]
pub struct HeaderOnly {
    /// The DICOM Part 10 bytes up to (not including) Pixel Data.
    pub bytes: Vec<u8>,
    /// Where the Pixel Data element is in the input: those bytes, copied
    /// as they are, are the rest of the output.
    pub pixel_data: std::ops::Range<u64>,
    /// What was done.
    pub report: FileReport,
}

/// Read a DICOM Part 10 file from memory, once its declared lengths are
/// checked against its size ([`lengths::check_declared_lengths`]).
pub fn parse(input: &[u8]) -> Result<DefaultDicomObject> {
    lengths::check_declared_lengths(input)?;
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

#[cfg(test)]
#[path = "../tests/common/fixtures.rs"]
mod test_fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = super::test_fixtures::fixtures_dir();
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("fixtures present")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".dcm"))
            .map(|name| {
                let bytes = std::fs::read(dir.join(&name)).expect("readable");
                (name, bytes)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_spliced_output_is_the_whole_file_paths_output() {
        let key = DeidKey::new(b"a test secret of enough bytes").expect("key");
        let options = Options::training().without(ProfileOption::CleanPixelData);
        let deid = Deidentifier::new(key, options).expect("options");
        let mut spliced = Vec::new();
        for (name, input) in fixtures() {
            let fast = deid.deidentify(&input).expect(&name);
            let (dataset, report) = deid.clean(parse(&input).expect(&name)).expect(&name);
            let whole = write(dataset, &report.transfer_syntax_out).expect(&name);
            assert!(fast.bytes == whole, "{name}: the splice differs");
            if deid
                .deidentify_header(&input, &input[..])
                .expect(&name)
                .is_some()
            {
                spliced.push(name);
            }
        }
        // all but big endian (rewritten as little endian)
        assert_eq!(spliced.len(), 15, "{spliced:?}");
    }
}
