//! Headers-only fast path: when pixels are not cleaned, the pixel data is
//! copied through byte for byte instead of being parsed and re-encoded.
//!
//! The top-level Pixel Data element is found by reading the data set's
//! tokens while counting bytes, and its end by its length or, encapsulated,
//! by walking its items. What follows it (e.g. Data Set Trailing Padding) is
//! the caller's to parse and clean.
//!
//! Only the header needs to be in memory: what follows it is read through
//! [`ReadAt`], a few bytes per encapsulated fragment, so a caller can copy
//! the pixel data from file to file without reading it.

use std::cell::Cell;
use std::io::Read;
use std::ops::Range;
use std::rc::Rc;

use dicom_core::header::{HasLength, Header};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_parser::dataset::DataToken;
use dicom_parser::dataset::read::DataSetReader;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// The bytes of one input file, read at offsets. A byte slice is one; a
/// caller holding an open file implements it with positional reads.
pub trait ReadAt {
    /// The length of the whole input in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` with the bytes starting at `offset`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|at| self.get(at..at.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

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

/// The bytes of the top-level Pixel Data element in `input`: from the start
/// of its header to the end of its value. `head` is the start of `input`
/// (at least up to the Pixel Data element's header) and `header` the data
/// set parsed from it, up to (not including) Pixel Data.
pub fn pixel_data_range(
    head: &[u8],
    input: &(impl ReadAt + ?Sized),
    header: &DefaultDicomObject,
) -> Option<Range<u64>> {
    let ts_uid = header.meta().transfer_syntax();
    if SPLICEABLE_EXCLUDED.contains(&ts_uid) {
        return None;
    }
    let after_header = pixel_header_end(head, header)?;
    pixel_element(head, input, after_header, ts_uid != "1.2.840.10008.1.2")
}

/// Explicit VR Big Endian (retired), rewritten as little endian.
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// The native Pixel Data element of an Explicit VR Big Endian input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BigEndianPixels {
    /// From the start of the element's header to the end of its value.
    pub range: Range<u64>,
    /// OW: the value is 16-bit words, byte-swapped when written as little
    /// endian; OB: bytes, written as they are.
    pub words: bool,
}

/// The top-level Pixel Data element of `input`, all of it in memory, when
/// its transfer syntax is Explicit VR Big Endian and the element is native
/// (OB or OW, defined length; an OW value of an even length).
pub(crate) fn big_endian_pixel_data(
    input: &[u8],
    header: &DefaultDicomObject,
) -> Option<BigEndianPixels> {
    if header.meta().transfer_syntax() != EXPLICIT_VR_BIG_ENDIAN {
        return None;
    }
    let after_header = pixel_header_end(input, header)?;
    let start = after_header.checked_sub(12)?;
    let element_header = input.get(start..after_header)?;
    if element_header.get(..4) != Some(&[0x7F, 0xE0, 0x00, 0x10]) {
        return None;
    }
    let words = match element_header.get(4..8)? {
        b"OW\0\0" => true,
        b"OB\0\0" => false,
        _ => return None,
    };
    let length = u32::from_be_bytes(element_header.get(8..12)?.try_into().ok()?);
    if length == 0xFFFF_FFFF || (words && length % 2 == 1) {
        return None;
    }
    let end = after_header.checked_add(length as usize)?;
    (end <= input.len()).then_some(BigEndianPixels {
        range: start as u64..end as u64,
        words,
    })
}

