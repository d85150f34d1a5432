//! Checkpoints (C2SP tlog-checkpoint): `origin\nsize\nbase64(root)\n`, signed
//! by the log's Ed25519 key (key name = origin) and cosigned by witnesses.

use ed25519_dalek::SigningKey;

use crate::entry::{LogOrigin, PartyId, PublicKey, WitnessPolicy};
use crate::hash::Hash;
use crate::note::{Note, NoteError, NoteKey, NoteSignature};

/// Why a checkpoint is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note is malformed.
    #[error("malformed signed note: {0}")]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint body of this implementation.
    #[error("malformed checkpoint body: {0}")]
    Body(&'static str),
    /// The checkpoint is for another log.
    #[error("checkpoint origin {found:?} is not {expected:?}")]
    WrongOrigin {
        /// The origin expected.
        expected: String,
        /// The origin found.
        found: String,
    },
    /// No valid signature by the log's key.
    #[error("the checkpoint carries no valid signature by the log key")]
    NotSignedByLog,
}

/// A tree head: which log, how many entries, which root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log.
    pub origin: LogOrigin,
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 root of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        )
    }

    /// Parse a note text (extension lines are not used by this log and are
    /// rejected).
    pub fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Body("no final newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines[..] else {
            return Err(CheckpointError::Body("expected exactly three lines"));
        };
        let origin = LogOrigin::new(origin).map_err(|_| CheckpointError::Body("origin"))?;
        let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| canonical && size.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(CheckpointError::Body("tree size"))?;
        let root = Hash::from_base64(root)
            .filter(|h| h.to_base64() == root)
            .ok_or(CheckpointError::Body("root hash"))?;
        Ok(Self { origin, size, root })
    }

    /// The log's note key for this origin.
    pub fn log_note_key(origin: &LogOrigin, log_key: PublicKey) -> Result<NoteKey, NoteError> {
        NoteKey::ed25519(origin.as_str(), log_key)
    }
}

/// The cosignatures found on a checkpoint, checked against a witness policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CosignatureTally {
    /// Witnesses whose cosignature verifies, with its timestamp.
    pub valid: Vec<(PartyId, u64)>,
    /// Witnesses whose cosignature line does not verify.
    pub invalid: Vec<PartyId>,
    /// Signature lines by keys that are neither the log's nor a witness's.
    pub unknown: Vec<String>,
}

/// A checkpoint with its signed note: the log's signature and any
/// cosignatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Sign a checkpoint with the log's key.
    pub fn sign(checkpoint: Checkpoint, log_key: &SigningKey) -> Result<Self, CheckpointError> {
        let key = Checkpoint::log_note_key(&checkpoint.origin, log_key.verifying_key().into())?;
        let mut note = Note::new(&checkpoint.to_text())?;
        note.add_signature(key.sign(log_key, note.text()));
        Ok(Self { checkpoint, note })
    }

    /// Parse a signed checkpoint of the log `origin` and check the log's
    /// signature on it (other signatures are kept, unchecked).
    pub fn open(
        bytes: &[u8],
        origin: &LogOrigin,
        log_key: &PublicKey,
    ) -> Result<Self, CheckpointError> {
        let note = Note::parse(bytes)?;
        let checkpoint = Checkpoint::from_text(note.text())?;
        if &checkpoint.origin != origin {
            return Err(CheckpointError::WrongOrigin {
                expected: origin.to_string(),
                found: checkpoint.origin.to_string(),
            });
        }
        let key = Checkpoint::log_note_key(origin, *log_key)?;
        let mut signed_by_log = false;
        for s in note.signatures().iter().filter(|s| key.matches(s)) {
            if key.verify(note.text(), s).is_none() {
                return Err(CheckpointError::NotSignedByLog);
            }
            signed_by_log = true;
        }
        if !signed_by_log {
            return Err(CheckpointError::NotSignedByLog);
        }
        Ok(Self { checkpoint, note })
    }

    /// The tree head.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The note's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.note.to_bytes()
    }

    /// Add (or replace) a cosignature line.
    pub fn add_cosignature(&mut self, cosignature: NoteSignature) {
        self.note.add_signature(cosignature);
    }

    /// Check every signature line against the log key and the witness policy.
    pub fn tally(&self, log_key: &PublicKey, policy: &WitnessPolicy) -> CosignatureTally {
        let origin = &self.checkpoint.origin;
        let log = Checkpoint::log_note_key(origin, *log_key).ok();
        let witnesses: Vec<(PartyId, Option<NoteKey>)> = policy
            .witnesses()
            .iter()
            .map(|w| {
                let name = origin.witness_key_name(&w.party);
                (w.party.clone(), NoteKey::cosigner(&name, w.key).ok())
            })
            .collect();
        let mut tally = CosignatureTally::default();
        for s in self.note.signatures() {
            if log.as_ref().is_some_and(|k| k.matches(s)) {
                continue;
            }
            let witness = witnesses
                .iter()
                .find(|(_, k)| k.as_ref().is_some_and(|k| k.matches(s)));
            match witness {
                Some((party, Some(key))) => match key.verify(self.note.text(), s) {
                    Some(ts) if !tally.valid.iter().any(|(p, _)| p == party) => {
                        tally.valid.push((party.clone(), ts))
                    }
                    Some(_) => {}
                    None => tally.invalid.push(party.clone()),
                },
                _ => tally.unknown.push(s.name().to_string()),
            }
        }
        tally
    }
}
