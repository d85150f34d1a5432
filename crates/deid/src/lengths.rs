//! Declared lengths checked against the bytes really there, before the
//! DICOM parser allocates for them.
//!
//! The parser reserves (and zeroes) a value's declared length before it
//! reads the value, so a 480 KB file that declares a 4 GB element costs
//! 4 GB of memory before it fails. This walk reads only element and item
//! headers, with the parser's own header decoders and its rules for
//! sequences, items and encapsulated pixel data, and refuses a value that
//! is longer than what follows it in the input.

use dicom_core::header::{HasLength, Header, SequenceItemHeader};
use dicom_core::{Tag, VR};
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::transfer_syntax::Codec;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{DeidError, Result};

/// What the walk of a prefix of the input found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Every value read fits in the prefix.
    Fits,
    /// A value runs past the prefix (but not past the input): read more.
    Incomplete,
}

/// Check every declared length of the DICOM Part 10 file `input` (file
/// meta group, then the data set at any depth, encapsulated pixel data
/// fragments included) against the bytes that follow it.
///
/// An error names the element, where it is and both lengths. Bytes that
/// are not DICOM, or that the parser refuses for another reason, pass: the
/// parser reports them without allocating.
pub fn check_declared_lengths(input: &[u8]) -> Result<()> {
    check_prefix(input, input.len() as u64, false).map(drop)
}

/// Check the first bytes of a file of `total` bytes; `until_pixel_data`:
/// the parser stops at the top-level Pixel Data (or any later tag). Read more
/// of the file and check again while it says [`Prefix::Incomplete`].
pub fn check_prefix(head: &[u8], total: u64, until_pixel_data: bool) -> Result<Prefix> {
    let (dataset_start, ts_uid) = match check_meta(head, total)? {
        Meta::Ends(start, ts_uid) => (start, ts_uid),
        Meta::Incomplete => return Ok(Prefix::Incomplete),
        Meta::NotRead => return Ok(Prefix::Fits),
    };
    let Some(ts) = TransferSyntaxRegistry.get(&ts_uid) else {
        // the parser refuses an unknown transfer syntax before the data set
        return Ok(Prefix::Fits);
    };
    let rest = head.get(dataset_start..).unwrap_or_default();
    match ts.codec() {
        Codec::Dataset(Some(adapter)) => {
            if (head.len() as u64) < total {
                // the data set is compressed: only all of it can be checked
                return Ok(Prefix::Incomplete);
            }
            let mut inflated = Vec::new();
            // a stream that ends early is the parser's to report
            let _ = std::io::Read::read_to_end(
                &mut adapter.adapt_reader(Box::new(rest)),
                &mut inflated,
            );
            let len = inflated.len() as u64;
            DataSet::walk(ts, &inflated, len, 0, until_pixel_data)
        }
        Codec::Dataset(None) => Ok(Prefix::Fits),
        _ => DataSet::walk(ts, rest, total, dataset_start as u64, until_pixel_data),
    }
}

/// Check a data set of `bytes` (no file meta) encoded with the transfer
/// syntax `ts_uid`, as the parser reads it.
pub fn check_dataset(bytes: &[u8], ts_uid: &str) -> Result<()> {
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return Ok(());
    };
    if !matches!(ts.codec(), Codec::None | Codec::EncapsulatedPixelData(..)) {
        return Ok(());
    }
    DataSet::walk(ts, bytes, bytes.len() as u64, 0, false).map(drop)
}

fn too_long(what: String, offset: u64, declared: u64, available: u64) -> DeidError {
    DeidError::DeclaredLength {
        what,
        offset,
        declared,
        available,
    }
}

/// Where the file meta group leads.
enum Meta {
    /// The data set starts at this byte, in this transfer syntax.
    Ends(usize, String),
    /// The meta group runs past the prefix.
    Incomplete,
    /// The parser stops in the preamble or the meta group without
    /// allocating more than the meta group's bytes.
    NotRead,
}

