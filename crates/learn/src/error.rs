//! The crate's error type.

/// Everything that can go wrong in `learn`: bad input, mismatched shapes, or a failed tensor op.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Weights whose layout and values disagree (sizes, duplicate or empty names).
    #[error("invalid weights: {0}")]
    Weights(String),
    /// Bytes that are not an acceptable safetensors file.
    #[error("invalid safetensors: {0}")]
    Safetensors(String),
    /// Weights whose layout does not match the model they are used with.
    #[error("weights do not fit the model: {0}")]
    LayoutMismatch(String),
    /// A model specification that cannot be built (zero inputs or zero-width layers).
    #[error("invalid model spec: {0}")]
    Model(String),
    /// A dataset with inconsistent sizes, non-finite features or non-0/1 labels.
    #[error("invalid dataset: {0}")]
    Dataset(String),
    /// A training configuration that cannot be run.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// Feature statistics or a standardiser that do not fit together or with the data.
    #[error("invalid feature statistics: {0}")]
    Stats(String),
    /// A text input (data file or split CSV) that could not be parsed, with its 1-based line.
    #[error("{what} line {line}: {message}")]
    Parse {
        /// Which input the line belongs to.
        what: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A differential-privacy step refused its input (in DP-SGD, a gradient that is no longer
    /// finite).
    #[error("differential privacy: {0}")]
    Privacy(#[from] privacy::dp::DpError),
    /// A candle tensor operation failed.
    #[cfg(feature = "candle")]
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<super::Error>();
    }
}
