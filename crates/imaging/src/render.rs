//! A frame rendered as PNG (WADO-RS `rendered`), with the same decoders as
//! de-identification.

use deid::pixel::image::Image;

use crate::error::{ImagingError, Result};

/// Render frame `frame` (1-based) of a DICOM file as an 8-bit RGB PNG.
pub fn frame_png(bytes: &[u8], frame: u32) -> Result<Vec<u8>> {
    let file = deid::parse(bytes).map_err(|e| ImagingError::Render(e.to_string()))?;
    let frames = deid::pixel::image::frame_count(&file);
    if frame == 0 || frame > frames {
        return Err(ImagingError::FrameOutOfRange { frame, frames });
    }
    // only the frame asked for is decoded, not the whole cine loop
    let image = Image::decode_frames(&file, frame - 1..frame)
        .map_err(|e| ImagingError::Render(e.to_string()))?;
    let rgb = image.rgb(0);
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, image.cols, image.rows);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| ImagingError::Render(e.to_string()))?;
    writer
        .write_image_data(&rgb)
        .map_err(|e| ImagingError::Render(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| ImagingError::Render(e.to_string()))?;
    Ok(png_bytes)
}
