//! The training-ready frame: the first frame of a (de-identified) image as
//! 8-bit grayscale, cropped to its ultrasound data regions, as PNG.

use deid::pixel::image::Image;
use deid::pixel::regions::data_regions;
use dicom_object::DefaultDicomObject;
use serde::{Deserialize, Serialize};

use crate::error::{ImagingError, Result};

/// What part of the frame becomes the training image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameCrop {
    /// The smallest rectangle holding every ultrasound data region
    /// (SequenceOfUltrasoundRegions); the whole frame when there is none.
    #[default]
    DataRegions,
    /// The whole frame.
    WholeFrame,
}

/// A rectangle of the frame, `[x, x+width) × [y, y+height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crop {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in columns.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
}

/// One frame ready for training.
#[derive(Debug, Clone)]
pub struct TrainingFrame {
    /// 8-bit grayscale PNG of the cropped frame.
    pub png: Vec<u8>,
    /// Where the crop lies in the frame.
    pub crop: Crop,
    /// Frames in the image.
    pub frames: u32,
}

/// ITU-R BT.601 luma of an 8-bit RGB pixel, rounded (grey stays as it is).
pub fn luma([r, g, b]: [u8; 3]) -> u8 {
    let sum = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    ((sum + 500) / 1000).min(255) as u8
}

fn render_error(e: impl ToString) -> ImagingError {
    ImagingError::Render(e.to_string())
}

/// The crop of a `cols × rows` frame for `crop`.
pub fn crop_of(file: &DefaultDicomObject, cols: u32, rows: u32, crop: FrameCrop) -> Crop {
    let whole = Crop {
        x: 0,
        y: 0,
        width: cols,
        height: rows,
    };
    if crop == FrameCrop::WholeFrame {
        return whole;
    }
    let regions = data_regions(file, cols, rows);
    let Some(x) = regions.iter().map(|r| r.x).min() else {
        return whole;
    };
    let y = regions.iter().map(|r| r.y).min().unwrap_or(0);
    let right = regions.iter().map(|r| r.x + r.width).max().unwrap_or(cols);
    let bottom = regions.iter().map(|r| r.y + r.height).max().unwrap_or(rows);
    Crop {
        x,
        y,
        width: right - x,
        height: bottom - y,
    }
}

/// The first frame of `file`, cropped and as grayscale PNG.
pub fn training_frame(file: &DefaultDicomObject, crop: FrameCrop) -> Result<TrainingFrame> {
    let image = Image::decode_frames(file, 0..1).map_err(render_error)?;
    if image.frames == 0 || image.cols == 0 || image.rows == 0 {
        return Err(ImagingError::Render("no frame".into()));
    }
    let crop = crop_of(file, image.cols, image.rows, crop);
    let rgb = image.rgb(0);
    let cols = image.cols as usize;
    let mut gray = Vec::with_capacity(crop.width as usize * crop.height as usize);
    for row in crop.y..crop.y + crop.height {
        let start = row as usize * cols + crop.x as usize;
        let line = rgb
            .get(start * 3..(start + crop.width as usize) * 3)
            .ok_or_else(|| ImagingError::Render("frame shorter than its size".into()))?;
        gray.extend(line.chunks_exact(3).map(|p| luma([p[0], p[1], p[2]])));
    }
    Ok(TrainingFrame {
        png: gray_png(&gray, crop.width, crop.height)?,
        crop,
        frames: image.frames,
    })
}

/// Encode 8-bit grayscale samples (row-major) as PNG.
pub fn gray_png(gray: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(render_error)?;
    writer.write_image_data(gray).map_err(render_error)?;
    writer.finish().map_err(render_error)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_pixels_keep_their_value_and_colours_weigh_like_bt601() {
        for v in [0, 1, 127, 254, 255] {
            assert_eq!(luma([v, v, v]), v);
        }
        assert_eq!(luma([255, 0, 0]), 76);
        assert_eq!(luma([0, 255, 0]), 150);
        assert_eq!(luma([0, 0, 255]), 29);
    }

    #[test]
    fn a_gray_png_decodes_to_its_samples() {
        let samples: Vec<u8> = (0..12).map(|v| v * 20).collect();
        let png_bytes = gray_png(&samples, 4, 3).expect("encodes");
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .expect("decodes");
        let mut back = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut back).expect("frame");
        assert_eq!((info.width, info.height), (4, 3));
        assert_eq!(&back[..info.buffer_size()], &samples[..]);
    }
}
