//! What the auditor found.

use std::fmt;

use crate::hash::Hash;

/// The kinds of violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// The checkpoint is missing, malformed, for another log or not signed by
    /// the log key.
    Checkpoint,
    /// A file is missing, unreadable, malformed or unexpected.
    Storage,
    /// A tile or bundle differs from what the entries give.
    TileMismatch,
    /// The entries do not hash to the checkpoint's root.
    RootMismatch,
    /// A witness's cosignature does not verify.
    Cosignature,
    /// A signature line by a key the policy does not know.
    UnknownSignature,
    /// Fewer valid cosignatures than the quorum.
    Quorum,
    /// An entry does not decode.
    Decode,
    /// The first entry is not the policy's genesis.
    Genesis,
    /// The author may not sign this statement (unknown, revoked, wrong role).
    Unauthorised,
    /// The author's signature does not verify.
    Signature,
    /// A key or policy entry that cannot take effect.
    Registry,
    /// The same entry appears twice.
    DuplicateEntry,
    /// A plan rule is broken (unknown plan, duplicate, eligibility, approval,
    /// dataset statement).
    Plan,
    /// A round rule is broken (numbering, not open).
    Round,
    /// A hospital contributed twice to a round.
    DuplicateContribution,
    /// The code run differs from the plan's.
    CodeHash,
    /// A privacy budget is exceeded or does not add up.
    Budget,
    /// An aggregate does not consume exactly its round's contributions, or
    /// its weights do not follow from the sample counts.
    Aggregate,
    /// A released model is not an aggregate's output.
    Release,
    /// An objection refers to no earlier entry.
    Objection,
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The entry concerned, or `None` for the log as a whole (checkpoint,
    /// cosignatures, tiles).
    pub index: Option<u64>,
    /// What kind of rule is broken.
    pub kind: ViolationKind,
    /// A sentence for people.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}: {:?}: {}", self.kind, self.message),
            None => write!(f, "log: {:?}: {}", self.kind, self.message),
        }
    }
}

/// The auditor's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Size of the audited tree (from the checkpoint, or the bundles found).
    pub tree_size: u64,
    /// Root the entries hash to, when all of them could be read.
    pub root: Option<Hash>,
    /// Entries that decoded.
    pub entries_checked: u64,
    /// Valid witness cosignatures on the checkpoint.
    pub cosignatures: usize,
    /// Cosignatures the witness policy requires.
    pub quorum: u16,
    /// Every violation found, log-wide ones first, then by index.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    pub(crate) fn violation(&mut self, index: u64, kind: ViolationKind, message: String) {
        self.violations.push(Violation {
            index: Some(index),
            kind,
            message,
        });
    }

    pub(crate) fn log_violation(&mut self, kind: ViolationKind, message: String) {
        self.violations.push(Violation {
            index: None,
            kind,
            message,
        });
    }

    pub(crate) fn sort(&mut self) {
        self.violations.sort_by_key(|v| (v.index, v.kind));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tree size {}, root {}, {} entries decoded, {} of {} cosignatures",
            self.tree_size,
            self.root
                .map_or_else(|| "unknown".to_string(), |r| r.to_string()),
            self.entries_checked,
            self.cosignatures,
            self.quorum
        )?;
        if self.is_clean() {
            return writeln!(f, "OK: no violation");
        }
        writeln!(f, "{} violations:", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}
