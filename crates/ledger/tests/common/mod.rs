//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ledger::hash::{Hash, leaf_hash, node_hash};
use ledger::merkle::NodeReader;
use ledger::tiles::StoreError;

/// The folder of the copied conformance vectors.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// A tree held in memory, level by level (level 0 = leaf hashes).
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The tree over `entries`.
    pub fn new(entries: &[Vec<u8>]) -> Self {
        let mut levels = vec![entries.iter().map(|e| leaf_hash(e)).collect::<Vec<_>>()];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = levels.last().unwrap();
            let above = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0].0, &p[1].0))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }
}

impl NodeReader for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.levels
            .get(usize::from(level))
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(StoreError::OutOfRange { index, size: 0 })
    }
}

use ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use ledger::entry::{Epsilon, PlanRegistered};
use ledger::merkle::range_root;
use ledger::note::NoteKey;
use ledger::synthetic::Federation;
use ledger::tiles::{LogDir, TILE_WIDTH, TilePath};
use ledger::witness::Witness;
use ledger::writer::LogWriter;

/// A published log of a whole federation run.
pub struct Run {
    pub federation: Federation,
    pub dir: tempfile::TempDir,
    pub writer: LogWriter,
    pub witnesses: Vec<Witness>,
    pub plan: PlanRegistered,
}

impl Run {
    /// The log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// Every entry's bytes, in order.
    pub fn entries(&self) -> Vec<Vec<u8>> {
        let reader = ledger::tiles::TileReader::new(self.writer.dir(), self.writer.size());
        reader.entries(0, self.writer.size()).unwrap()
    }
}

/// Genesis, a plan approved by every hospital, `rounds` rounds each
/// spending 0.5 epsilon of a budget of 5, the release of the last model;
/// checkpoints published with every witness after the plan and at the end.
pub fn full_run(hospitals: usize, quorum: u16, rounds: u32) -> Run {
    let federation = Federation::new(hospitals, quorum).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut writer = federation.create_log(&dir.path().join("log")).unwrap();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    let plan = federation
        .plan("heart", rounds, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    federation
        .publish(&mut writer, &mut witnesses, 1_000)
        .unwrap();
    for round in 1..=rounds {
        let entries = federation
            .round_entries(&plan, round, Epsilon::from_micro(500_000))
            .unwrap();
        writer.append_batch(&entries).unwrap();
    }
    writer
        .append(&federation.release(&plan, rounds).unwrap())
        .unwrap();
    federation
        .publish(&mut writer, &mut witnesses, 2_000)
        .unwrap();
    Run {
        federation,
        dir,
        writer,
        witnesses,
        plan,
    }
}

/// Write `entries` as a complete published log in `dir`, as a coordinator
/// holding the log key could: bundles, tiles, a checkpoint signed by the log
/// key, and cosignatures made with the first `cosigners` witness keys
/// (without asking the witnesses).
pub fn forge_log(federation: &Federation, dir: &Path, entries: &[Vec<u8>], cosigners: usize) {
    let _ = std::fs::remove_dir_all(dir);
    let out = LogDir::new(dir);
    let size = entries.len() as u64;
    let tree = MemoryTree::new(entries);
    for (n, chunk) in entries.chunks(TILE_WIDTH as usize).enumerate() {
        let mut bytes = Vec::new();
        for e in chunk {
            bytes.extend_from_slice(&(e.len() as u16).to_be_bytes());
            bytes.extend_from_slice(e);
        }
        out.write_tile(&TilePath::entries(n as u64, chunk.len() as u16), &bytes)
            .unwrap();
    }
    let mut level = 0u8;
    loop {
        let count = size >> (8 * u32::from(level));
        if count == 0 {
            break;
        }
        for n in 0..count.div_ceil(TILE_WIDTH) {
            let width = (count - n * TILE_WIDTH).min(TILE_WIDTH);
            let bytes: Vec<u8> = (0..width)
                .flat_map(|i| tree.node(8 * level, n * TILE_WIDTH + i).unwrap().0)
                .collect();
            out.write_tile(&TilePath::hashes(level, n, width as u16), &bytes)
                .unwrap();
        }
        level += 1;
    }
    let checkpoint = Checkpoint {
        origin: federation.origin.clone(),
        size,
        root: range_root(&tree, 0, size).unwrap(),
    };
    let mut signed = SignedCheckpoint::sign(checkpoint, &federation.log_key).unwrap();
    for ((party, _), key) in federation
        .hospitals
        .iter()
        .zip(&federation.witness_keys)
        .take(cosigners)
    {
        let name = federation.origin.witness_key_name(party);
        let note_key = NoteKey::cosigner(&name, key.verifying_key().into()).unwrap();
        signed.add_cosignature(note_key.cosign(key, signed.note().text(), 3_000));
    }
    out.write_checkpoint(&signed.to_bytes()).unwrap();
}
