//! The sequencer: appends signed entries to a log directory, signs
//! checkpoints with the log's key, collects witness cosignatures and publishes
//! a checkpoint once a quorum of witnesses has cosigned it.
//!
//! Files: the C2SP tlog-tiles tree (`tile/...`), the published `checkpoint`,
//! and `staged-checkpoint`, the signed checkpoint still gathering cosignatures
//! (so that a restarted sequencer never signs a different tree of the same
//! size).

use std::path::PathBuf;

use ed25519_dalek::SigningKey;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::entry::{DecodeError, LogOrigin, PartyId, SignedEntry};
use crate::hash::Hash;
use crate::merkle::consistency_proof;
use crate::note::NoteSignature;
use crate::receipt::Receipt;
use crate::registry::{AuthError, Registry};
use crate::signatures::verify_many;
use crate::tiles::{LogDir, LogSource, StoreError, TileReader, TiledTree};
use crate::witness::AddCheckpoint;

/// File of the signed checkpoint awaiting its quorum.
const STAGED_CHECKPOINT: &str = "staged-checkpoint";

/// Errors of the sequencer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading or writing the log's files failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A checkpoint could not be signed or read back.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// An entry's author may not sign it, or its signature is wrong.
    #[error("entry {position} rejected: {source}")]
    Unauthorised {
        /// Its position (in the log, or in the batch being appended).
        position: u64,
        /// Why.
        source: AuthError,
    },
    /// Stored bytes are not a valid entry.
    #[error("stored entry {index} does not decode: {source}")]
    Decode {
        /// Its index.
        index: u64,
        /// Why.
        source: DecodeError,
    },
    /// `create` on a directory that already holds a signed log.
    #[error("{0} already holds a log")]
    AlreadyExists(PathBuf),
    /// `open` on a directory without a log.
    #[error("{0} holds no log (no checkpoint)")]
    NoLog(PathBuf),
    /// The tiles on disk do not hash to the checkpoint's root.
    #[error("the tiles do not match the checkpoint root")]
    RootMismatch,
    /// Cosignatures or publication asked for before `checkpoint()`.
    #[error("no checkpoint is waiting for cosignatures")]
    NothingStaged,
    /// A cosignature that is not by a witness of the policy, or does not verify.
    #[error("cosignature by {0:?} is not a valid cosignature of a witness")]
    BadCosignature(String),
    /// Not enough witnesses have cosigned.
    #[error("{have} of the {need} cosignatures needed")]
    NoQuorum {
        /// Valid cosignatures gathered.
        have: usize,
        /// The quorum.
        need: usize,
    },
    /// A proof or receipt for sizes the log does not have.
    #[error("size or index {0} is beyond the staged or published tree")]
    OutOfRange(u64),
}

/// The sequencer of a log.
pub struct LogWriter {
    dir: LogDir,
    origin: LogOrigin,
    log_key: SigningKey,
    tree: TiledTree,
    registry: Registry,
    published: Option<SignedCheckpoint>,
    staged: Option<SignedCheckpoint>,
}

impl LogWriter {
    /// Start a new log in `dir` (which must hold no signed checkpoint) with
    /// its genesis entry, signed by one of the coordinators it names.
    pub fn create(
        dir: impl Into<PathBuf>,
        origin: LogOrigin,
        log_key: SigningKey,
        genesis: &SignedEntry,
    ) -> Result<Self, LogError> {
        let dir = LogDir::new(dir);
        if dir.has_checkpoint() || dir.read_file(STAGED_CHECKPOINT).is_ok() {
            return Err(LogError::AlreadyExists(dir.root().to_path_buf()));
        }
        let registry = Registry::from_first_entry(genesis, &origin).map_err(|source| {
            LogError::Unauthorised {
                position: 0,
                source,
            }
        })?;
        let mut tree = TiledTree::default();
        tree.push(genesis.bytes(), Some(&dir))?;
        Ok(Self {
            dir,
            origin,
            log_key,
            tree,
            registry,
            published: None,
            staged: None,
        })
    }

