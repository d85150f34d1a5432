//! Receipts: an entry, its inclusion proof and the signed checkpoint it is
//! proven against. The JSON uses the field names of the transparency-dev
//! inclusion vectors (`leafIdx`, `treeSize`, `root`, `leafHash`, `proof`),
//! plus `checkpoint` (the signed note) and `entry` (the entry's bytes, base64),
//! so `cohort ledger check-proof` reads it too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::entry::{DecodeError, LogOrigin, PublicKey, SignedEntry};
use crate::hash::{Hash, leaf_hash};
use crate::merkle::{ProofError, inclusion_proof, verify_inclusion};
use crate::tiles::{LogSource, StoreError, TileReader};

/// Why a receipt does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Not the JSON of a receipt.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The checkpoint is not signed by the log.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The proof's size or root differ from the checkpoint's.
    #[error("the proof is not for the receipt's checkpoint")]
    CheckpointMismatch,
    /// The entry does not hash to the leaf hash.
    #[error("the entry does not hash to the leaf hash")]
    EntryMismatch,
    /// The inclusion proof fails.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The entry does not decode.
    #[error("the entry does not decode: {0}")]
    Entry(#[from] DecodeError),
}

/// Proof that an entry is in the log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receipt {
    /// The entry's index.
    pub leaf_idx: u64,
    /// The size of the tree it is proven in.
    pub tree_size: u64,
    /// The tree's root (base64).
    pub root: String,
    /// The entry's leaf hash (base64).
    pub leaf_hash: String,
    /// The audit path (base64 hashes, 32 bytes per tree level).
    pub proof: Vec<String>,
    /// The signed checkpoint (note text with signatures).
    pub checkpoint: String,
    /// The entry's bytes (base64).
    pub entry: String,
}

impl Receipt {
    /// Build the receipt of entry `index` under `checkpoint` from the log's
    /// files.
    pub fn build(
        source: &dyn LogSource,
        checkpoint: &SignedCheckpoint,
        index: u64,
    ) -> Result<Self, StoreError> {
        let head = checkpoint.checkpoint();
        let reader = TileReader::new(source, head.size);
        let proof = inclusion_proof(&reader, index, head.size)?;
        let entry = reader
            .entries(index, index + 1)?
            .pop()
            .ok_or(StoreError::OutOfRange {
                index,
                size: head.size,
            })?;
        Ok(Self {
            leaf_idx: index,
            tree_size: head.size,
            root: head.root.to_base64(),
            leaf_hash: leaf_hash(&entry).to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
            checkpoint: String::from_utf8_lossy(&checkpoint.to_bytes()).into_owned(),
            entry: STANDARD.encode(&entry),
        })
    }

    /// The receipt as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parse a receipt's JSON.
    pub fn from_json(text: &str) -> Result<Self, ReceiptError> {
        serde_json::from_str(text).map_err(|e| ReceiptError::Malformed(e.to_string()))
    }

    /// Check everything: the log's signature on the checkpoint, that the proof
    /// is for that checkpoint, that the entry hashes to the leaf hash, and the
    /// inclusion proof. Returns the decoded entry (its author's signature is
    /// for the auditor to check against the key registry).
    pub fn verify(
        &self,
        origin: &LogOrigin,
        log_key: &PublicKey,
    ) -> Result<SignedEntry, ReceiptError> {
        let signed = SignedCheckpoint::open(self.checkpoint.as_bytes(), origin, log_key)?;
        let head = signed.checkpoint();
        let bad = |what: &str| ReceiptError::Malformed(format!("{what} is not base64"));
        let hash = |s: &str| Hash::from_base64(s).ok_or_else(|| bad("a hash"));
        if head.size != self.tree_size || head.root != hash(&self.root)? {
            return Err(ReceiptError::CheckpointMismatch);
        }
        let entry = STANDARD.decode(&self.entry).map_err(|_| bad("entry"))?;
        let leaf = hash(&self.leaf_hash)?;
        if leaf_hash(&entry) != leaf {
            return Err(ReceiptError::EntryMismatch);
        }
        let proof = self
            .proof
            .iter()
            .map(|p| hash(p))
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(self.leaf_idx, self.tree_size, &leaf.0, &proof, &head.root.0)?;
        Ok(SignedEntry::from_bytes(&entry)?)
    }
}