/// Walk the file meta group as the parser reads it: its group length,
/// then elements until that many bytes are read.
fn check_meta(head: &[u8], total: u64) -> Result<Meta> {
    let mut at = if head.get(128..132) == Some(b"DICM") {
        132
    } else if head.get(..4) == Some(b"DICM") {
        4
    } else if (head.len() as u64) < total.min(132) {
        return Ok(Meta::Incomplete);
    } else {
        return Ok(Meta::NotRead);
    };
    let u16_at = |at: usize| {
        head.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        head.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // (0002,0000) UL, 4 bytes
    let Some(group_length) = u32_at(at + 8) else {
        return Ok(if (head.len() as u64) < total {
            Meta::Incomplete
        } else {
            Meta::NotRead
        });
    };
    if (u16_at(at), u16_at(at + 2), u16_at(at + 6)) != (Some(2), Some(0), Some(4)) {
        return Ok(Meta::NotRead);
    }
    at += 12;
    let mut read = 0u64;
    let mut ts_uid = String::new();
    while read < u64::from(group_length) {
        let (Some(group), Some(element), Some(vr)) =
            (u16_at(at), u16_at(at + 2), head.get(at + 4..at + 6))
        else {
            return Ok(short(head, total));
        };
        let vr = VR::from_binary([vr[0], vr[1]]).unwrap_or(VR::UN);
        let (length, header) = if two_byte_length(vr) {
            (u16_at(at + 6).map(u32::from), 8)
        } else {
            (u32_at(at + 8), 12)
        };
        let Some(length) = length else {
            return Ok(short(head, total));
        };
        if length == u32::MAX {
            // the parser refuses an undefined length here
            return Ok(Meta::NotRead);
        }
        let value = at + header;
        let available = total.saturating_sub(value as u64);
        if u64::from(length) > available {
            return Err(too_long(
                format!("file meta element ({group:04X},{element:04X})"),
                at as u64,
                length.into(),
                available,
            ));
        }
        let end = value + length as usize;
        let Some(bytes) = head.get(value..end) else {
            return Ok(Meta::Incomplete);
        };
        if (group, element) == (0x0002, 0x0010) {
            ts_uid = String::from_utf8_lossy(bytes)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        read += (header as u64) + u64::from(length);
        at = end;
    }
    Ok(Meta::Ends(at, ts_uid))
}

fn short(head: &[u8], total: u64) -> Meta {
    if (head.len() as u64) < total {
        Meta::Incomplete
    } else {
        Meta::NotRead
    }
}

/// VRs whose explicit length is 16 bits (PS3.5 Table 7.1-2), as the
/// parser's explicit VR decoders list them.
fn two_byte_length(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS
            | AT
            | CS
            | DA
            | DS
            | DT
            | FL
            | FD
            | IS
            | LO
            | LT
            | PN
            | SH
            | SL
            | SS
            | ST
            | TM
            | UI
            | UL
            | US
    )
}

/// How many bytes of a value of `declared` bytes the parser reads: binary
/// numbers are read whole, so the bytes past the last whole number (an odd
/// length) stay in the stream and are read as the next element's header.
fn bytes_read(vr: VR, declared: u64) -> u64 {
    use VR::*;
    let unit = match vr {
        US | OW | SS => 2,
        AT | FL | OF | SL | UL | OL => 4,
        FD | OD | SV | UV | OV => 8,
        _ => 1,
    };
    declared - declared % unit
}

const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);

/// An open sequence or item, as the parser keeps them.
struct Open {
    item: bool,
    pixel_data: bool,
    /// Where it ends, when its length is defined.
    end: Option<u64>,
}

/// A data set's bytes and how the parser reads them.
struct DataSet<'a> {
    decoder: dicom_encoding::transfer_syntax::DynDecoder<dyn std::io::Read + 'a>,
    bytes: &'a [u8],
    /// Bytes of the whole input from `bytes[0]` on (more than `bytes`
    /// when only a prefix is in memory).
    total: u64,
    /// Offset of `bytes[0]` in the input, for messages.
    base: u64,
    until_pixel_data: bool,
}

impl<'a> DataSet<'a> {
    /// Walk `bytes`, the start of a data set at byte `base` of an input of
    /// `total` bytes, encoded as `ts` says.
    fn walk(
        ts: &dicom_encoding::TransferSyntax,
        bytes: &'a [u8],
        total: u64,
        base: u64,
        until_pixel_data: bool,
    ) -> Result<Prefix> {
        let Some(decoder) = ts.decoder_for() else {
            // the parser has no decoder for this encoding either
            return Ok(Prefix::Fits);
        };
        Self {
            decoder,
            bytes,
            total: total.saturating_sub(base),
            base,
            until_pixel_data,
        }
        .tokens()
    }

