//! Writing cleaned pixels back. Native input stays native (big endian
//! becomes explicit little endian); JPEG Baseline/Extended input is
//! re-encoded as JPEG Baseline; JPEG-LS input (lossless or near-lossless)
//! is re-encoded as JPEG-LS Lossless, one fragment per frame; every other
//! compressed input (RLE, JPEG Lossless, JPEG 2000) is written as RLE
//! Lossless. All but JPEG Baseline keep every decoded sample.

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{DeidError, Result};
use crate::pixel::image::{self, Image};
use crate::pixel::{jpegls, rle};

/// JPEG quality used when re-encoding a lossy JPEG input.
pub const JPEG_QUALITY: u8 = 95;

const NATIVE: [&str; 4] = [
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.2", // explicit VR big endian (retired)
];

fn encode_error(ts: &str, reason: impl ToString) -> DeidError {
    DeidError::PixelEncode {
        transfer_syntax: ts.to_string(),
        reason: reason.to_string(),
    }
}

/// How cleaned frames are written, chosen by the input's transfer syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Native,
    Jpeg,
    JpegLs,
    Rle,
}

/// Cleaned frames on their way back into the file: pushed run by run (each run encoded as it
/// comes, so only one run is held decoded), then written into the file by [`FrameWriter::finish`].
#[derive(Debug)]
pub struct FrameWriter {
    target: Target,
    /// Native samples of the frames pushed so far.
    native: Vec<u8>,
    /// One encoded stream per frame pushed so far.
    fragments: Vec<Vec<u8>>,
    /// Bytes the pushed frames took decoded (for the JPEG compression ratio).
    decoded_bytes: usize,
    /// The last run pushed, its samples taken: the attributes all runs share.
    attributes: Option<Image>,
}

impl FrameWriter {
    /// A writer for the pixels of `file`.
    pub fn new(file: &DefaultDicomObject) -> Self {
        let ts = file.meta().transfer_syntax();
        let target = if NATIVE.contains(&ts) {
            Target::Native
        } else if ts == uids::JPEG_BASELINE8_BIT || ts == uids::JPEG_EXTENDED12_BIT {
            Target::Jpeg
        } else if image::is_jpegls(ts) {
            // a near-lossless input is written lossless: nothing more is lost
            Target::JpegLs
        } else {
            Target::Rle
        };
        Self {
            target,
            native: Vec::new(),
            fragments: Vec::new(),
            decoded_bytes: 0,
            attributes: None,
        }
    }

    /// Add the next run of frames.
    pub fn push(&mut self, mut image: Image) -> Result<()> {
        self.decoded_bytes += image.data.len();
        match self.target {
            Target::Native if self.native.is_empty() => {
                self.native = std::mem::take(&mut image.data)
            }
            Target::Native => self.native.extend_from_slice(&image.data),
            Target::Jpeg => self.fragments.extend(jpeg_frames(&image)?),
            Target::JpegLs => self.fragments.extend(jpegls_frames(&image)?),
            Target::Rle => self.fragments.extend(rle_frames(&image)),
        }
        image.data = Vec::new();
        self.attributes = Some(image);
        Ok(())
    }

    /// Write the frames pushed into `file`, with the attributes their encoding changes, and
    /// return the transfer syntax written.
    pub fn finish(self, file: &mut DefaultDicomObject) -> Result<String> {
        let image = self
            .attributes
            .ok_or_else(|| encode_error(file.meta().transfer_syntax(), "no frames"))?;
        if self.target == Target::Native {
            put_native(file, self.native, image.bits_allocated);
            if file.meta().transfer_syntax() == NATIVE[3] {
                set_transfer_syntax(file, uids::EXPLICIT_VR_LITTLE_ENDIAN)?;
            }
            return Ok(file.meta().transfer_syntax().to_string());
        }
        // decoded colour is interleaved RGB from here on
        file.put(DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from(image.photometric.as_str()),
        ));
        if image.samples > 1 {
            file.put(DataElement::new(
                tags::PLANAR_CONFIGURATION,
                VR::US,
                PrimitiveValue::from(0_u16),
            ));
        }
        file.remove_element(tags::ENCAPSULATED_PIXEL_DATA_VALUE_TOTAL_LENGTH);
        let ts = match self.target {
            Target::Jpeg => {
                let encoded: usize = self.fragments.iter().map(Vec::len).sum();
                let ratio = self.decoded_bytes as f64 / encoded.max(1) as f64;
                put_jpeg_attributes(file, &image, ratio);
                uids::JPEG_BASELINE8_BIT
            }
            Target::JpegLs => image::JPEG_LS_LOSSLESS,
            _ => uids::RLE_LOSSLESS,
        };
        put_fragments(file, self.fragments, ts)?;
        set_transfer_syntax(file, ts)?;
        Ok(file.meta().transfer_syntax().to_string())
    }
}

