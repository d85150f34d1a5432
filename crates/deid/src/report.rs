//! What was done to one file, for the operator's per-file report.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::patient::IdentitySource;

/// Header changes, by action. Keywords name the attributes (any depth).
#[derive(Debug, Default, Clone, Serialize)]
pub struct HeaderReport {
    /// Attributes removed (`X`).
    pub removed: BTreeSet<String>,
    /// Attributes emptied (`Z`).
    pub emptied: BTreeSet<String>,
    /// Attributes given a dummy value (`D`).
    pub dummied: BTreeSet<String>,
    /// Attributes cleaned (`C`): text masked, AE titles pseudonymised.
    pub cleaned: BTreeSet<String>,
    /// Attributes kept because a claimed option retains them (`K`).
    pub retained: BTreeSet<String>,
    /// UID values replaced.
    pub uids_replaced: usize,
    /// Date and date-time values shifted.
    pub dates_shifted: usize,
    /// Date values that were not dates and so were removed.
    pub bad_dates_removed: usize,
    /// Private attributes removed.
    pub private_removed: usize,
    /// Private attributes kept as known safe.
    pub private_kept: usize,
    /// Overlay and curve attributes removed.
    pub graphics_removed: usize,
}

/// How the pixel data was cleaned.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PixelReport {
    /// Frames cleaned.
    pub frames: u32,
    /// Ultrasound data regions kept (from SequenceOfUltrasoundRegions).
    pub data_regions: usize,
    /// Boxes blanked, each `[x, y, width, height]` with the reason.
    pub boxes: Vec<BlankedBox>,
    /// Share of the frame blanked (0..1).
    pub blanked_fraction: f64,
    /// Share of the data regions blanked (0..1): what training loses.
    pub data_blanked_fraction: f64,
    /// Transfer syntax the pixel data was written in (JPEG-LS near-lossless
    /// input is written as JPEG-LS Lossless: nothing more is lost).
    pub encoded_as: String,
}

/// Why a box was blanked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlankReason {
    /// Outside every ultrasound data region.
    OutsideDataRegions,
    /// A known text area of this device model.
    DeviceRule,
    /// Found by the text detector.
    DetectedText,
}

/// One blanked rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlankedBox {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in columns.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
    /// Why.
    pub reason: BlankReason,
}

/// Everything done to one file, for a reviewer: which attributes were
/// removed or replaced and how, which pixel regions were blanked.
///
/// It is stored beside the outputs, so it holds nothing that undoes a keyed
/// transformation: no date offset, no original UID or value, no pseudonym
/// mapping. Only the key holder can re-derive those.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Transfer syntax read.
    pub transfer_syntax_in: String,
    /// Transfer syntax written.
    pub transfer_syntax_out: String,
    /// Which attributes keyed the patient's date offset and pseudonym.
    pub patient_identity: IdentitySource,
    /// Header changes.
    pub header: HeaderReport,
    /// Pixel cleaning, when Clean Pixel Data is claimed.
    pub pixels: Option<PixelReport>,
    /// Codes of the options claimed (CID 7050).
    pub method_codes: Vec<String>,
}