    /// Follow the parser's tokens: sequences and items (defined length or
    /// delimited), encapsulated pixel data, primitive values.
    fn tokens(&self) -> Result<Prefix> {
        let mut open: Vec<Open> = Vec::new();
        let mut in_sequence = false;
        let mut at = 0u64;
        loop {
            // containers of a defined length end where their bytes do
            while let Some(end) = open.last().and_then(|o| o.end) {
                if end > at {
                    break;
                }
                if end < at {
                    // the parser stops here: inconsistent sequence end
                    return Ok(Prefix::Fits);
                }
                in_sequence = open.pop().is_some_and(|o| o.item);
            }
            let Some(mut source) = usize::try_from(at).ok().and_then(|i| self.bytes.get(i..))
            else {
                return Ok(self.end_of_prefix());
            };
            let before = source.len();
            if in_sequence {
                let Ok(header) = self.decoder.decode_item_header(&mut source) else {
                    // the end of the bytes, or not an item: the parser stops
                    return Ok(self.end_of_prefix_if(before < 8));
                };
                at += 8;
                match header {
                    SequenceItemHeader::Item { len } => {
                        let pixel_data = open.last().is_some_and(|o| o.pixel_data);
                        let end = match len.get() {
                            Some(len) if pixel_data => {
                                // a fragment: read whole into memory
                                self.fits(at, u64::from(len), || "a pixel data fragment".into())?;
                                Some(at + u64::from(len))
                            }
                            Some(len) => Some(at + u64::from(len)),
                            // the parser refuses a fragment of undefined length
                            None if pixel_data => return Ok(Prefix::Fits),
                            None => None,
                        };
                        open.push(Open {
                            item: true,
                            pixel_data,
                            end,
                        });
                        in_sequence = false;
                        if pixel_data && let Some(end) = end {
                            at = end;
                        }
                    }
                    SequenceItemHeader::ItemDelimiter => {
                        open.pop();
                        in_sequence = true;
                    }
                    SequenceItemHeader::SequenceDelimiter => {
                        open.pop();
                        in_sequence = false;
                    }
                }
                continue;
            }
            let Ok((header, read)) = self.decoder.decode_header(&mut source) else {
                // the end of the data set, or a header the parser refuses
                return Ok(self.end_of_prefix_if(before < 12));
            };
            let tag = header.tag();
            at += read as u64;
            let len = header.length();
            if tag == ITEM_END {
                // outside a sequence the parser skips it
                if open.pop().is_some() {
                    in_sequence = true;
                }
                continue;
            }
            if self.until_pixel_data && open.is_empty() && tag >= PIXEL_DATA {
                return Ok(Prefix::Fits);
            }
            if header.vr() == VR::SQ {
                open.push(Open {
                    item: false,
                    pixel_data: false,
                    end: len.get().map(|l| at + u64::from(l)),
                });
                in_sequence = true;
            } else if tag == PIXEL_DATA && len.is_undefined() {
                open.push(Open {
                    item: false,
                    pixel_data: true,
                    end: None,
                });
                in_sequence = true;
            } else if len.is_undefined() {
                // read as a sequence, whatever its VR
                open.push(Open {
                    item: false,
                    pixel_data: false,
                    end: None,
                });
                in_sequence = true;
            } else {
                let read = bytes_read(header.vr(), u64::from(len.0));
                self.fits(at, read, || {
                    format!("element ({:04X},{:04X})", tag.group(), tag.element())
                })?;
                if at + read > self.bytes.len() as u64 {
                    return Ok(Prefix::Incomplete);
                }
                at += read;
            }
        }
    }

    /// Refuse a value of `declared` bytes starting at `at` when fewer follow.
    fn fits(&self, at: u64, declared: u64, what: impl FnOnce() -> String) -> Result<()> {
        let available = self.total.saturating_sub(at);
        if declared > available {
            return Err(too_long(what(), self.base + at, declared, available));
        }
        Ok(())
    }

    /// The walk reached the end of the bytes in memory.
    fn end_of_prefix(&self) -> Prefix {
        if (self.bytes.len() as u64) < self.total {
            Prefix::Incomplete
        } else {
            Prefix::Fits
        }
    }

    /// A header could not be read: for want of bytes (`short`), perhaps
    /// only because the prefix ends.
    fn end_of_prefix_if(&self, short: bool) -> Prefix {
        if short {
            self.end_of_prefix()
        } else {
            Prefix::Fits
        }
    }
}
