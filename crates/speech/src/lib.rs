//! Clinical speech-to-text on the node: Whisper inference on candle (no candle-transformers),
//! audio decoding and resampling, voice-activity detection, hallucination guards, vocabulary
//! biasing from the patient's record, the CTranslate2 -> safetensors converter and WER scoring.
//!
//! Audio and text never leave this crate's caller: there is no network code here.

pub mod align;
pub mod audio;
pub mod ct2;
pub mod decode;
pub mod eval;
pub mod kernels;
pub mod mel;
pub mod model;
pub mod models;
pub mod record;
pub mod term_check;
pub mod tokenizer;
pub mod transcribe;
pub mod vad;
pub mod vocab;
pub mod wer;

pub use transcribe::{Segment, TranscribeOptions, Transcriber, Transcript, VocabUse};

/// Everything that can go wrong in speech-to-text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not audio in a supported container/codec, or are corrupt.
    #[error("unsupported or corrupt audio: {0}")]
    Audio(String),
    /// A model file (weights, tokenizer, CTranslate2 binary) is malformed.
    #[error("invalid model file: {0}")]
    Model(String),
    /// Installing a model package failed (download, hash mismatch, layout).
    #[error("model install: {0}")]
    Install(String),
    /// Invalid input to the API (language, option, manifest).
    #[error("{0}")]
    Invalid(String),
    /// Tensor computation failed.
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    /// File system error, with the path concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Whisper's sampling rate.
pub const SAMPLE_RATE: u32 = 16_000;