fn set_transfer_syntax(file: &mut DefaultDicomObject, uid: &str) -> Result<()> {
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| encode_error(uid, "transfer syntax not registered"))?;
    file.update_meta(|meta| meta.set_transfer_syntax(ts));
    Ok(())
}

fn put_native(file: &mut DefaultDicomObject, data: Vec<u8>, bits_allocated: u16) {
    let element = if bits_allocated == 16 {
        let words: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()))
    } else {
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(data))
    };
    file.put(element);
}

/// JPEG Baseline streams of the frames of `image`, each encoded from its own slice (dicom-rs's
/// transcoder copied the whole pixel data once per frame: a 120-frame cine loop spent half its
/// cleaning time in those copies). Samples of more than 8 bits keep their top 8.
fn jpeg_frames(image: &Image) -> Result<Vec<Vec<u8>>> {
    let ts = uids::JPEG_BASELINE8_BIT;
    let (cols, rows) = (
        u16::try_from(image.cols).map_err(|_| encode_error(ts, "over 65,535 columns"))?,
        u16::try_from(image.rows).map_err(|_| encode_error(ts, "over 65,535 rows"))?,
    );
    let color = match image.samples {
        1 => jpeg_encoder::ColorType::Luma,
        3 => jpeg_encoder::ColorType::Rgb,
        n => return Err(encode_error(ts, format!("{n} samples per pixel"))),
    };
    let bytes = usize::from(image.bits_allocated / 8);
    let frame_len = image.cols as usize * image.rows as usize * usize::from(image.samples) * bytes;
    if image.data.len() < frame_len * image.frames as usize {
        return Err(encode_error(ts, "fewer decoded samples than frames"));
    }
    let shift = image.bits_stored.saturating_sub(8);
    let mut narrowed = Vec::new();
    let mut streams = Vec::with_capacity(image.frames as usize);
    for frame in image
        .data
        .chunks_exact(frame_len)
        .take(image.frames as usize)
    {
        let samples = if bytes == 1 {
            frame
        } else {
            narrowed.clear();
            narrowed.extend(
                frame
                    .chunks_exact(2)
                    .map(|c| (u16::from_le_bytes([c[0], c[1]]) >> shift) as u8),
            );
            &narrowed[..]
        };
        let mut stream = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut stream, JPEG_QUALITY);
        encoder.set_progressive(false);
        encoder
            .encode(samples, cols, rows, color)
            .map_err(|e| encode_error(ts, e))?;
        if stream.len() % 2 == 1 {
            // even length: a padding byte after EOI
            stream.push(0);
        }
        streams.push(stream);
    }
    Ok(streams)
}

