//! The errors of de-identification.

/// Why a DICOM file could not be de-identified. Each variant says what is
/// wrong with the input (or the key), so a batch can report it per file.
#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    /// The secret is too short to key the pseudonyms.
    #[error("the de-identification key must be at least {min} bytes, got {got}")]
    KeyTooShort {
        /// Minimum length in bytes.
        min: usize,
        /// Length given.
        got: usize,
    },
    /// Two options that exclude each other were both claimed.
    #[error("options {0} and {1} cannot be claimed together")]
    ConflictingOptions(&'static str, &'static str),
    /// The bytes are not a DICOM Part 10 file (truncated, wrong preamble,
    /// garbage in a sequence, unknown transfer syntax...).
    #[error("not a readable DICOM file: {0}")]
    Parse(String),
    /// A length declared in the file is longer than what follows it
    /// (truncated or corrupt): refused before anything is allocated for it.
    #[error(
        "{what} at byte {offset} declares {declared} bytes, but only {available} follow \
         (truncated or corrupt file)"
    )]
    DeclaredLength {
        /// The element or item.
        what: String,
        /// Where its header starts in the input.
        offset: u64,
        /// The length it declares.
        declared: u64,
        /// The bytes left after its header.
        available: u64,
    },
    /// The file parses but a required attribute is missing or malformed.
    #[error("invalid {attribute}: {reason}")]
    Invalid {
        /// Keyword of the attribute.
        attribute: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The pixel data could not be decoded (or this transfer syntax has no decoder here).
    #[error("cannot decode pixel data ({transfer_syntax}): {reason}")]
    PixelDecode {
        /// Transfer syntax UID of the input.
        transfer_syntax: String,
        /// Decoder message.
        reason: String,
    },
    /// The cleaned pixel data could not be encoded again.
    #[error("cannot encode pixel data as {transfer_syntax}: {reason}")]
    PixelEncode {
        /// Target transfer syntax UID.
        transfer_syntax: String,
        /// Encoder message.
        reason: String,
    },
    /// The de-identified object could not be serialised.
    #[error("cannot write the de-identified file: {0}")]
    Write(String),
}

/// Result alias of this crate.
pub type Result<T, E = DeidError> = std::result::Result<T, E>;
