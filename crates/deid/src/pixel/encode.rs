//! Writing cleaned pixels back. Native input stays native (big endian
//! becomes explicit little endian); JPEG Baseline/Extended input is
//! re-encoded as JPEG Baseline; every other compressed input (RLE, JPEG
//! Lossless, JPEG-LS, JPEG 2000) is written as RLE Lossless, which keeps
//! every decoded sample.

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::adapters::EncodeOptions;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{DeidError, Result};
use crate::pixel::image::Image;
use crate::pixel::rle;

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
    } else {
        put_rle(file, &image);
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

fn put_rle(file: &mut DefaultDicomObject, image: &Image) {
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
    let mut offsets = Vec::with_capacity(fragments.len());
    let mut at = 0u32;
    for fragment in &fragments {
        offsets.push(at);
        // each fragment is preceded by an 8-byte item header
        at += fragment.len() as u32 + 8;
    }
    file.put(DataElement::new_with_len(
        tags::PIXEL_DATA,
        VR::OB,
        Length::UNDEFINED,
        PixelFragmentSequence::new(offsets, fragments),
    ));
}
