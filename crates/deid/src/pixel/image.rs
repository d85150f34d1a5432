//! Decoded pixel data as samples in memory: per-frame luminance for the
//! text detector, and blanking in the image's own layout.

use std::borrow::Cow;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dicom_dictionary_std::{tags, uids};
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{PhotometricInterpretation, PixelDecoder, PlanarConfiguration};

use crate::error::{DeidError, Result};
use crate::pixel::geometry::Mask;
use crate::pixel::palette::Palette;
use crate::pixel::{jpegls, rle};

/// JPEG-LS Lossless.
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
/// JPEG-LS Lossy (Near-Lossless).
pub const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";

/// Whether a transfer syntax is JPEG-LS (decoded by [`jpegls`], not dicom-rs).
pub fn is_jpegls(transfer_syntax: &str) -> bool {
    transfer_syntax == JPEG_LS_LOSSLESS || transfer_syntax == JPEG_LS_NEAR_LOSSLESS
}

/// How samples make a colour.
#[derive(Debug, Clone)]
enum Layout {
    /// One sample; `inverted` for MONOCHROME1.
    Mono { inverted: bool },
    /// One sample indexing a palette.
    Palette(Palette),
    /// Red, green, blue.
    Rgb,
    /// Y, Cb, Cr at full resolution.
    Ybr,
    /// YBR_FULL_422 (native): per pair of pixels Y0 Y1 Cb Cr.
    Ybr422,
}

/// Frames of an image, decoded: all of them, or a run of them.
#[derive(Debug, Clone)]
pub struct Image {
    /// Samples of the frames, little endian when 16-bit.
    pub data: Vec<u8>,
    /// Rows per frame.
    pub rows: u32,
    /// Columns per frame.
    pub cols: u32,
    /// Number of frames held.
    pub frames: u32,
    /// Samples per pixel.
    pub samples: u16,
    /// Bits allocated per sample (8 or 16).
    pub bits_allocated: u16,
    /// Bits stored per sample.
    pub bits_stored: u16,
    /// Planes one after the other (Planar Configuration 1).
    pub planar: bool,
    /// Photometric interpretation of `data`.
    pub photometric: String,
    layout: Layout,
}

fn decode_error(file: &DefaultDicomObject, reason: impl ToString) -> DeidError {
    DeidError::PixelDecode {
        transfer_syntax: file.meta().transfer_syntax().to_string(),
        reason: reason.to_string(),
    }
}

/// Spread between the strongest and weakest channel above which a colour
/// counts as saturated.
const SATURATED: u8 = 100;

/// ITU-R BT.601 luma of an 8-bit RGB colour, divided by 3 when saturated.
fn luma(rgb: [u8; 3]) -> u8 {
    let [r, g, b] = rgb.map(u32::from);
    let y = ((299 * r + 587 * g + 114 * b) / 1000) as u8;
    let spread = rgb.iter().max().unwrap_or(&0) - rgb.iter().min().unwrap_or(&0);
    if spread > SATURATED { y / 3 } else { y }
}

/// What a panic carried, as text.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// The encapsulated stream of each frame: one fragment per frame, all
/// fragments of a single frame, or fragments grouped up to each EOI marker.
/// A frame stored in one fragment is borrowed, not copied (a file cleaned in
/// runs of frames asks for its streams once per run).
fn frame_streams(fragments: &[Vec<u8>], frames: usize) -> Option<Vec<Cow<'_, [u8]>>> {
    if fragments.len() == frames {
        return Some(fragments.iter().map(|f| Cow::Borrowed(&f[..])).collect());
    }
    if frames == 1 {
        return Some(vec![Cow::Owned(fragments.concat())]);
    }
    let mut streams = Vec::with_capacity(frames.min(fragments.len()));
    let mut current = Vec::new();
    for fragment in fragments {
        current.extend_from_slice(fragment);
        // the stream ends with EOI, perhaps followed by one padding byte
        let end = current.len().saturating_sub(3)..;
        if current[end].windows(2).any(|w| w == [0xFF, 0xD9]) {
            streams.push(Cow::Owned(std::mem::take(&mut current)));
        }
    }
    (streams.len() == frames && current.is_empty()).then_some(streams)
}

