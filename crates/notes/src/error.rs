//! The notes crate's error type.

/// What went wrong drafting, checking, training or exporting a note.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transcript could not be read as a dialogue.
    #[error("transcript: {0}")]
    Dialogue(String),
    /// A corpus file could not be read.
    #[error("corpus: {0}")]
    Corpus(String),
    /// The classifier's weights or training data do not fit.
    #[error("section classifier: {0}")]
    Model(String),
    /// Differential privacy could not be applied (sampling or noise parameters).
    #[error("differential privacy: {0}")]
    Privacy(#[from] privacy::dp::DpError),
    /// Weights could not be built or read.
    #[error("weights: {0}")]
    Weights(#[from] learn::Error),
    /// A FHIR resource could not be built or signed.
    #[error("FHIR: {0}")]
    Fhir(String),
}
