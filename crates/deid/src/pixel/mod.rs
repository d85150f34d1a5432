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

/// Decoded pixels held at once by default while cleaning: a 120-frame 640 × 480 colour cine
/// loop (106 MiB decoded) is cleaned in one run; larger images in runs of frames.
pub const DEFAULT_PIXEL_MEMORY: usize = 256 << 20;

/// Clean the pixel data of `file` in place (pixel data, photometric
/// attributes and transfer syntax may change), holding at most about
/// `memory` bytes of decoded pixels at once: an image that takes more is
/// decoded in runs of frames, twice (once to find text on every frame, once
/// to blank and encode), so its cost is time, not memory. One frame is the
/// least held, whatever `memory` says.
pub fn clean(file: &mut DefaultDicomObject, memory: usize) -> Result<PixelReport> {
    let frames = image::frame_count(file);
    let per_run = (memory / image::decoded_frame_bytes(file).max(1)).clamp(1, frames as usize);
    let runs: Vec<std::ops::Range<u32>> = (0..frames)
        .step_by(per_run)
        .map(|first| first..(first + per_run as u32).min(frames))
        .collect();

    // Pass 1: text on every frame. A single run stays decoded for pass 2.
    let mut kept = None;
    let mut detected: Vec<Rect> = Vec::new();
    let mut size = None;
    for run in &runs {
        let image = Image::decode_frames(file, run.clone())?;
        size.get_or_insert((image.cols, image.rows));
        for frame in 0..image.frames {
            let lum = image.luminance(frame);
            for rect in detect::detect_text(&lum, image.cols, image.rows) {
                if !detected.contains(&rect) {
                    detected.push(rect);
                }
            }
        }
        if runs.len() == 1 {
            kept = Some(image);
        }
    }
    let (cols, rows) = size.expect("an image has a frame");

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
    // the detector saw whole frames, so text cut by a region border is still whole
    let outside = mask.clone();
    for rect in detected {
        if !outside.covers(rect) {
            mask.set_rect(rect, true);
            boxes.push(blanked(rect, BlankReason::DetectedText));
        }
    }

    // Pass 2: blank and encode, run by run.
    let mut writer = encode::FrameWriter::new(file);
    for run in &runs {
        let mut image = match kept.take() {
            Some(image) => image,
            None => Image::decode_frames(file, run.clone())?,
        };
        image.blank(&mask);
        writer.push(image)?;
    }
    let encoded_as = writer.finish(file)?;
    Ok(PixelReport {
        frames,
        data_regions: regions.len(),
        boxes,
        blanked_fraction: mask.fraction(None),
        data_blanked_fraction: mask.fraction(Some(&data)),
        encoded_as,
    })
}
