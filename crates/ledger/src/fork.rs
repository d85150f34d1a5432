//! Signed evidence that a log showed two incompatible histories.
//!
//! Two checkpoints, both signed by the log key, are a fork when they have the
//! same size and different roots, or when the larger tree does not extend the
//! smaller one. The latter is shown with the larger tree's own data: the root
//! of its first `size1` entries and a consistency proof from that root to the
//! larger checkpoint's root. The proof verifies (so the larger tree's prefix
//! really has that root) while the root differs from the smaller checkpoint's
//! (so the log signed two trees that share no history). Anyone holding the
//! log's public key can check it offline.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::entry::{LogOrigin, PublicKey};
use crate::hash::Hash;
use crate::merkle::verify_consistency;

/// Why fork evidence does not prove a fork.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkEvidenceError {
    /// A checkpoint is not signed by the log.
    #[error("checkpoint not signed by the log: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The first checkpoint is the larger one.
    #[error("the first checkpoint must not be larger than the second")]
    Order,
    /// The two checkpoints are consistent.
    #[error("the checkpoints are consistent: no fork")]
    Consistent,
    /// The prefix root is not proven to be the second tree's.
    #[error("the consistency proof does not tie the prefix root to the second checkpoint")]
    BadProof,
    /// The JSON form is malformed.
    #[error("malformed fork evidence: {0}")]
    Malformed(String),
}

/// Evidence of a fork, checkable by anyone with the log's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkEvidence {
    /// The smaller (or equal-sized) signed checkpoint.
    pub first: SignedCheckpoint,
    /// The other signed checkpoint.
    pub second: SignedCheckpoint,
    /// Root of the second tree's first `first.size` entries.
    pub second_prefix_root: Hash,
    /// Consistency proof from that prefix to the second checkpoint.
    pub proof: Vec<Hash>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForkEvidenceJson {
    first: String,
    second: String,
    second_prefix_root: String,
    proof: Vec<String>,
}

impl ForkEvidence {
    /// Check the evidence against the log's origin and key: `Ok` means the
    /// log signed two incompatible checkpoints.
    pub fn verify(&self, origin: &LogOrigin, log_key: &PublicKey) -> Result<(), ForkEvidenceError> {
        let first = SignedCheckpoint::open(&self.first.to_bytes(), origin, log_key)?;
        let second = SignedCheckpoint::open(&self.second.to_bytes(), origin, log_key)?;
        let (a, b) = (first.checkpoint(), second.checkpoint());
        if a.size > b.size {
            return Err(ForkEvidenceError::Order);
        }
        if a.size == b.size {
            return if a.root != b.root {
                Ok(())
            } else {
                Err(ForkEvidenceError::Consistent)
            };
        }
        if self.second_prefix_root == a.root {
            return Err(ForkEvidenceError::Consistent);
        }
        verify_consistency(
            a.size,
            b.size,
            &self.proof,
            &self.second_prefix_root.0,
            &b.root.0,
        )
        .map_err(|_| ForkEvidenceError::BadProof)
    }

    /// The evidence as JSON (checkpoints as note text, hashes as base64).
    pub fn to_json(&self) -> String {
        let json = ForkEvidenceJson {
            first: String::from_utf8_lossy(&self.first.to_bytes()).into_owned(),
            second: String::from_utf8_lossy(&self.second.to_bytes()).into_owned(),
            second_prefix_root: self.second_prefix_root.to_base64(),
            proof: self.proof.iter().map(Hash::to_base64).collect(),
        };
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// Read evidence from JSON, checking both log signatures.
    pub fn from_json(
        text: &str,
        origin: &LogOrigin,
        log_key: &PublicKey,
    ) -> Result<Self, ForkEvidenceError> {
        let json: ForkEvidenceJson =
            serde_json::from_str(text).map_err(|e| ForkEvidenceError::Malformed(e.to_string()))?;
        let hash = |s: &str| {
            STANDARD
                .decode(s)
                .ok()
                .and_then(|b| Hash::from_slice(&b))
                .ok_or_else(|| ForkEvidenceError::Malformed(format!("bad hash {s:?}")))
        };
        Ok(Self {
            first: SignedCheckpoint::open(json.first.as_bytes(), origin, log_key)?,
            second: SignedCheckpoint::open(json.second.as_bytes(), origin, log_key)?,
            second_prefix_root: hash(&json.second_prefix_root)?,
            proof: json
                .proof
                .iter()
                .map(|p| hash(p))
                .collect::<Result<_, _>>()?,
        })
    }
}
