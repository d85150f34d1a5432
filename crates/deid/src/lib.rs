//! De-identification of DICOM files for training: the PS3.15 Annex E Basic
//! Application Level Confidentiality Profile driven by the whole of Table
//! E.1-1, its options, keyed UIDs, per-patient date shifts, and removal of
//! text burned into ultrasound pixels.
//!
//! Pure: bytes in, bytes out, keyed by a secret the caller gives; no file
//! system and no network.
//!
//! ```no_run
//! use deid::{DeidKey, Deidentifier, Options};
//!
//! let key = DeidKey::new(b"a hospital secret of 16+ bytes")?;
//! let deidentifier = Deidentifier::new(key, Options::training())?;
//! let input = std::fs::read("study.dcm")?;
//! let output = deidentifier.deidentify(&input)?;
//! std::fs::write("study-deid.dcm", &output.bytes)?;
//! println!("{}", serde_json::to_string(&output.report)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Same key, same outputs: a UID maps to the same `2.25.` UID in every file,
//! run and day, and a patient's dates move by the same number of days.
//!
//! Headers only, [`Deidentifier::deidentify_header`] needs just the start of
//! a file (and [`ReadAt`] for a few bytes past it): it returns the new header
//! and which bytes of the input follow it unchanged, so a caller can copy
//! the pixel data from file to file without reading it.

pub mod action;
pub mod dates;
pub mod deidentifier;
pub mod dummy;
pub mod error;
pub mod header;
pub mod keys;
pub mod lengths;
pub mod marking;
pub mod options;
pub mod passthrough;
pub mod patient;
pub mod pixel;
pub mod report;
pub mod scrub;
pub mod table;
pub mod text;

pub use deidentifier::{Deidentified, Deidentifier, HeaderOnly, parse};
pub use error::{DeidError, Result};
pub use keys::DeidKey;
pub use options::{Options, ProfileOption, SafePrivate};
pub use passthrough::ReadAt;
pub use report::{BlankReason, BlankedBox, FileReport, HeaderReport, PixelReport};