/// What a JPEG Baseline encoding says about the pixels: 8 bits, colour as YBR_FULL_422 (as the
/// encoder writes it), and one more lossy step whose ratio follows the earlier ones.
fn put_jpeg_attributes(file: &mut DefaultDicomObject, image: &Image, ratio: f64) {
    for (tag, value) in [
        (tags::BITS_ALLOCATED, 8_u16),
        (tags::BITS_STORED, 8),
        (tags::HIGH_BIT, 7),
    ] {
        file.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    let photometric = match (image.samples, image.photometric.as_str()) {
        (3, _) => "YBR_FULL_422",
        (_, kept @ ("MONOCHROME1" | "MONOCHROME2" | "PALETTE COLOR")) => kept,
        _ => "MONOCHROME2",
    };
    file.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        PrimitiveValue::from(photometric),
    ));
    file.put(DataElement::new(
        tags::LOSSY_IMAGE_COMPRESSION,
        VR::CS,
        PrimitiveValue::from("01"),
    ));
    // The methods name the ratios' steps one to one: a method is added only where the earlier
    // steps all have theirs.
    let ratios = values(file, tags::LOSSY_IMAGE_COMPRESSION_RATIO);
    let methods = values(file, tags::LOSSY_IMAGE_COMPRESSION_METHOD);
    if methods.len() == ratios.len() {
        put_values(
            file,
            tags::LOSSY_IMAGE_COMPRESSION_METHOD,
            VR::CS,
            methods,
            "ISO_10918_1",
        );
    }
    put_values(
        file,
        tags::LOSSY_IMAGE_COMPRESSION_RATIO,
        VR::DS,
        ratios,
        &format!("{ratio:.6}"),
    );
}

/// The values of a multi-valued text attribute (none when absent).
fn values(file: &DefaultDicomObject, tag: dicom_core::Tag) -> Vec<String> {
    file.get(tag)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// Put `values` and then `last` in a multi-valued text attribute.
fn put_values(
    file: &mut DefaultDicomObject,
    tag: dicom_core::Tag,
    vr: VR,
    mut values: Vec<String>,
    last: &str,
) {
    values.push(last.to_string());
    file.put(DataElement::new(
        tag,
        vr,
        PrimitiveValue::Strs(values.into()),
    ));
}

/// JPEG-LS Lossless streams of the frames of `image`.
fn jpegls_frames(image: &Image) -> Result<Vec<Vec<u8>>> {
    (0..image.frames)
        .map(|frame| {
            let samples = image.frame_samples(frame);
            // the stored bits, or more where a sample uses more
            let used = samples.iter().max().map_or(0, |&m| 16 - m.leading_zeros());
            let precision = used.max(u32::from(image.bits_stored)).clamp(2, 16) as u8;
            let mut stream = jpegls::encode(
                &samples,
                (
                    image.cols as usize,
                    image.rows as usize,
                    usize::from(image.samples),
                ),
                precision,
                jpegls::Interleave::Line,
            )
            .map_err(|e| encode_error(image::JPEG_LS_LOSSLESS, e))?;
            if stream.len() % 2 == 1 {
                // even length: a fill byte before EOI
                stream.insert(stream.len() - 2, 0xFF);
            }
            Ok(stream)
        })
        .collect()
}

/// RLE Lossless streams of the frames of `image`.
fn rle_frames(image: &Image) -> Vec<Vec<u8>> {
    image
        .data
        .chunks_exact(image.frame_len())
        .take(image.frames as usize)
        .map(|frame| {
            rle::encode_frame(
                frame,
                image.cols as usize,
                image.rows as usize,
                usize::from(image.samples),
                usize::from(image.bits_allocated / 8),
            )
        })
        .collect()
}

/// Encapsulated Pixel Data, one fragment per frame, with its offset table
/// (whose 32-bit offsets limit the frames to 4 GiB in all).
fn put_fragments(file: &mut DefaultDicomObject, fragments: Vec<Vec<u8>>, ts: &str) -> Result<()> {
    let mut offsets = Vec::with_capacity(fragments.len());
    let mut at = 0u32;
    for fragment in &fragments {
        offsets.push(at);
        // each fragment is preceded by an 8-byte item header
        at = u32::try_from(fragment.len())
            .ok()
            .and_then(|len| at.checked_add(len)?.checked_add(8))
            .ok_or_else(|| encode_error(ts, "the encoded frames exceed 4 GiB"))?;
    }
    file.put(DataElement::new_with_len(
        tags::PIXEL_DATA,
        VR::OB,
        Length::UNDEFINED,
        PixelFragmentSequence::new(offsets, fragments),
    ));
    Ok(())
}
