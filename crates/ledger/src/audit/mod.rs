//! The auditor: checks a log directory offline against the federation's
//! policy and reports every violation found, with the index of the entry
//! concerned (it never stops at the first).
//!
//! What is checked, in order:
//!
//! 1. the checkpoint: signed by the log key of the policy, for its origin;
//! 2. storage: every entry bundle and hash tile the checkpoint's tree needs is
//!    present, and every tile and bundle file (full, partial, or an older
//!    partial) equals what the entries give; the tree's root equals the
//!    checkpoint's;
//! 3. entries: each decodes; the first is the policy's genesis, signed by its
//!    coordinator; each other one is signed by its author's key as of its
//!    index (keys enrolled, rotated and revoked by the log itself), and the
//!    author's role allows the statement;
//! 4. the federation's rules (see [`rules`](self)): plans, approvals,
//!    dataset statements (once per hospital and plan, before its first
//!    contribution), open rounds, one contribution per hospital and round, privacy budgets,
//!    aggregates consuming exactly their round's contributions with weights
//!    following from the sample buckets, releases of aggregate outputs,
//!    objections to existing entries;
//! 5. cosignatures: a quorum of the witnesses in force at the checkpoint's
//!    size, no invalid and no unknown signature line.
//!
//! Files outside `checkpoint` and `tile/` (such as the sequencer's
//! `staged-checkpoint`) are not part of the audited log, nor are tiles that
//! lie entirely beyond the checkpoint's tree (entries not yet published).

mod entries;
mod report;
mod rules;
mod storage;

pub use report::{Report, Violation, ViolationKind};

use std::path::Path;

use crate::checkpoint::SignedCheckpoint;
use crate::entry::SignedEntry;
use crate::hash::{Hash, leaf_hash};
use crate::parallel::map_indices;
use crate::policy::Policy;
use crate::tiles::{LogDir, LogSource};

/// Audit the log in `dir` against `policy`.
pub fn verify_log(policy: &Policy, dir: &Path) -> Report {
    let dir = LogDir::new(dir);
    let mut report = Report::default();

    let checkpoint = match dir.read_checkpoint() {
        Ok(bytes) => SignedCheckpoint::open(&bytes, &policy.origin, &policy.log_key)
            .map_err(|e| report.log_violation(ViolationKind::Checkpoint, e.to_string()))
            .ok(),
        Err(e) => {
            report.log_violation(ViolationKind::Checkpoint, e.to_string());
            None
        }
    };
    let files = dir.list_files().unwrap_or_else(|e| {
        report.log_violation(ViolationKind::Storage, e.to_string());
        Vec::new()
    });
    let size = match &checkpoint {
        Some(c) => c.checkpoint().size,
        None => storage::size_from_bundles(&files),
    };
    report.tree_size = size;

    let stored = storage::read_entries(&dir, size, &mut report);
    let leaves: Vec<Option<Hash>> =
        map_indices(stored.len(), |i| stored[i].as_deref().map(leaf_hash));
    let root = storage::check_tree(&dir, &files, &stored, &leaves, size, &mut report);
    report.root = root;
    if let (Some(c), Some(root)) = (&checkpoint, root)
        && c.checkpoint().root != root
    {
        report.log_violation(
            ViolationKind::RootMismatch,
            format!(
                "the entries hash to {root}, the checkpoint says {}",
                c.checkpoint().root
            ),
        );
    }

    let decoded = map_indices(stored.len(), |i| {
        stored[i].as_deref().map(SignedEntry::from_bytes)
    });
    drop(stored);
    let checked = entries::check_signatures(policy, decoded, &mut report);
    let registry = rules::check_rules(policy, &checked, &leaves, &mut report);
    report.entries_checked = checked.iter().filter(|e| e.is_some()).count() as u64;

    if let Some(c) = &checkpoint {
        let witness_policy = registry.witness_policy();
        let tally = c.tally(&policy.log_key, witness_policy);
        for party in &tally.invalid {
            report.log_violation(
                ViolationKind::Cosignature,
                format!("the cosignature of witness {party} does not verify"),
            );
        }
        for name in &tally.unknown {
            report.log_violation(
                ViolationKind::UnknownSignature,
                format!("signature line by unknown key {name:?}"),
            );
        }
        report.cosignatures = tally.valid.len();
        report.quorum = witness_policy.quorum();
        if tally.valid.len() < usize::from(witness_policy.quorum()) {
            report.log_violation(
                ViolationKind::Quorum,
                format!(
                    "{} valid witness cosignatures, the policy requires {}",
                    tally.valid.len(),
                    witness_policy.quorum()
                ),
            );
        }
    }
    report.sort();
    report
}
