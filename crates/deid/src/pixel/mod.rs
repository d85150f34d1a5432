//! Clean Pixel Data: blank burned-in text while keeping the image useful
//! for training.
//!
//! Three sources of boxes, applied to every frame: the image's own
//! geometry (outside the ultrasound data regions everything is blanked),
//! per-device rules, and a text detector run on every frame over what is
//! left. Then the pixels are encoded again (see [`encode`]).

pub mod detect;
pub mod encode;
pub mod geometry;
pub mod image;
pub mod jpegls;
pub mod palette;
pub mod regions;
pub mod rle;
pub mod rules;

use dicom_object::DefaultDicomObject;

use crate::error::Result;
use crate::report::{BlankReason, BlankedBox, PixelReport};
use geometry::{Mask, Rect};
use image::Image;

fn blanked(rect: Rect, reason: BlankReason) -> BlankedBox {
    BlankedBox {
        x: rect.x,
        y: rect.y,
        width: rect.width,
        height: rect.height,
        reason,
    }
}

/// Clean the pixel data of `file` in place (pixel data, photometric
/// attributes and transfer syntax may change).
pub fn clean(file: &mut DefaultDicomObject) -> Result<PixelReport> {
    let mut image = Image::decode(file)?;
    let (cols, rows) = (image.cols, image.rows);
    let mut mask = Mask::new(cols, rows);
    let mut boxes = Vec::new();

    let regions = regions::data_regions(file, cols, rows);
    let mut data = Mask::new(cols, rows);
    if regions.is_empty() {
        data.fill();
    } else {
        mask.fill();
        for region in &regions {
            mask.set_rect(*region, false);
            data.set_rect(*region, true);
        }
    }
    for area in rules::device_areas(file, cols, rows) {
        mask.set_rect(area, true);
        boxes.push(blanked(area, BlankReason::DeviceRule));
    }
    let mut detected: Vec<Rect> = Vec::new();
    // the detector sees whole frames, so text cut by a region border is still whole
    let outside = mask.clone();
    for frame in 0..image.frames {
        let lum = image.luminance(frame);
        for rect in detect::detect_text(&lum, cols, rows) {
            if !detected.contains(&rect) && !outside.covers(rect) {
                detected.push(rect);
            }
        }
    }
    for rect in detected {
        mask.set_rect(rect, true);
        boxes.push(blanked(rect, BlankReason::DetectedText));
    }

    image.blank(&mask);
    let frames = image.frames;
    let encoded_as = encode::store(file, image)?;
    Ok(PixelReport {
        frames,
        data_regions: regions.len(),
        boxes,
        blanked_fraction: mask.fraction(None),
        data_blanked_fraction: mask.fraction(Some(&data)),
        encoded_as,
    })
}
