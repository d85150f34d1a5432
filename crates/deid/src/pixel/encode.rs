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
use dicom_encoding::adapters::EncodeOptions;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::Transcode;
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

/// Put `image` back into `file` and return the transfer syntax written.
pub fn store(file: &mut DefaultDicomObject, image: Image) -> Result<String> {
    let ts_in = file.meta().transfer_syntax().to_string();
    if NATIVE.contains(&ts_in.as_str()) {
        put_native(file, image);
        if ts_in == NATIVE[3] {
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
    if ts_in == uids::JPEG_BASELINE8_BIT || ts_in == uids::JPEG_EXTENDED12_BIT {
        put_native(file, image);
        set_transfer_syntax(file, uids::EXPLICIT_VR_LITTLE_ENDIAN)?;
        let target = TransferSyntaxRegistry
            .get(uids::JPEG_BASELINE8_BIT)
            .ok_or_else(|| encode_error(uids::JPEG_BASELINE8_BIT, "no JPEG encoder registered"))?;
        let mut options = EncodeOptions::new();
        options.quality = Some(JPEG_QUALITY);
        file.transcode_with_options(target, options).map_err(|e| {
            encode_error(
                uids::JPEG_BASELINE8_BIT,
                crate::deidentifier::error_chain(&e),
            )
        })?;
    } else if image::is_jpegls(&ts_in) {
        // a near-lossless input is written lossless: nothing more is lost
        put_jpegls(file, &image)?;
        set_transfer_syntax(file, image::JPEG_LS_LOSSLESS)?;
    } else {
        put_rle(file, &image)?;
        set_transfer_syntax(file, uids::RLE_LOSSLESS)?;
    }
    Ok(file.meta().transfer_syntax().to_string())
}

fn set_transfer_syntax(file: &mut DefaultDicomObject, uid: &str) -> Result<()> {
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| encode_error(uid, "transfer syntax not registered"))?;
    file.update_meta(|meta| meta.set_transfer_syntax(ts));
    Ok(())
}

fn put_native(file: &mut DefaultDicomObject, image: Image) {
    let element = if image.bits_allocated == 16 {
        let words: Vec<u16> = image
            .data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()))
    } else {
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(image.data))
    };
    file.put(element);
}

fn put_jpegls(file: &mut DefaultDicomObject, image: &Image) -> Result<()> {
    let fragments = (0..image.frames)
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
        .collect::<Result<Vec<Vec<u8>>>>()?;
    put_fragments(file, fragments, image::JPEG_LS_LOSSLESS)
}

fn put_rle(file: &mut DefaultDicomObject, image: &Image) -> Result<()> {
    let frame_len = image.frame_len();
    let fragments: Vec<Vec<u8>> = image
        .data
        .chunks_exact(frame_len)
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
        .collect();
    put_fragments(file, fragments, uids::RLE_LOSSLESS)
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