/// Where the header of the top-level Pixel Data element ends in `head`.
fn pixel_header_end(head: &[u8], header: &DefaultDicomObject) -> Option<usize> {
    let ts = TransferSyntaxRegistry.get(header.meta().transfer_syntax())?;
    let meta_start = if head.get(128..132) == Some(b"DICM") {
        132
    } else if head.get(..4) == Some(b"DICM") {
        4
    } else {
        return None;
    };
    let dataset_start = meta_start + 12 + header.meta().information_group_length as usize;
    let ts_uid = header.meta().transfer_syntax();
    let walk = Walk {
        bytes: head,
        big_endian: ts_uid == EXPLICIT_VR_BIG_ENDIAN,
    };
    if let Some(end) = walk.top_level(dataset_start, ts_uid != "1.2.840.10008.1.2", header) {
        return Some(end);
    }
    // the walk and the parsed header disagree: let the parser decide
    let position = Rc::new(Cell::new(dataset_start));
    let source = Counting {
        bytes: head,
        position: Rc::clone(&position),
    };
    let reader = DataSetReader::new_with_ts(source, ts).ok()?;
    let mut depth = 0usize;
    for token in reader {
        match token.ok()? {
            DataToken::SequenceStart { .. } => depth += 1,
            DataToken::SequenceEnd => depth = depth.checked_sub(1)?,
            DataToken::PixelSequenceStart if depth > 0 => depth += 1,
            DataToken::PixelSequenceStart => return Some(position.get()),
            DataToken::ElementHeader(h) if depth == 0 && h.tag() == tags::PIXEL_DATA => {
                return Some(position.get());
            }
            // the parser reserves a value's declared length before reading it: a value
            // longer than what `head` holds after its header is not read at all
            DataToken::ElementHeader(h)
                if h.length().get().is_some_and(|len| {
                    position.get().saturating_add(len as usize) > head.len()
                }) =>
            {
                return None;
            }
            _ => {}
        }
    }
    None
}

/// The Pixel Data element whose header ends at `after_header`.
fn pixel_element(
    head: &[u8],
    input: &(impl ReadAt + ?Sized),
    after_header: usize,
    explicit: bool,
) -> Option<Range<u64>> {
    let start = after_header.checked_sub(if explicit { 12 } else { 8 })?;
    let element_header = head.get(start..after_header)?;
    let tail = Tail {
        head,
        input,
        start: start as u64,
    };
    let len = pixel_element_len(element_header, &tail, explicit)?;
    Some(start as u64..start as u64 + len)
}

/// Element headers read from raw bytes, values skipped by their lengths:
/// what finds Pixel Data without decoding any value.
struct Walk<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

/// Item, Item Delimitation and Sequence Delimitation tags.
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// An element header: tag (group, element), VR (explicit only), value
/// length and where the value starts.
type ElementHeader = ((u16, u16), [u8; 2], u32, usize);

impl Walk<'_> {
    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The element header at `at`: tag, VR (explicit only), value length
    /// and where the value starts.
    fn header(&self, at: usize, explicit: bool) -> Option<ElementHeader> {
        let tag = (self.u16_at(at)?, self.u16_at(at + 2)?);
        if !explicit || tag.0 == 0xFFFE {
            return Some((tag, [0, 0], self.u32_at(at + 4)?, at + 8));
        }
        let vr: [u8; 2] = self.bytes.get(at + 4..at + 6)?.try_into().ok()?;
        match &vr {
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN"
            | b"UR" | b"UT" | b"UV" => Some((tag, vr, self.u32_at(at + 8)?, at + 12)),
            _ => Some((tag, vr, u32::from(self.u16_at(at + 6)?), at + 8)),
        }
    }

    /// Where the header of the top-level Pixel Data element ends, when
    /// every top-level element before it is one of `header`'s, in order.
    fn top_level(
        &self,
        mut at: usize,
        explicit: bool,
        header: &DefaultDicomObject,
    ) -> Option<usize> {
        let mut expected = header.iter().map(|e| e.tag());
        loop {
            let (tag, vr, length, value) = self.header(at, explicit)?;
            if tag == (0x7FE0, 0x0010) {
                return expected.next().is_none().then_some(value);
            }
            if expected.next() != Some(dicom_core::Tag(tag.0, tag.1)) {
                return None;
            }
            at = self.value_end(value, length, explicit && &vr != b"UN")?;
        }
    }

    /// The end of a value starting at `at`; an undefined length is a
    /// sequence, walked to its delimiter (`explicit`: how its items are encoded).
    fn value_end(&self, at: usize, length: u32, explicit: bool) -> Option<usize> {
        if length != UNDEFINED {
            let end = at.checked_add(length as usize)?;
            return (end <= self.bytes.len()).then_some(end);
        }
        let mut at = at;
        loop {
            let (tag, _, length, value) = self.header(at, explicit)?;
            match tag {
                SEQUENCE_END => return Some(value),
                ITEM if length != UNDEFINED => at = self.value_end(value, length, explicit)?,
                ITEM => at = self.item_end(value, explicit)?,
                _ => return None,
            }
        }
    }

    /// The end of an item of undefined length whose elements start at `at`.
    fn item_end(&self, mut at: usize, explicit: bool) -> Option<usize> {
        loop {
            let (tag, vr, length, value) = self.header(at, explicit)?;
            if tag == ITEM_END {
                return Some(value);
            }
            at = self.value_end(value, length, explicit && &vr != b"UN")?;
        }
    }
}

