//! The errors of ingest, storage and retrieval.

/// What went wrong while receiving, storing or serving an image.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The bytes are not a usable DICOM instance.
    #[error("invalid DICOM instance: {0}")]
    InvalidInstance(String),
    /// The instance parses but contradicts itself (e.g. its Pixel Data is
    /// shorter or longer than its rows, columns, frames and bits say).
    #[error("inconsistent DICOM instance: {0}")]
    Inconsistent(String),
    /// A different object is already stored under this SOP Instance UID
    /// (stored instances are never replaced; a byte-identical resend is fine).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The upload is larger than this server accepts.
    #[error("upload larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The client stopped sending a request body.
    #[error("request timeout: {0}")]
    Stalled(String),
    /// No credentials, or credentials this server does not accept.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The SOP class is not one this receiver stores.
    #[error("SOP class {0} is not accepted here")]
    UnsupportedSopClass(String),
    /// A UID is not a valid UID (and so cannot name a stored object).
    #[error("invalid UID {0:?}")]
    InvalidUid(String),
    /// Nothing is stored under that study, series or instance.
    #[error("not found: {0}")]
    NotFound(String),
    /// The frame asked for does not exist.
    #[error("frame {frame} out of range (1..={frames})")]
    FrameOutOfRange {
        /// Frame asked for (1-based).
        frame: u32,
        /// Frames in the instance.
        frames: u32,
    },
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// An index or queue record could not be (de)serialised.
    #[error("index record: {0}")]
    Record(#[from] serde_json::Error),
    /// The pixel data could not be rendered.
    #[error("cannot render: {0}")]
    Render(String),
    /// The EHR side (patient directory or ImagingStudy sink) failed.
    #[error("EHR: {0}")]
    Ehr(String),
    /// A network or DICOM upper-layer failure.
    #[error("DICOM network: {0}")]
    Network(String),
    /// A malformed DICOMweb request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The de-identifier refused its key or options.
    #[error("de-identification: {0}")]
    Deid(#[from] deid::DeidError),
    /// The training export could not be prepared or written.
    #[error("training export: {0}")]
    Export(String),
}

/// Result alias of this crate.
pub type Result<T, E = ImagingError> = std::result::Result<T, E>;
