//! Errors of building, encoding and decoding entries.

/// A value that the entry schema does not admit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a party identifier (1 to 63 of `a-z`, `0-9`, `-`; no leading or
    /// trailing `-`; at least one letter).
    #[error(
        "invalid party identifier {0:?}: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-', with at least one letter"
    )]
    PartyId(String),
    /// Not a log origin (1 to 255 printable ASCII characters, no space or `+`).
    #[error("invalid log origin {0:?}: 1 to 255 printable ASCII characters without spaces or '+'")]
    Origin(String),
    /// A number that is NaN, infinite or negative zero.
    #[error("numbers must be finite (and zero is written +0.0)")]
    NonFiniteNumber,
    /// An epsilon that is negative, not finite or too large.
    #[error("epsilon {0} is not a finite non-negative value below 1.8e13")]
    Epsilon(String),
    /// A sample bucket that is not a positive multiple of the bucket width.
    #[error("sample bucket {0} is not a positive multiple of 10")]
    SampleBucket(u64),
    /// A sample count of zero has no bucket.
    #[error("a contribution needs at least one sample")]
    NoSamples,
    /// A probability outside `[0, 1)`.
    #[error("delta {0} is not in [0, 1)")]
    Delta(String),
    /// A list longer than the schema allows.
    #[error("{what} has {len} items, more than {max}")]
    ListTooLong {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A set with a repeated member.
    #[error("{0} lists a member twice")]
    Duplicate(&'static str),
    /// A list that must be empty-free is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A witness quorum of zero or larger than the witness set.
    #[error("quorum {quorum} is not between 1 and the {witnesses} witnesses")]
    Quorum {
        /// The quorum asked for.
        quorum: u16,
        /// The number of witnesses.
        witnesses: usize,
    },
    /// A public key that is not a usable Ed25519 key.
    #[error("not a valid Ed25519 public key (or a weak, small-order one)")]
    PublicKey,
    /// An aggregation weight above one.
    #[error("weight of {0} parts per billion exceeds one")]
    Weight(u32),
    /// An entry larger than an entry bundle can hold.
    #[error("entry of {0} bytes exceeds the 65535-byte limit")]
    EntryTooLarge(usize),
}

/// Bytes that are not a canonical encoding of an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends early.
    #[error("truncated")]
    Truncated,
    /// Bytes remain after the entry.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// An identifier is not ASCII.
    #[error("identifier is not ASCII")]
    NotAscii,
    /// An envelope version this software does not know.
    #[error("unknown entry envelope version {0}")]
    UnknownEnvelope(u8),
    /// A statement kind or version this software does not know.
    #[error("unknown statement kind {kind} version {version}")]
    UnknownStatement {
        /// Statement kind code.
        kind: u8,
        /// Statement version.
        version: u8,
    },
    /// An enumeration code outside its table.
    #[error("unknown {what} code {code}")]
    UnknownCode {
        /// Which enumeration.
        what: &'static str,
        /// The code found.
        code: u8,
    },
    /// A set that is not in strictly increasing order.
    #[error("{0} is not sorted without repetition")]
    NotCanonicalOrder(&'static str),
    /// A list of counts that holds a zero (zeros are left out when encoding).
    #[error("{0} lists a zero count")]
    ZeroCount(&'static str),
    /// A value the schema does not admit.
    #[error(transparent)]
    Value(#[from] ValueError),
}
