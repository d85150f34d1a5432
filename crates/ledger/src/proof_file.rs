//! Proofs given as JSON files in the format of the `transparency-dev/merkle`
//! test vectors, so that anyone can test this implementation with their own
//! cases (`cohort ledger check-proof FILE`).
//!
//! The kind of proof follows from the fields present:
//!
//! | fields | proof |
//! |---|---|
//! | `size1`, `size2`, `root1`, `root2`, `proof` | consistency |
//! | `leafIdx`, `start`, `end`, `root`, `leafHash`, `proof` | subtree inclusion |
//! | `start`, `end`, `size`, `root1`, `root2`, `proof` | subtree consistency |
//! | `leafIdx`, `treeSize`, `root`, `leafHash`, `proof` | inclusion |
//!
//! Hashes are standard base64 (padding required, as Go's `encoding/json`
//! decodes `[]byte`); like Go, a missing number reads as 0 and a missing or
//! `null` hash or proof as empty. Other fields (`desc`, `wantErr`, a receipt's
//! `checkpoint`) are ignored here.

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::merkle::{
    ProofError, verify_consistency, verify_inclusion, verify_subtree_consistency,
    verify_subtree_inclusion,
};

/// Why a proof file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProofFileError {
    /// Not JSON, or not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// None of the known field sets is present.
    #[error("unknown proof kind: expected leafIdx/treeSize, size1/size2 or start/end fields")]
    UnknownKind,
    /// A number is not an unsigned 64-bit integer.
    #[error("field {0:?} is not an unsigned 64-bit integer")]
    BadNumber(&'static str),
    /// A hash is not base64 (or not a string).
    #[error("field {0:?} is not standard base64")]
    BadBase64(&'static str),
}

/// A proof read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofFile {
    /// RFC 9162 inclusion proof.
    Inclusion {
        /// 0-based leaf index.
        leaf_index: u64,
        /// Tree size.
        tree_size: u64,
        /// Expected root.
        root: Vec<u8>,
        /// RFC 6962 leaf hash.
        leaf_hash: Vec<u8>,
        /// Audit path.
        proof: Vec<Vec<u8>>,
    },
    /// RFC 9162 consistency proof.
    Consistency {
        /// Older tree size.
        size1: u64,
        /// Newer tree size.
        size2: u64,
        /// Older root.
        root1: Vec<u8>,
        /// Newer root.
        root2: Vec<u8>,
        /// Consistency path.
        proof: Vec<Vec<u8>>,
    },
    /// Subtree inclusion proof (Merkle Tree Certificates draft).
    SubtreeInclusion {
        /// 0-based leaf index in the whole tree.
        leaf_index: u64,
        /// First leaf of the subtree.
        start: u64,
        /// One past the last leaf of the subtree.
        end: u64,
        /// Expected subtree root.
        root: Vec<u8>,
        /// RFC 6962 leaf hash.
        leaf_hash: Vec<u8>,
        /// Audit path within the subtree.
        proof: Vec<Vec<u8>>,
    },
    /// Subtree consistency proof (Merkle Tree Certificates draft).
    SubtreeConsistency {
        /// First leaf of the subtree.
        start: u64,
        /// One past the last leaf of the subtree.
        end: u64,
        /// Tree size.
        size: u64,
        /// Subtree root.
        root1: Vec<u8>,
        /// Tree root.
        root2: Vec<u8>,
        /// Consistency path.
        proof: Vec<Vec<u8>>,
    },
}

impl ProofFile {
    /// Parse the JSON text of a proof file.
    pub fn parse(json: &str) -> Result<Self, ProofFileError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| ProofFileError::NotAnObject(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(ProofFileError::NotAnObject(
                "top level is not an object".into(),
            ));
        };
        let f = Fields(&fields);
        let proof = f.proof()?;
        if f.has("size1") || f.has("size2") {
            Ok(Self::Consistency {
                size1: f.number("size1")?,
                size2: f.number("size2")?,
                root1: f.bytes("root1")?,
                root2: f.bytes("root2")?,
                proof,
            })
        } else if f.has("start") || f.has("end") {
            if f.has("leafIdx") {
                Ok(Self::SubtreeInclusion {
                    leaf_index: f.number("leafIdx")?,
                    start: f.number("start")?,
                    end: f.number("end")?,
                    root: f.bytes("root")?,
                    leaf_hash: f.bytes("leafHash")?,
                    proof,
                })
            } else {
                Ok(Self::SubtreeConsistency {
                    start: f.number("start")?,
                    end: f.number("end")?,
                    size: f.number("size")?,
                    root1: f.bytes("root1")?,
                    root2: f.bytes("root2")?,
                    proof,
                })
            }
        } else if f.has("leafIdx") || f.has("treeSize") {
            Ok(Self::Inclusion {
                leaf_index: f.number("leafIdx")?,
                tree_size: f.number("treeSize")?,
                root: f.bytes("root")?,
                leaf_hash: f.bytes("leafHash")?,
                proof,
            })
        } else {
            Err(ProofFileError::UnknownKind)
        }
    }

    /// Check the proof.
    pub fn verify(&self) -> Result<(), ProofError> {
        match self {
            Self::Inclusion {
                leaf_index,
                tree_size,
                root,
                leaf_hash,
                proof,
            } => verify_inclusion(*leaf_index, *tree_size, leaf_hash, proof, root),
            Self::Consistency {
                size1,
                size2,
                root1,
                root2,
                proof,
            } => verify_consistency(*size1, *size2, proof, root1, root2),
            Self::SubtreeInclusion {
                leaf_index,
                start,
                end,
                root,
                leaf_hash,
                proof,
            } => verify_subtree_inclusion(*leaf_index, *start, *end, leaf_hash, proof, root),
            Self::SubtreeConsistency {
                start,
                end,
                size,
                root1,
                root2,
                proof,
            } => verify_subtree_consistency(*start, *end, *size, proof, root1, root2),
        }
    }

    /// A short name of the proof kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Inclusion { .. } => "inclusion",
            Self::Consistency { .. } => "consistency",
            Self::SubtreeInclusion { .. } => "subtree inclusion",
            Self::SubtreeConsistency { .. } => "subtree consistency",
        }
    }
}

/// Base64 as Go's `encoding/base64.StdEncoding` decodes it: padding required,
/// non-zero trailing bits tolerated.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn number(&self, name: &'static str) -> Result<u64, ProofFileError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(value) => value.as_u64().ok_or(ProofFileError::BadNumber(name)),
        }
    }

    fn bytes(&self, name: &'static str) -> Result<Vec<u8>, ProofFileError> {
        decode_bytes(self.0.get(name), name)
    }

    fn proof(&self) -> Result<Vec<Vec<u8>>, ProofFileError> {
        match self.0.get("proof") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| decode_bytes(Some(item), "proof"))
                .collect(),
            Some(_) => Err(ProofFileError::BadBase64("proof")),
        }
    }
}

fn decode_bytes(value: Option<&Value>, name: &'static str) -> Result<Vec<u8>, ProofFileError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => {
            let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            GO_STD_BASE64
                .decode(cleaned)
                .map_err(|_| ProofFileError::BadBase64(name))
        }
        Some(_) => Err(ProofFileError::BadBase64(name)),
    }
}