/// A header number, or `default` when absent.
fn header_number(
    file: &DefaultDicomObject,
    tag: dicom_core::Tag,
    default: Option<u32>,
) -> Result<u32> {
    file.get(tag)
        .and_then(|e| e.to_int::<u32>().ok())
        .or(default)
        .ok_or_else(|| decode_error(file, format!("{tag} missing")))
}

/// The number of frames the header declares (one when it says none).
pub fn frame_count(file: &DefaultDicomObject) -> u32 {
    header_number(file, tags::NUMBER_OF_FRAMES, Some(1)).map_or(1, |n| n.max(1))
}

/// The most bytes one decoded frame can take, from the header (rows × columns × samples ×
/// bytes per sample); `usize::MAX` when the header lacks them or they overflow.
pub fn decoded_frame_bytes(file: &DefaultDicomObject) -> usize {
    let number = |tag, default| header_number(file, tag, default).ok().map(|n| n as usize);
    let bytes = || {
        number(tags::ROWS, None)?
            .checked_mul(number(tags::COLUMNS, None)?)?
            .checked_mul(number(tags::SAMPLES_PER_PIXEL, Some(1))?)?
            .checked_mul(number(tags::BITS_ALLOCATED, None)?.div_ceil(8))
    };
    bytes().unwrap_or(usize::MAX)
}

impl Image {
    /// Decode every frame of a file's pixel data (see [`Image::decode_frames`]).
    pub fn decode(file: &DefaultDicomObject) -> Result<Self> {
        Self::decode_frames(file, 0..frame_count(file))
    }

    /// Decode the frames of `range` (0-based) of a file's pixel data, and no other. RLE and
    /// JPEG-LS are decoded here, the rest by dicom-rs (a panic there is this file's error);
    /// dimensions are checked against the data before use.
    pub fn decode_frames(file: &DefaultDicomObject, range: Range<u32>) -> Result<Self> {
        let total = frame_count(file);
        if range.is_empty() || range.end > total {
            return Err(decode_error(
                file,
                format!("frames {range:?} of an image of {total}"),
            ));
        }
        let ts = file.meta().transfer_syntax();
        if is_jpegls(ts) || ts == uids::RLE_LOSSLESS {
            return Self::decode_encapsulated(file, range);
        }
        let decode = |frame: Option<u32>| {
            catch_unwind(AssertUnwindSafe(|| match frame {
                None => file.decode_pixel_data(),
                Some(frame) => file.decode_pixel_data_frame(frame),
            }))
            .map_err(|panic| {
                decode_error(
                    file,
                    format!("the decoder failed: {}", panic_text(panic.as_ref())),
                )
            })?
            .map_err(|e| decode_error(file, crate::deidentifier::error_chain(&e)))
        };
        let count = range.len() as u32;
        let (decoded, data) = if count == total {
            (decode(None)?, None)
        } else {
            let mut data = Vec::new();
            let mut first = None;
            for frame in range {
                let decoded = decode(Some(frame))?;
                data.extend_from_slice(decoded.data());
                first.get_or_insert(decoded);
            }
            (first.expect("the range is not empty"), Some(data))
        };
        let bits_allocated = decoded.bits_allocated();
        if bits_allocated != 8 && bits_allocated != 16 {
            return Err(decode_error(
                file,
                format!("{bits_allocated} bits allocated"),
            ));
        }
        let photometric = decoded.photometric_interpretation().clone();
        let layout = match photometric {
            PhotometricInterpretation::Monochrome1 => Layout::Mono { inverted: true },
            PhotometricInterpretation::Monochrome2 => Layout::Mono { inverted: false },
            PhotometricInterpretation::PaletteColor => Layout::Palette(Palette::of(file)?),
            PhotometricInterpretation::Rgb => Layout::Rgb,
            PhotometricInterpretation::YbrFull => Layout::Ybr,
            PhotometricInterpretation::YbrFull422 => Layout::Ybr422,
            ref other => {
                return Err(decode_error(
                    file,
                    format!("photometric {other} not supported"),
                ));
            }
        };
        let image = Self {
            rows: decoded.rows(),
            cols: decoded.columns(),
            frames: count,
            samples: decoded.samples_per_pixel(),
            bits_allocated,
            bits_stored: decoded.bits_stored().clamp(1, bits_allocated),
            planar: decoded.planar_configuration() == PlanarConfiguration::PixelFirst,
            photometric: photometric.to_string(),
            layout,
            data: match data {
                Some(data) => data,
                None => decoded.into_data(),
            },
        };
        let expected = image.checked_len().map_err(|e| decode_error(file, e))?;
        if image.data.len() < expected {
            return Err(decode_error(
                file,
                format!(
                    "{} bytes of pixel data, {expected} needed",
                    image.data.len()
                ),
            ));
        }
        Ok(image)
    }

