//! Checking a received instance before it is acknowledged: the whole data set
//! parses to its last byte, native Pixel Data is as long as its rows, columns,
//! samples, bits and frames say, and encapsulated Pixel Data is a closed
//! sequence of well-formed fragments. The file is walked from disk, value by
//! value, so memory does not grow with the instance.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_encoding::{Codec, TransferSyntaxIndex};
use dicom_object::meta::FileMetaTable;
use dicom_parser::StatefulDecode;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{ImagingError, Result};
use crate::instance::InstanceInfo;

fn invalid(message: impl std::fmt::Display) -> ImagingError {
    ImagingError::InvalidInstance(message.to_string())
}

/// Check the DICOM Part 10 file at `path`, whose header says `info`.
pub fn check_file(path: &Path, info: &InstanceInfo) -> Result<()> {
    let file = File::open(path).map_err(invalid)?;
    let size = file.metadata().map_err(invalid)?.len();
    let mut reader = BufReader::new(file);
    let mut head = [0u8; 132];
    reader
        .read_exact(&mut head)
        .map_err(|_| invalid("shorter than a DICOM file header"))?;
    let meta_start = if &head[128..] == b"DICM" {
        128
    } else if &head[..4] == b"DICM" {
        0
    } else {
        return Err(invalid("no DICM prefix: not a DICOM Part 10 file"));
    };
    reader.seek(SeekFrom::Start(meta_start)).map_err(invalid)?;
    let meta = FileMetaTable::from_reader(&mut reader).map_err(invalid)?;
    let ts = TransferSyntaxRegistry
        .get(meta.transfer_syntax())
        .ok_or_else(|| {
            invalid(format!(
                "unknown transfer syntax {}",
                meta.transfer_syntax()
            ))
        })?;
    let pixels = if matches!(ts.codec(), Codec::Dataset(_)) {
        // the deflated stream is read whole; such files are small
        deflated_pixels(path)?
    } else {
        let mut walk = LazyDataSetReader::new_with_ts(reader, ts).map_err(invalid)?;
        let pixels = walk_pixels(&mut walk, size)?;
        let end = walk.into_decoder().position();
        if end != size {
            return Err(invalid(format!(
                "data set ends at byte {end} of {size}: truncated or trailing garbage"
            )));
        }
        pixels
    };
    match pixels {
        Pixels::None => Ok(()),
        Pixels::Native(_) if ts.is_encapsulated_pixel_data() => {
            Err(ImagingError::Inconsistent(format!(
                "native Pixel Data under {}, an encapsulated transfer syntax",
                ts.uid()
            )))
        }
        Pixels::Native(len) => check_native_length(info, len),
        Pixels::Encapsulated { fragments: 0 } => {
            Err(invalid("encapsulated Pixel Data without any fragment"))
        }
        Pixels::Encapsulated { .. } => Ok(()),
    }
}

/// What the top-level Pixel Data of a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pixels {
    None,
    /// Native, this many bytes.
    Native(u64),
    /// Encapsulated, this many fragments after the offset table.
    Encapsulated {
        fragments: usize,
    },
}

/// Walk every token of the data set, skipping values after checking that
/// they lie within the file; depth must come back to zero.
fn walk_pixels<S: StatefulDecode>(walk: &mut LazyDataSetReader<S>, size: u64) -> Result<Pixels> {
    let mut depth = 0usize;
    let mut pixels = Pixels::None;
    // items seen in the open top-level pixel sequence (the first is the offset table)
    let mut pixel_items: Option<usize> = None;
    while let Some(token) = walk.advance() {
        match token.map_err(invalid)? {
            LazyDataToken::SequenceStart { .. } => depth += 1,
            LazyDataToken::PixelSequenceStart => {
                if depth == 0 {
                    pixel_items = Some(0);
                }
                depth += 1;
            }
            LazyDataToken::SequenceEnd => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| invalid("sequence delimiter outside a sequence"))?;
                if depth == 0
                    && let Some(items) = pixel_items.take()
                {
                    pixels = Pixels::Encapsulated {
                        fragments: items.saturating_sub(1),
                    };
                }
            }
            LazyDataToken::ItemStart { .. } => {
                if depth == 1
                    && let Some(items) = pixel_items.as_mut()
                {
                    *items += 1;
                }
            }
            LazyDataToken::LazyValue { header, decoder } => {
                let len = u64::from(header.len.0);
                within(decoder.position(), len, size)?;
                if depth == 0 && header.tag == tags::PIXEL_DATA {
                    pixels = Pixels::Native(len);
                }
                decoder.skip_bytes(header.len.0).map_err(invalid)?;
            }
            LazyDataToken::LazyItemValue { len, decoder } => {
                within(decoder.position(), u64::from(len), size)?;
                decoder.skip_bytes(len).map_err(invalid)?;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(invalid(
            "data set ends inside a sequence or inside encapsulated Pixel Data",
        ));
    }
    Ok(pixels)
}

fn within(position: u64, len: u64, size: u64) -> Result<()> {
    if position.saturating_add(len) > size {
        Err(invalid(format!(
            "a value of {len} bytes at byte {position} runs past the end of the file ({size} bytes): truncated"
        )))
    } else {
        Ok(())
    }
}

fn deflated_pixels(path: &Path) -> Result<Pixels> {
    let object = dicom_object::OpenFileOptions::new()
        .open_file(path)
        .map_err(invalid)?;
    Ok(match object.get(tags::PIXEL_DATA).map(|e| e.value()) {
        None => Pixels::None,
        Some(dicom_core::DicomValue::PixelSequence(seq)) => Pixels::Encapsulated {
            fragments: seq.fragments().len(),
        },
        Some(value) => Pixels::Native(value.to_bytes().map_or(0, |b| b.len() as u64)),
    })
}

/// Native Pixel Data must hold exactly rows × columns × samples × bits ×
/// frames (rounded up to whole bytes, then to an even length).
fn check_native_length(info: &InstanceInfo, len: u64) -> Result<()> {
    let need = |value: Option<u32>, name: &str| {
        value.filter(|v| *v > 0).map(u64::from).ok_or_else(|| {
            ImagingError::Inconsistent(format!("native Pixel Data without a valid {name}"))
        })
    };
    let bits = need(info.rows, "Rows")?
        * need(info.columns, "Columns")?
        * need(info.samples_per_pixel.or(Some(1)), "Samples per Pixel")?
        * need(info.bits_allocated, "Bits Allocated")?
        * u64::from(info.frames);
    let expected = bits.div_ceil(8);
    if len == expected || len == expected + (expected % 2) {
        Ok(())
    } else {
        Err(ImagingError::Inconsistent(format!(
            "Pixel Data holds {len} bytes where {} rows x {} columns x {} samples x {} bits x {} frames need {expected}",
            info.rows.unwrap_or(0),
            info.columns.unwrap_or(0),
            info.samples_per_pixel.unwrap_or(1),
            info.bits_allocated.unwrap_or(0),
            info.frames
        )))
    }
}
