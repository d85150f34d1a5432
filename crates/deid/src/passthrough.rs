//! Headers-only fast path: when pixels are not cleaned, the pixel data is
//! copied through byte for byte instead of being parsed and re-encoded.
//!
//! The top-level Pixel Data element is found by reading the data set's
//! tokens while counting bytes; the fast path is taken only when that
//! element is the last thing in the file (nothing unprocessed follows it).
//! Otherwise the caller takes the full path.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use dicom_core::header::Header;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_parser::dataset::DataToken;
use dicom_parser::dataset::read::DataSetReader;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// A reader over a byte slice that shares how far it has read.
struct Counting<'a> {
    bytes: &'a [u8],
    position: Rc<Cell<usize>>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let at = self.position.get();
        let rest = self.bytes.get(at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.position.set(at + n);
        Ok(n)
    }
}

/// Transfer syntaxes whose data set bytes can be spliced: not deflated,
/// not big endian (which is rewritten as little endian).
const SPLICEABLE_EXCLUDED: [&str; 2] = ["1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"];

/// The byte offset in `input` where the top-level Pixel Data element
/// starts, given `header`, the input parsed up to (not including) Pixel Data.
pub fn pixel_data_offset(input: &[u8], header: &DefaultDicomObject) -> Option<usize> {
    let ts_uid = header.meta().transfer_syntax();
    if SPLICEABLE_EXCLUDED.contains(&ts_uid) {
        return None;
    }
    let ts = TransferSyntaxRegistry.get(ts_uid)?;
    let meta_start = if input.get(128..132) == Some(b"DICM") {
        132
    } else if input.get(..4) == Some(b"DICM") {
        4
    } else {
        return None;
    };
    let dataset_start = meta_start + 12 + header.meta().information_group_length as usize;
    let explicit = ts_uid != "1.2.840.10008.1.2";
    let position = Rc::new(Cell::new(dataset_start));
    let source = Counting {
        bytes: input,
        position: Rc::clone(&position),
    };
    let reader = DataSetReader::new_with_ts(source, ts).ok()?;
    let mut depth = 0usize;
    for token in reader {
        match token.ok()? {
            DataToken::SequenceStart { .. } => depth += 1,
            DataToken::SequenceEnd => depth = depth.checked_sub(1)?,
            DataToken::PixelSequenceStart if depth > 0 => depth += 1,
            DataToken::PixelSequenceStart => return pixel_start(input, position.get(), explicit),
            DataToken::ElementHeader(h) if depth == 0 && h.tag() == tags::PIXEL_DATA => {
                return pixel_start(input, position.get(), explicit);
            }
            _ => {}
        }
    }
    None
}

/// Where the Pixel Data element whose header ends at `after_header` starts,
/// if it is the last element of the file.
fn pixel_start(input: &[u8], after_header: usize, explicit: bool) -> Option<usize> {
    let start = after_header.checked_sub(if explicit { 12 } else { 8 })?;
    is_last_pixel_element(input.get(start..)?, explicit).then_some(start)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Whether `tail` is exactly one Pixel Data element (little endian).
fn is_last_pixel_element(tail: &[u8], explicit: bool) -> bool {
    if tail.get(..4) != Some(&[0xE0, 0x7F, 0x10, 0x00]) {
        return false;
    }
    let (length_at, value_at) = if explicit {
        if !matches!(tail.get(4..8), Some(b"OB\0\0" | b"OW\0\0")) {
            return false;
        }
        (8, 12)
    } else {
        (4, 8)
    };
    match u32_at(tail, length_at) {
        Some(0xFFFF_FFFF) => encapsulated_ends_at_eof(tail, value_at),
        Some(length) => value_at + length as usize == tail.len(),
        None => false,
    }
}

/// Walk the items of encapsulated pixel data; true if the sequence
/// delimiter is the file's last 8 bytes.
fn encapsulated_ends_at_eof(tail: &[u8], mut at: usize) -> bool {
    loop {
        match (tail.get(at..at + 4), u32_at(tail, at + 4)) {
            (Some([0xFE, 0xFF, 0x00, 0xE0]), Some(length)) => at += 8 + length as usize,
            (Some([0xFE, 0xFF, 0xDD, 0xE0]), Some(0)) => return at + 8 == tail.len(),
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_native_pixel_element_must_end_the_file() {
        let mut tail = vec![
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4,
        ];
        assert!(is_last_pixel_element(&tail, true));
        tail.push(0);
        assert!(!is_last_pixel_element(&tail, true));
    }

    #[test]
    fn encapsulated_items_are_walked_to_the_delimiter() {
        let tail = [
            &[
                0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ][..],
            &[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0],
            &[0xFE, 0xFF, 0x00, 0xE0, 2, 0, 0, 0, 9, 9],
            &[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0],
        ]
        .concat();
        assert!(is_last_pixel_element(&tail, true));
        assert!(!is_last_pixel_element(&tail[..tail.len() - 1], true));
    }
}
