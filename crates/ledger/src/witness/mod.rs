//! A hospital's witness (C2SP tlog-witness semantics, without the HTTP
//! transport): it cosigns a new checkpoint only if it extends the last one it
//! cosigned, and it keeps its own mirror of the log.
//!
//! On each request the witness checks the log's signature, that the old size
//! is the size it last cosigned, and the consistency proof; then it copies the
//! new entries from the log, rebuilds the tree in its mirror and requires the
//! same root; only then does it cosign (`cosignature/v1`) and persist the new
//! checkpoint, cosignature included, as its mirror's `checkpoint`. A log that
//! shows it a history incompatible with the one it cosigned gets a
//! [`ForkEvidence`] back instead.

mod request;

pub use request::{AddCheckpoint, RequestError};

use std::path::PathBuf;

use ed25519_dalek::SigningKey;

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::entry::{LogOrigin, PartyId, PublicKey};
use crate::fork::ForkEvidence;
use crate::merkle::{consistency_proof, range_root, verify_consistency};
use crate::note::{NoteError, NoteKey, NoteSignature};
use crate::tiles::{LogDir, LogSource, StoreError, TileReader, TiledTree};

/// Why a witness refuses to cosign (with the C2SP HTTP status it maps to).
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The checkpoint is for another log (404).
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// The checkpoint is not validly signed by the log (403).
    #[error("checkpoint not signed by the log: {0}")]
    NotSignedByLog(CheckpointError),
    /// The old size is larger than the checkpoint's (400).
    #[error("old size {old} is larger than the checkpoint size {new}")]
    OldSizeTooLarge {
        /// The request's old size.
        old: u64,
        /// The checkpoint's size.
        new: u64,
    },
    /// The old size is not the size this witness last cosigned (409).
    #[error("the witness last cosigned size {latest}")]
    Conflict {
        /// The size of the latest cosigned checkpoint.
        latest: u64,
    },
    /// The consistency proof does not verify (422).
    #[error("the consistency proof does not verify")]
    InconsistentProof,
    /// The log signed a checkpoint that contradicts one this witness cosigned.
    #[error("the log forked: it signed two incompatible checkpoints")]
    Fork(Box<ForkEvidence>),
    /// The log's entries do not hash to its checkpoint.
    #[error("the log's entries do not hash to the checkpoint root")]
    MirrorMismatch,
    /// The witness's own files are unreadable or inconsistent.
    #[error("witness state: {0}")]
    Store(#[from] StoreError),
    /// The witness key name is not valid.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The stored checkpoint of the witness is unreadable.
    #[error("stored checkpoint: {0}")]
    State(CheckpointError),
}

impl WitnessError {
    /// The HTTP status C2SP tlog-witness assigns to this refusal (a fork is
    /// a 409 Conflict; local failures are 500).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownOrigin(_) => 404,
            Self::NotSignedByLog(_) => 403,
            Self::OldSizeTooLarge { .. } => 400,
            Self::Conflict { .. } | Self::Fork(_) => 409,
            Self::InconsistentProof | Self::MirrorMismatch => 422,
            Self::Store(_) | Self::Note(_) | Self::State(_) => 500,
        }
    }
}

/// A witness of one log, run by one hospital.
pub struct Witness {
    party: PartyId,
    key: SigningKey,
    origin: LogOrigin,
    log_key: PublicKey,
    mirror: LogDir,
    latest: Option<SignedCheckpoint>,
    tree: TiledTree,
}

