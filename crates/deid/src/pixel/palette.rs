//! PALETTE COLOR lookup tables (PS3.3 C.7.6.3.1.5–6), plain and segmented,
//! reduced to 8-bit RGB: enough to see text and to find the darkest entry.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::error::{DeidError, Result};

/// An RGB palette indexed by stored pixel value.
#[derive(Debug, Clone)]
pub struct Palette {
    first: i64,
    colors: Vec<[u8; 3]>,
}

impl Palette {
    /// Read the palette of a PALETTE COLOR image.
    pub fn of(obj: &InMemDicomObject) -> Result<Self> {
        let channels = [
            (
                tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            ),
            (
                tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            ),
            (
                tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            ),
        ];
        let mut first = 0;
        let mut tables = Vec::with_capacity(3);
        for (descriptor, data, segmented) in channels {
            let (entries, first_mapped, bits) = descriptor_of(obj, descriptor)?;
            first = first_mapped;
            let values = match words(obj, data) {
                Some(words) => plain(&words, entries, bits),
                None => {
                    let words = words(obj, segmented)
                        .ok_or_else(|| invalid("lookup table data missing"))?;
                    expand_segments(&words, entries)?
                }
            };
            let shift = bits.saturating_sub(8);
            tables.push(
                values
                    .iter()
                    .map(|v| (v >> shift).min(255) as u8)
                    .collect::<Vec<u8>>(),
            );
        }
        let len = tables.iter().map(Vec::len).min().unwrap_or(0);
        let colors = (0..len)
            .map(|i| [tables[0][i], tables[1][i], tables[2][i]])
            .collect();
        Ok(Self { first, colors })
    }

    /// Colour of a stored value (values below or above the table clamp to its ends).
    pub fn color(&self, value: u16) -> [u8; 3] {
        let last = self.colors.len().saturating_sub(1) as i64;
        let index = (i64::from(value) - self.first).clamp(0, last) as usize;
        self.colors.get(index).copied().unwrap_or([0, 0, 0])
    }

    /// The stored value whose colour is darkest.
    pub fn darkest(&self) -> u16 {
        let index = self
            .colors
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| u32::from(c[0]) + u32::from(c[1]) + u32::from(c[2]))
            .map_or(0, |(i, _)| i as i64);
        (index + self.first).clamp(0, i64::from(u16::MAX)) as u16
    }
}

fn invalid(reason: &str) -> DeidError {
    DeidError::Invalid {
        attribute: "PaletteColorLookupTable",
        reason: reason.to_string(),
    }
}

/// (number of entries, first stored value mapped, bits per entry).
fn descriptor_of(obj: &InMemDicomObject, tag: Tag) -> Result<(usize, i64, u32)> {
    let values: Vec<i64> = obj
        .get(tag)
        .and_then(|e| e.to_multi_int::<i64>().ok())
        .ok_or_else(|| invalid("descriptor missing"))?;
    let [entries, first, bits] = values[..] else {
        return Err(invalid("descriptor needs three values"));
    };
    let entries = match entries {
        0 => 65536,
        1..=65535 => entries as usize,
        _ => return Err(invalid("descriptor gives more than 65536 entries")),
    };
    Ok((entries, first, bits.clamp(8, 16) as u32))
}

fn words(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<u16>> {
    let bytes = obj.get(tag)?.to_bytes().ok()?;
    Some(
        bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}

fn plain(words: &[u16], entries: usize, bits: u32) -> Vec<u16> {
    if bits == 8 && words.len() * 2 >= entries && words.len() < entries {
        // 8-bit entries packed two per word
        words
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(entries)
            .map(u16::from)
            .collect()
    } else {
        words.iter().take(entries).copied().collect()
    }
}

/// Expand segmented LUT data: discrete (0), linear (1) and indirect (2) segments.
fn expand_segments(words: &[u16], entries: usize) -> Result<Vec<u16>> {
    let mut out: Vec<u16> = Vec::with_capacity(entries);
    expand_into(words, &mut out, usize::MAX, entries, true)?;
    out.truncate(entries);
    out.resize(entries, out.last().copied().unwrap_or(0));
    Ok(out)
}

/// Expand at most `segments` segments of `words` onto `out`, stopping once
/// `out` holds `entries` values; indirect segments (which copy earlier
/// segments, found by word offset) may not nest.
fn expand_into(
    words: &[u16],
    out: &mut Vec<u16>,
    segments: usize,
    entries: usize,
    indirect: bool,
) -> Result<()> {
    let mut i = 0;
    let mut done = 0;
    while i + 1 < words.len() && done < segments && out.len() < entries {
        let (opcode, length) = (words[i], words[i + 1] as usize);
        let arg = |n: usize| {
            words
                .get(i + n)
                .copied()
                .ok_or_else(|| invalid("segment truncated"))
        };
        match opcode {
            0 => {
                let values = words
                    .get(i + 2..i + 2 + length)
                    .ok_or_else(|| invalid("discrete segment overruns the data"))?;
                out.extend_from_slice(values);
                i += 2 + length;
            }
            1 => {
                let end = f64::from(arg(2)?);
                let start = f64::from(*out.last().ok_or_else(|| invalid("linear segment first"))?);
                out.extend((1..=length).map(|step| {
                    (start + (end - start) * step as f64 / length as f64).round() as u16
                }));
                i += 3;
            }
            2 if indirect => {
                let offset = ((u32::from(arg(3)?) << 16) | u32::from(arg(2)?)) as usize;
                let source = words
                    .get(offset..)
                    .ok_or_else(|| invalid("indirect offset out of range"))?;
                expand_into(source, out, length, entries, false)?;
                i += 4;
            }
            _ => return Err(invalid("unknown or nested segment type")),
        }
        done += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrete_and_linear_segments_expand() {
        let words = [0, 2, 10, 20, 1, 2, 40];
        assert_eq!(expand_segments(&words, 4).expect("valid"), [10, 20, 30, 40]);
    }

    #[test]
    fn linear_segments_stop_at_the_table_size() {
        // each linear segment adds 65535 values: 6.5 M for the 100 of them
        let words: Vec<u16> = [0, 1, 0]
            .into_iter()
            .chain([1, 0xFFFF, 9].repeat(100))
            .collect();
        let table = expand_segments(&words, 256).expect("valid");
        assert_eq!(table.len(), 256);
        assert!(table.capacity() <= 2 * 65536, "{}", table.capacity());
    }

    #[test]
    fn segments_that_overrun_are_refused() {
        assert!(expand_segments(&[0, 5, 1], 5).is_err());
    }
}
