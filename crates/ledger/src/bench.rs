//! Benchmarks of the log, on the synthetic federation (4 hospitals, FedAvg
//! rounds of 6 entries: opened, 4 contributions, aggregated):
//!
//! * [`appends`]: entries signed by their authors and appended by the
//!   sequencer (signature checks included), per second;
//! * [`verify_log`]: a full audit of a log of `n` entries;
//! * [`proof_sizes`]: inclusion and consistency proof sizes (32 bytes per
//!   tree level).

use std::path::Path;
use std::time::Instant;

use crate::entry::{Epsilon, PlanRegistered, SignedEntry, ValueError};
use crate::hash::Hash;
use crate::merkle::{NodeReader, consistency_proof, inclusion_proof};
use crate::parallel::map_indices;
use crate::synthetic::{Federation, SyntheticError};
use crate::tiles::StoreError;
use crate::writer::{LogError, LogWriter};

/// Rounds signed and appended per batch.
const ROUNDS_PER_BATCH: u32 = 500;

/// Result of [`appends`].
#[derive(Clone, Debug)]
pub struct AppendStats {
    /// Entries appended.
    pub entries: u64,
    /// Wall-clock seconds (signing, checking, hashing, writing tiles, and the
    /// final checkpoint).
    pub seconds: f64,
    /// Entries per second.
    pub per_second: f64,
    /// Total size of the entries, in bytes.
    pub entry_bytes: u64,
}

/// Result of [`verify_log`].
#[derive(Clone, Debug)]
pub struct VerifyStats {
    /// Entries in the audited log.
    pub entries: u64,
    /// Seconds to build and publish the log (not part of the audit).
    pub build_seconds: f64,
    /// Seconds of the audit.
    pub verify_seconds: f64,
    /// Violations found (0 expected).
    pub violations: usize,
}

/// Size of the proofs for one tree size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofSize {
    /// Tree size.
    pub tree_size: u64,
    /// Hashes in the inclusion proof of the first entry.
    pub inclusion_hashes: usize,
    /// Bytes of those hashes.
    pub inclusion_bytes: usize,
    /// Hashes in the consistency proof from half the tree.
    pub consistency_hashes: usize,
}

/// Sign and append at least `n` entries to a new log in `dir`; returns the
/// throughput.
pub fn appends(dir: &Path, n: u64) -> Result<AppendStats, SyntheticError> {
    let federation = Federation::new(4, 2)?;
    let started = Instant::now();
    let mut writer = federation.create_log(dir)?;
    let entry_bytes = fill(&federation, &mut writer, n)?;
    writer.checkpoint()?;
    let seconds = started.elapsed().as_secs_f64();
    let entries = writer.size();
    Ok(AppendStats {
        entries,
        seconds,
        per_second: entries as f64 / seconds,
        entry_bytes,
    })
}

/// Build and publish a log of at least `n` entries in `dir/log` (not timed;
/// the policy goes to `dir/policy.toml`), then audit it.
pub fn verify_log(dir: &Path, n: u64) -> Result<VerifyStats, SyntheticError> {
    let federation = Federation::new(4, 2)?;
    let log_dir = dir.join("log");
    let started = Instant::now();
    let mut writer = federation.create_log(&log_dir)?;
    fill(&federation, &mut writer, n)?;
    let mut witnesses = federation.witnesses(&dir.join("witnesses"))?;
    let quorum = usize::from(federation.quorum);
    federation.publish(&mut writer, &mut witnesses[..quorum], 1)?;
    let build_seconds = started.elapsed().as_secs_f64();
    let policy = federation.policy()?;
    std::fs::write(dir.join("policy.toml"), policy.to_toml())
        .map_err(|source| StoreError::Io {
            path: dir.join("policy.toml"),
            source,
        })
        .map_err(LogError::from)?;
    let started = Instant::now();
    let report = crate::audit::verify_log(&policy, &log_dir);
    Ok(VerifyStats {
        entries: writer.size(),
        build_seconds,
        verify_seconds: started.elapsed().as_secs_f64(),
        violations: report.violations.len(),
    })
}

/// Proof sizes for each tree size (computed from the tree shape alone).
pub fn proof_sizes(sizes: &[u64]) -> Vec<ProofSize> {
    struct Shape;
    impl NodeReader for Shape {
        fn node(&self, _level: u8, _index: u64) -> Result<Hash, StoreError> {
            Ok(Hash::default())
        }
    }
    sizes
        .iter()
        .filter(|size| **size > 0)
        .map(|&size| {
            let inclusion = inclusion_proof(&Shape, 0, size).map_or(0, |p| p.len());
            let consistency =
                consistency_proof(&Shape, size.div_ceil(2), size).map_or(0, |p| p.len());
            ProofSize {
                tree_size: size,
                inclusion_hashes: inclusion,
                inclusion_bytes: inclusion * 32,
                consistency_hashes: consistency,
            }
        })
        .collect()
}

/// Register a plan and append whole rounds until the log holds `n` entries;
/// entries are signed on all cores, batch by batch. Returns the entry bytes.
fn fill(federation: &Federation, writer: &mut LogWriter, n: u64) -> Result<u64, SyntheticError> {
    let per_round = federation.hospitals.len() as u64 + 2;
    let rounds = u32::try_from(n.div_ceil(per_round))
        .unwrap_or(u32::MAX)
        .max(1);
    let epsilon_round = Epsilon::from_micro(1);
    let plan = federation.plan("bench", rounds, Epsilon::from_micro(u64::from(rounds)))?;
    let mut bytes = 0;
    for entry in federation.plan_entries(&plan)? {
        bytes += entry.bytes().len() as u64;
        writer.append(&entry)?;
    }
    let mut round = 1;
    while round <= rounds && writer.size() < n {
        let count = ROUNDS_PER_BATCH.min(rounds - round + 1);
        let batch = sign_rounds(federation, &plan, round, count, epsilon_round)?;
        bytes += batch.iter().map(|e| e.bytes().len() as u64).sum::<u64>();
        writer.append_batch(&batch)?;
        round += count;
    }
    Ok(bytes)
}

fn sign_rounds(
    federation: &Federation,
    plan: &PlanRegistered,
    first: u32,
    count: u32,
    epsilon_round: Epsilon,
) -> Result<Vec<SignedEntry>, ValueError> {
    let rounds = map_indices(count as usize, |i| {
        federation.round_entries(plan, first + i as u32, epsilon_round)
    });
    let mut out = Vec::new();
    for round in rounds {
        out.extend(round?);
    }
    Ok(out)
}