    /// Reopen the log in `dir`: from its staged checkpoint if one is waiting,
    /// else from its published checkpoint. Entries appended after the last
    /// `checkpoint()` before a restart are lost (their authors resubmit).
    pub fn open(
        dir: impl Into<PathBuf>,
        origin: LogOrigin,
        log_key: SigningKey,
    ) -> Result<Self, LogError> {
        let dir = LogDir::new(dir);
        let public = log_key.verifying_key().into();
        let read = |name: &str| -> Result<Option<SignedCheckpoint>, LogError> {
            match dir.read_file(name) {
                Ok(bytes) => Ok(Some(SignedCheckpoint::open(&bytes, &origin, &public)?)),
                Err(StoreError::Missing(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let published = read(crate::tiles::CHECKPOINT_FILE)?;
        let staged = read(STAGED_CHECKPOINT)?;
        let head = match (&staged, &published) {
            (Some(s), _) => s.checkpoint().clone(),
            (None, Some(p)) => p.checkpoint().clone(),
            (None, None) => return Err(LogError::NoLog(dir.root().to_path_buf())),
        };
        let tree = TiledTree::resume(&dir, head.size)?;
        if tree.root() != head.root {
            return Err(LogError::RootMismatch);
        }
        let registry = rebuild_registry(&dir, head.size, &origin)?;
        Ok(Self {
            dir,
            origin,
            log_key,
            tree,
            registry,
            published,
            staged,
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &LogOrigin {
        &self.origin
    }

    /// The log directory.
    pub fn dir(&self) -> &LogDir {
        &self.dir
    }

    /// Number of entries appended so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The key registry as of the end of the log.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The latest checkpoint published with a quorum of cosignatures.
    pub fn published(&self) -> Option<&SignedCheckpoint> {
        self.published.as_ref()
    }

    /// The checkpoint gathering cosignatures, if any.
    pub fn staged(&self) -> Option<&SignedCheckpoint> {
        self.staged.as_ref()
    }

    /// Append one entry after checking that its author may sign it and that
    /// the signature verifies; returns its index.
    pub fn append(&mut self, entry: &SignedEntry) -> Result<u64, LogError> {
        self.append_batch(std::slice::from_ref(entry))
    }

    /// Append entries in order, all or none: every author and signature is
    /// checked (signatures on all cores) before the first is written. Returns
    /// the index of the first.
    pub fn append_batch(&mut self, entries: &[SignedEntry]) -> Result<u64, LogError> {
        let first = self.size();
        let mut registry = self.registry.clone();
        let mut keys = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let position = first + i as u64;
            let key = registry
                .signer_key(entry)
                .map_err(|source| LogError::Unauthorised { position, source })?;
            registry
                .apply(entry.statement())
                .map_err(|source| LogError::Unauthorised { position, source })?;
            keys.push(key);
        }
        let valid = verify_many(entries.len(), |i| {
            (
                keys[i],
                entries[i].signed_message(&self.origin),
                *entries[i].signature(),
            )
        });
        if let Some(bad) = valid.iter().position(|ok| !ok) {
            return Err(LogError::Unauthorised {
                position: first + bad as u64,
                source: AuthError::BadSignature(entries[bad].author().clone()),
            });
        }
        for entry in entries {
            self.tree.push(entry.bytes(), Some(&self.dir))?;
        }
        self.registry = registry;
        Ok(first)
    }

    /// Write the tiles of the current size and sign a checkpoint of it with
    /// the log key. It waits in `staged-checkpoint` for cosignatures.
    pub fn checkpoint(&mut self) -> Result<SignedCheckpoint, LogError> {
        if let Some(staged) = &self.staged
            && staged.checkpoint().size == self.size()
        {
            return Ok(staged.clone());
        }
        self.tree.write_partials(&self.dir)?;
        let signed = SignedCheckpoint::sign(
            Checkpoint {
                origin: self.origin.clone(),
                size: self.size(),
                root: self.tree.root(),
            },
            &self.log_key,
        )?;
        self.dir.write_file(STAGED_CHECKPOINT, &signed.to_bytes())?;
        self.staged = Some(signed.clone());
        Ok(signed)
    }

    /// The consistency proof from `old_size` to the staged checkpoint.
    pub fn consistency_proof(&self, old_size: u64) -> Result<Vec<Hash>, LogError> {
        let staged = self.staged.as_ref().ok_or(LogError::NothingStaged)?;
        let size = staged.checkpoint().size;
        if old_size == 0 || old_size == size {
            return Ok(Vec::new());
        }
        let reader = TileReader::new(&self.dir, size);
        consistency_proof(&reader, old_size, size).map_err(|_| LogError::OutOfRange(old_size))
    }

    /// The C2SP `add-checkpoint` request for a witness whose latest cosigned
    /// size is `witness_size`.
    pub fn add_checkpoint_request(&self, witness_size: u64) -> Result<AddCheckpoint, LogError> {
        let staged = self.staged.as_ref().ok_or(LogError::NothingStaged)?;
        Ok(AddCheckpoint {
            old_size: witness_size,
            proof: self.consistency_proof(witness_size)?,
            checkpoint: staged.to_bytes(),
        })
    }

    /// Add a witness's cosignature to the staged checkpoint; returns the
    /// witness. Lines that are not a valid cosignature by a witness of the
    /// policy in force are refused.
    pub fn add_cosignature(&mut self, cosignature: NoteSignature) -> Result<PartyId, LogError> {
        let staged = self.staged.as_mut().ok_or(LogError::NothingStaged)?;
        let mut candidate = staged.clone();
        candidate.add_cosignature(cosignature.clone());
        let tally = candidate.tally(
            &self.log_key.verifying_key().into(),
            self.registry.witness_policy(),
        );
        let witness = tally
            .valid
            .iter()
            .map(|(party, _)| party)
            .find(|party| cosignature.name() == self.origin.witness_key_name(party))
            .cloned()
            .ok_or_else(|| LogError::BadCosignature(cosignature.name().to_string()))?;
        *staged = candidate;
        self.dir.write_file(STAGED_CHECKPOINT, &staged.to_bytes())?;
        Ok(witness)
    }

    /// Publish the staged checkpoint if a quorum of witnesses cosigned it.
    pub fn publish(&mut self) -> Result<SignedCheckpoint, LogError> {
        let staged = self.staged.as_ref().ok_or(LogError::NothingStaged)?;
        let tally = staged.tally(
            &self.log_key.verifying_key().into(),
            self.registry.witness_policy(),
        );
        let need = usize::from(self.registry.witness_policy().quorum());
        if tally.valid.len() < need {
            return Err(LogError::NoQuorum {
                have: tally.valid.len(),
                need,
            });
        }
        self.dir.write_checkpoint(&staged.to_bytes())?;
        self.dir.remove_file(STAGED_CHECKPOINT)?;
        self.published = self.staged.take();
        self.published.clone().ok_or(LogError::NothingStaged)
    }

    /// An inclusion receipt for entry `index` under the published checkpoint.
    pub fn receipt(&self, index: u64) -> Result<Receipt, LogError> {
        let published = self.published.as_ref().ok_or(LogError::OutOfRange(index))?;
        Receipt::build(&self.dir, published, index).map_err(|e| match e {
            StoreError::OutOfRange { .. } => LogError::OutOfRange(index),
            other => other.into(),
        })
    }
}

/// Replay the key and policy entries of a stored log.
fn rebuild_registry(
    source: &dyn LogSource,
    size: u64,
    origin: &LogOrigin,
) -> Result<Registry, LogError> {
    let reader = TileReader::new(source, size);
    let decode = |index: u64, bytes: &[u8]| {
        SignedEntry::from_bytes(bytes).map_err(|source| LogError::Decode { index, source })
    };
    let entries = reader.entries(0, size)?;
    let mut iter = entries.iter().enumerate();
    let Some((_, first)) = iter.next() else {
        return Err(LogError::RootMismatch);
    };
    let mut registry =
        Registry::from_first_entry(&decode(0, first)?, origin).map_err(|source| {
            LogError::Unauthorised {
                position: 0,
                source,
            }
        })?;
    for (index, bytes) in iter {
        let entry = decode(index as u64, bytes)?;
        registry
            .apply(entry.statement())
            .map_err(|source| LogError::Unauthorised {
                position: index as u64,
                source,
            })?;
    }
    Ok(registry)
}