    /// The bytes all frames take, once the dimensions are checked: at
    /// least one row, column, sample and frame, as many samples as the
    /// photometric interpretation has, pairs of pixels for YBR_FULL_422.
    fn checked_len(&self) -> std::result::Result<usize, String> {
        let wanted = match self.layout {
            Layout::Mono { .. } | Layout::Palette(_) => 1,
            Layout::Rgb | Layout::Ybr | Layout::Ybr422 => 3,
        };
        if self.rows == 0 || self.cols == 0 || self.frames == 0 {
            return Err(format!(
                "{} x {} pixels, {} frames",
                self.cols, self.rows, self.frames
            ));
        }
        if self.samples != wanted {
            return Err(format!(
                "{} samples per pixel for {}",
                self.samples, self.photometric
            ));
        }
        if matches!(self.layout, Layout::Ybr422) && self.pixels() % 2 == 1 {
            return Err("YBR_FULL_422 with an odd number of pixels".into());
        }
        (self.rows as usize)
            .checked_mul(self.cols as usize)
            .and_then(|n| n.checked_mul(usize::from(self.samples) * self.bytes()))
            .and_then(|n| n.checked_mul(self.frames as usize))
            .ok_or_else(|| {
                format!(
                    "{} x {} pixels x {} frames overflows",
                    self.cols, self.rows, self.frames
                )
            })
    }