impl Witness {
    /// Open (or start) the witness whose state and mirror live in `dir`.
    pub fn open(
        dir: impl Into<PathBuf>,
        party: PartyId,
        key: SigningKey,
        origin: LogOrigin,
        log_key: PublicKey,
    ) -> Result<Self, WitnessError> {
        let mirror = LogDir::new(dir);
        let (latest, tree) = match mirror.read_checkpoint() {
            Ok(bytes) => {
                let latest = SignedCheckpoint::open(&bytes, &origin, &log_key)
                    .map_err(WitnessError::State)?;
                let tree = TiledTree::resume(&mirror, latest.checkpoint().size)?;
                if tree.root() != latest.checkpoint().root {
                    return Err(WitnessError::MirrorMismatch);
                }
                (Some(latest), tree)
            }
            Err(StoreError::Missing(_)) => (None, TiledTree::default()),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            party,
            key,
            origin,
            log_key,
            mirror,
            latest,
            tree,
        })
    }

    /// The hospital running this witness.
    pub fn party(&self) -> &PartyId {
        &self.party
    }

    /// The cosigning key as a note verifier key (`<origin>/witness/<party>`,
    /// type `0x04`).
    pub fn note_key(&self) -> Result<NoteKey, WitnessError> {
        Ok(NoteKey::cosigner(
            &self.origin.witness_key_name(&self.party),
            self.key.verifying_key().into(),
        )?)
    }

    /// The latest checkpoint this witness cosigned.
    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// The size of the latest cosigned checkpoint (0 if none).
    pub fn size(&self) -> u64 {
        self.latest.as_ref().map_or(0, |c| c.checkpoint().size)
    }

    /// The witness's mirror of the log.
    pub fn mirror(&self) -> &LogDir {
        &self.mirror
    }

    /// Handle an `add-checkpoint` request: verify, mirror the new entries
    /// from `log`, cosign at `timestamp` (POSIX seconds) and persist.
    pub fn cosign(
        &mut self,
        request: &AddCheckpoint,
        log: &dyn LogSource,
        timestamp: u64,
    ) -> Result<NoteSignature, WitnessError> {
        let new = SignedCheckpoint::open(&request.checkpoint, &self.origin, &self.log_key)
            .map_err(|e| match e {
                CheckpointError::WrongOrigin { found, .. } => WitnessError::UnknownOrigin(found),
                other => WitnessError::NotSignedByLog(other),
            })?;
        let (old, size) = (request.old_size, new.checkpoint().size);
        if old > size {
            return Err(WitnessError::OldSizeTooLarge { old, new: size });
        }
        if old != self.size() {
            return Err(WitnessError::Conflict {
                latest: self.size(),
            });
        }
        if old == 0 {
            if !request.proof.is_empty() {
                return Err(WitnessError::InconsistentProof);
            }
        } else if let Some(latest) = &self.latest {
            let (root1, root2) = (latest.checkpoint().root, new.checkpoint().root);
            if verify_consistency(old, size, &request.proof, &root1.0, &root2.0).is_err() {
                return Err(match fork_evidence(latest, &new, log, &self.log_key) {
                    Some(evidence) => WitnessError::Fork(Box::new(evidence)),
                    None => WitnessError::InconsistentProof,
                });
            }
        }
        self.mirror_entries(log, &new)?;
        let cosignature = self
            .note_key()?
            .cosign(&self.key, new.note().text(), timestamp);
        let mut kept = new;
        kept.add_cosignature(cosignature.clone());
        self.mirror.write_checkpoint(&kept.to_bytes())?;
        self.latest = Some(kept);
        Ok(cosignature)
    }

    /// Fetch the entries the witness lacks, check they give the checkpoint's
    /// root, then add them to the mirror.
    fn mirror_entries(
        &mut self,
        log: &dyn LogSource,
        new: &SignedCheckpoint,
    ) -> Result<(), WitnessError> {
        let size = new.checkpoint().size;
        let reader = TileReader::new(log, size);
        let entries = reader
            .entries(self.tree.size(), size)
            .map_err(|_| WitnessError::MirrorMismatch)?;
        let mut trial = self.tree.clone();
        for entry in &entries {
            trial.push(entry, None)?;
        }
        if trial.root() != new.checkpoint().root {
            return Err(WitnessError::MirrorMismatch);
        }
        for entry in &entries {
            self.tree.push(entry, Some(&self.mirror))?;
        }
        self.tree.write_partials(&self.mirror)?;
        Ok(())
    }

    /// Compare a checkpoint seen elsewhere (gossip from another witness, or a
    /// published one) with the witness's own history: returns fork evidence
    /// when they are incompatible. A larger checkpoint cannot be judged from
    /// the mirror alone and yields `None`.
    pub fn compare(&self, note: &[u8]) -> Result<Option<ForkEvidence>, WitnessError> {
        let other = SignedCheckpoint::open(note, &self.origin, &self.log_key)
            .map_err(WitnessError::NotSignedByLog)?;
        let Some(latest) = &self.latest else {
            return Ok(None);
        };
        Ok(fork_evidence(&other, latest, &self.mirror, &self.log_key)
            .or_else(|| fork_evidence(latest, &other, &self.mirror, &self.log_key)))
    }
}

/// Fork evidence between checkpoint `a` and the larger-or-equal checkpoint
/// `b`, using `b`'s tree data from `source`; `None` when they are consistent
/// or the data is not available.
fn fork_evidence(
    a: &SignedCheckpoint,
    b: &SignedCheckpoint,
    source: &dyn LogSource,
    log_key: &PublicKey,
) -> Option<ForkEvidence> {
    let (ca, cb) = (a.checkpoint(), b.checkpoint());
    if ca.size > cb.size {
        return None;
    }
    let evidence = if ca.size == cb.size {
        (ca.root != cb.root).then(|| ForkEvidence {
            first: a.clone(),
            second: b.clone(),
            second_prefix_root: cb.root,
            proof: Vec::new(),
        })?
    } else {
        if ca.size == 0 {
            return None;
        }
        let reader = TileReader::new(source, cb.size);
        if range_root(&reader, 0, cb.size).ok()? != cb.root {
            return None;
        }
        ForkEvidence {
            first: a.clone(),
            second: b.clone(),
            second_prefix_root: range_root(&reader, 0, ca.size).ok()?,
            proof: consistency_proof(&reader, ca.size, cb.size).ok()?,
        }
    };
    evidence.verify(&ca.origin, log_key).ok()?;
    Some(evidence)
}
