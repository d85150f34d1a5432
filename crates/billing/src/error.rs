//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `billing`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory that could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line of a data file that could not be parsed, with its 1-based number.
    #[error("{path} line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A model file, configuration or input that does not fit the model.
    #[error("model: {0}")]
    Model(String),
    /// Weights that could not be built or read.
    #[error(transparent)]
    Weights(#[from] learn::Error),
    /// A candle tensor operation failed.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The EHR store refused a read, search or write.
    #[error("EHR: {0}")]
    Ehr(#[from] ehr::Error),
    /// JSON that could not be read or written.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