    /// Decode frames `range` of RLE or JPEG-LS pixel data here: each frame's fragments are
    /// one stream, decoded to interleaved samples.
    fn decode_encapsulated(file: &DefaultDicomObject, range: Range<u32>) -> Result<Self> {
        let number = |tag, default: Option<u32>| header_number(file, tag, default);
        let rows = number(tags::ROWS, None)?;
        let cols = number(tags::COLUMNS, None)?;
        let samples = number(tags::SAMPLES_PER_PIXEL, Some(1))?;
        let bits_allocated = number(tags::BITS_ALLOCATED, None)?;
        let bits_stored = number(tags::BITS_STORED, Some(bits_allocated))?;
        let frames = number(tags::NUMBER_OF_FRAMES, Some(1))?.max(1);
        let photometric =
            crate::patient::text(file, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
        let layout = match (photometric.as_str(), samples) {
            ("MONOCHROME1", 1) => Layout::Mono { inverted: true },
            ("MONOCHROME2", 1) => Layout::Mono { inverted: false },
            ("PALETTE COLOR", 1) => Layout::Palette(Palette::of(file)?),
            ("RGB", 3) => Layout::Rgb,
            ("YBR_FULL", 3) => Layout::Ybr,
            (other, n) => {
                return Err(decode_error(
                    file,
                    format!("photometric {other} with {n} samples per pixel not supported"),
                ));
            }
        };
        if bits_allocated != 8 && bits_allocated != 16 {
            return Err(decode_error(
                file,
                format!("{bits_allocated} bits allocated"),
            ));
        }
        let fragments = file
            .get(tags::PIXEL_DATA)
            .and_then(|e| e.value().fragments())
            .ok_or_else(|| decode_error(file, "pixel data is not encapsulated"))?;
        let rle = file.meta().transfer_syntax() == uids::RLE_LOSSLESS;
        let streams = if rle {
            // one fragment per frame (PS3.5 Annex G)
            (fragments.len() == frames as usize)
                .then(|| fragments.iter().map(|f| Cow::Borrowed(&f[..])).collect())
        } else {
            frame_streams(fragments, frames as usize)
        }
        .ok_or_else(|| {
            decode_error(
                file,
                format!("{} fragments for {frames} frames", fragments.len()),
            )
        })?;
        let mut image = Self {
            data: Vec::new(),
            rows,
            cols,
            frames: range.len() as u32,
            samples: u16::try_from(samples).unwrap_or(0),
            bits_allocated: bits_allocated as u16,
            bits_stored: u16::try_from(bits_stored)
                .unwrap_or(u16::MAX)
                .clamp(1, bits_allocated as u16),
            planar: false,
            photometric,
            layout,
        };
        image.checked_len().map_err(|e| decode_error(file, e))?;
        let (cols, rows, samples) = (cols as usize, rows as usize, samples as usize);
        let bytes = image.bytes();
        // each frame is checked against its stream before it is allocated
        let wanted = streams.iter().enumerate();
        for (frame, stream) in wanted.skip(range.start as usize).take(range.len()) {
            let failed = |e: String| decode_error(file, format!("frame {}: {e}", frame + 1));
            if rle {
                let decoded =
                    rle::decode_frame(stream, cols, rows, samples, bytes).map_err(failed)?;
                image.data.extend_from_slice(&decoded);
                continue;
            }
            let decoded = jpegls::decode(stream).map_err(failed)?;
            if (decoded.width, decoded.height, decoded.components) != (cols, rows, samples)
                || u32::from(decoded.precision) > bits_allocated
            {
                return Err(failed(format!(
                    "a {}x{}x{} stream of {} bits in a {cols}x{rows}x{samples} image of {bits_allocated} bits",
                    decoded.width, decoded.height, decoded.components, decoded.precision
                )));
            }
            for sample in decoded.samples {
                image.data.extend_from_slice(&sample.to_le_bytes()[..bytes]);
            }
        }
        Ok(image)
    }

    fn bytes(&self) -> usize {
        usize::from(self.bits_allocated / 8)
    }

    fn pixels(&self) -> usize {
        self.rows as usize * self.cols as usize
    }

    /// Bytes per frame.
    pub fn frame_len(&self) -> usize {
        match self.layout {
            Layout::Ybr422 => self.pixels() * 2 * self.bytes(),
            _ => self.pixels() * usize::from(self.samples) * self.bytes(),
        }
    }

    /// Byte offset of sample `s` of pixel `p` (row-major index) within a frame.
    fn offset(&self, p: usize, s: usize) -> usize {
        let index = match self.layout {
            Layout::Ybr422 => {
                let pair = p / 2;
                if s == 0 {
                    pair * 4 + p % 2
                } else {
                    pair * 4 + 1 + s
                }
            }
            _ if self.planar => s * self.pixels() + p,
            _ => p * usize::from(self.samples) + s,
        };
        index * self.bytes()
    }

    fn sample(&self, frame: &[u8], p: usize, s: usize) -> u16 {
        let at = self.offset(p, s);
        match self.bytes() {
            1 => u16::from(frame[at]),
            _ => u16::from_le_bytes([frame[at], frame[at + 1]]),
        }
    }

    fn to_8bit(&self, value: u16) -> u8 {
        let bits = self.bits_stored;
        if bits >= 8 {
            (value >> (bits - 8)).min(255) as u8
        } else {
            (u32::from(value) * 255 / ((1u32 << bits) - 1)).min(255) as u8
        }
    }

    /// The samples of `frame`, pixel by pixel (components of a pixel next
    /// to each other), whatever the planar configuration.
    pub fn frame_samples(&self, frame: u32) -> Vec<u16> {
        let start = frame as usize * self.frame_len();
        let data = &self.data[start..start + self.frame_len()];
        let samples = usize::from(self.samples);
        (0..self.pixels() * samples)
            .map(|i| self.sample(data, i / samples, i % samples))
            .collect()
    }

    /// 8-bit brightness (luma) of each pixel of `frame`, damped for strongly
    /// coloured pixels: burned-in identifiers are white or grey, while colour
    /// flow is saturated and must not look like text.
    pub fn luminance(&self, frame: u32) -> Vec<u8> {
        let start = frame as usize * self.frame_len();
        let data = &self.data[start..start + self.frame_len()];
        (0..self.pixels())
            .map(|p| match &self.layout {
                Layout::Mono { inverted } => {
                    let v = self.to_8bit(self.sample(data, p, 0));
                    if *inverted { 255 - v } else { v }
                }
                Layout::Palette(palette) => luma(palette.color(self.sample(data, p, 0))),
                Layout::Rgb => luma([0, 1, 2].map(|s| self.to_8bit(self.sample(data, p, s)))),
                Layout::Ybr | Layout::Ybr422 => self.to_8bit(self.sample(data, p, 0)),
            })
            .collect()
    }

    /// 8-bit RGB of each pixel of `frame`, as displayed (for rendering).
    pub fn rgb(&self, frame: u32) -> Vec<u8> {
        let start = frame as usize * self.frame_len();
        let data = &self.data[start..start + self.frame_len()];
        (0..self.pixels())
            .flat_map(|p| match &self.layout {
                Layout::Mono { inverted } => {
                    let v = self.to_8bit(self.sample(data, p, 0));
                    [if *inverted { 255 - v } else { v }; 3]
                }
                Layout::Palette(palette) => palette.color(self.sample(data, p, 0)),
                Layout::Rgb => [0, 1, 2].map(|s| self.to_8bit(self.sample(data, p, s))),
                Layout::Ybr | Layout::Ybr422 => {
                    let [y, cb, cr] =
                        [0, 1, 2].map(|s| f64::from(self.to_8bit(self.sample(data, p, s))));
                    let (cb, cr) = (cb - 128.0, cr - 128.0);
                    [
                        y + 1.402 * cr,
                        y - 0.344_136 * cb - 0.714_136 * cr,
                        y + 1.772 * cb,
                    ]
                    .map(|v| v.round().clamp(0.0, 255.0) as u8)
                }
            })
            .collect()
    }

    /// The sample values that display as black.
    fn black(&self) -> [u16; 3] {
        let max = ((1u32 << self.bits_stored) - 1) as u16;
        let mid = 1u16 << (self.bits_stored - 1);
        match &self.layout {
            Layout::Mono { inverted: true } => [max, 0, 0],
            Layout::Mono { inverted: false } | Layout::Rgb => [0, 0, 0],
            Layout::Palette(palette) => [palette.darkest(), 0, 0],
            Layout::Ybr | Layout::Ybr422 => [0, mid, mid],
        }
    }

    /// Blank the masked pixels of every frame.
    pub fn blank(&mut self, mask: &Mask) {
        let black = self.black();
        let frame_len = self.frame_len();
        let samples = usize::from(self.samples);
        let offsets: Vec<(usize, usize)> = mask
            .bits()
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .flat_map(|(p, _)| (0..samples).map(move |s| (p, s)))
            .map(|(p, s)| (self.offset(p, s), s))
            .collect();
        let bytes = self.bytes();
        for frame in self.data.chunks_exact_mut(frame_len) {
            for &(at, s) in &offsets {
                let value = black[s];
                if bytes == 1 {
                    frame[at] = value as u8;
                } else {
                    frame[at..at + 2].copy_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
}