/// The input from the start of the Pixel Data element on, read from `head`
/// while it lasts, then from `input`.
struct Tail<'a, R: ReadAt + ?Sized> {
    head: &'a [u8],
    input: &'a R,
    start: u64,
}

impl<R: ReadAt + ?Sized> Tail<'_, R> {
    fn len(&self) -> u64 {
        self.input.size().saturating_sub(self.start)
    }

    /// The 8 bytes at `at` (from the element's start), if there are 8.
    fn eight(&self, at: u64) -> Option<[u8; 8]> {
        let offset = self.start.checked_add(at)?;
        let end = offset.checked_add(8)?;
        let mut bytes = [0u8; 8];
        if let Some(slice) = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(from, to)| self.head.get(from..to))
        {
            bytes.copy_from_slice(slice);
        } else if end <= self.input.size() {
            self.input.read_exact_at(offset, &mut bytes).ok()?;
        } else {
            return None;
        }
        Some(bytes)
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The length in bytes of the Pixel Data element with `element_header`
/// (explicit: 12 bytes, implicit: 8, little endian) at the start of `tail`,
/// if it is one and `tail` holds all of it.
fn pixel_element_len(
    element_header: &[u8],
    tail: &Tail<'_, impl ReadAt + ?Sized>,
    explicit: bool,
) -> Option<u64> {
    if element_header.get(..4) != Some(&[0xE0, 0x7F, 0x10, 0x00]) {
        return None;
    }
    let (length_at, value_at) = if explicit {
        if !matches!(element_header.get(4..8), Some(b"OB\0\0" | b"OW\0\0")) {
            return None;
        }
        (8, 12)
    } else {
        (4, 8)
    };
    let len = match u32_at(element_header, length_at)? {
        0xFFFF_FFFF => encapsulated_len(tail, value_at)?,
        length => value_at + u64::from(length),
    };
    (len <= tail.len()).then_some(len)
}

/// Walk the items of encapsulated pixel data from `at` to the sequence
/// delimiter; the element's length up to the end of the delimiter.
fn encapsulated_len(tail: &Tail<'_, impl ReadAt + ?Sized>, mut at: u64) -> Option<u64> {
    loop {
        let item = tail.eight(at)?;
        let length = u64::from(u32::from_le_bytes([item[4], item[5], item[6], item[7]]));
        match item[..4] {
            [0xFE, 0xFF, 0x00, 0xE0] => at += 8 + length,
            [0xFE, 0xFF, 0xDD, 0xE0] if length == 0 => return Some(at + 8),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element_len(element: &[u8], head_len: usize) -> Option<u64> {
        let tail = Tail {
            head: &element[..head_len],
            input: element,
            start: 0,
        };
        pixel_element_len(&element[..12], &tail, true)
    }

    #[test]
    fn a_native_pixel_element_ends_with_its_value() {
        let mut element = vec![
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4,
        ];
        assert_eq!(element_len(&element, 12), Some(16));
        element.push(0);
        assert_eq!(element_len(&element, 12), Some(16));
        assert_eq!(element_len(&element[..15], 12), None, "truncated");
    }

    #[test]
    fn encapsulated_items_are_walked_to_the_delimiter() {
        let element = [
            &[
                0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ][..],
            &[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0],
            &[0xFE, 0xFF, 0x00, 0xE0, 2, 0, 0, 0, 9, 9],
            &[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0],
        ]
        .concat();
        // the items are read from the head or from the input alike
        for head_len in [12, 20, 25, element.len()] {
            assert_eq!(
                element_len(&element, head_len),
                Some(element.len() as u64),
                "head of {head_len}"
            );
            let short = &element[..element.len() - 1];
            assert_eq!(element_len(short, head_len.min(short.len())), None);
        }
    }
}
