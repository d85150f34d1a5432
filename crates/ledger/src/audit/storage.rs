//! Storage checks: read the entries of the tree, recompute every tile, and
//! compare each tile and bundle file with what the entries give.

use std::collections::BTreeSet;

use super::report::{Report, ViolationKind};
use crate::hash::Hash;
use crate::tiles::{
    LogDir, LogSource, TILE_WIDTH, TileKind, TilePath, perfect_root, root_from_partials,
    split_entries, tile_bytes,
};

/// The tree size implied by the bundle files present (used when there is no
/// valid checkpoint to take it from).
pub(super) fn size_from_bundles(files: &[String]) -> u64 {
    files
        .iter()
        .filter_map(|f| TilePath::parse(f))
        .filter(|t| t.kind == TileKind::Entries)
        .map(|t| t.index * TILE_WIDTH + u64::from(t.width))
        .max()
        .unwrap_or(0)
}

/// The entries `0..size`, each `None` when its bundle is missing or broken.
pub(super) fn read_entries(dir: &LogDir, size: u64, report: &mut Report) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(size as usize);
    let mut bundle = 0;
    while bundle * TILE_WIDTH < size {
        let first = bundle * TILE_WIDTH;
        let width = (size - first).min(TILE_WIDTH) as u16;
        let tile = TilePath::entries(bundle, width);
        let entries = read_bundle(dir, &tile);
        match entries {
            Ok(entries) if entries.len() == usize::from(width) => {
                out.extend(entries.into_iter().map(Some));
            }
            Ok(entries) => {
                report.violation(
                    first,
                    ViolationKind::Storage,
                    format!("{tile} holds {} entries, expected {width}", entries.len()),
                );
                out.extend((0..width).map(|_| None));
            }
            Err(message) => {
                report.violation(first, ViolationKind::Storage, message);
                out.extend((0..width).map(|_| None));
            }
        }
        bundle += 1;
    }
    out
}

/// A bundle of the exact width, or the prefix of the full bundle.
fn read_bundle(dir: &LogDir, tile: &TilePath) -> Result<Vec<Vec<u8>>, String> {
    let read = |t: &TilePath| {
        dir.read_tile(t)
            .and_then(|bytes| split_entries(&bytes, &t.to_string()))
    };
    match read(tile) {
        Ok(entries) => Ok(entries),
        Err(first_error) if !tile.is_full() => match read(&tile.full()) {
            Ok(mut entries) => {
                entries.truncate(usize::from(tile.width));
                Ok(entries)
            }
            Err(_) => Err(first_error.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Recompute the tree from the entries' leaf hashes, check every tile and
/// bundle file against it, and return its root (`None` when an entry is
/// missing).
pub(super) fn check_tree(
    dir: &LogDir,
    files: &[String],
    entries: &[Option<Vec<u8>>],
    leaves: &[Option<Hash>],
    size: u64,
    report: &mut Report,
) -> Option<Hash> {
    let leaves: Option<Vec<Hash>> = leaves.iter().copied().collect();
    let Some(leaves) = leaves else {
        report.log_violation(
            ViolationKind::RootMismatch,
            "some entries are unreadable, so the root cannot be recomputed".into(),
        );
        return None;
    };
    let levels = tile_levels(leaves);
    check_files(dir, files, entries, &levels, size, report);
    check_required_tiles(files, &levels, report);
    let partials: Vec<Vec<Hash>> = levels
        .iter()
        .map(|hashes| hashes[hashes.len() - hashes.len() % TILE_WIDTH as usize..].to_vec())
        .collect();
    Some(root_from_partials(&partials))
}

/// The hashes stored at each tile level: level 0 holds the leaf hashes, level
/// `l + 1` the roots of the full tiles of level `l`.
fn tile_levels(leaves: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves];
    loop {
        let below = &levels[levels.len() - 1];
        if (below.len() as u64) < TILE_WIDTH {
            break;
        }
        let above: Vec<Hash> = below
            .chunks_exact(TILE_WIDTH as usize)
            .map(perfect_root)
            .collect();
        levels.push(above);
    }
    levels
}

/// Compare every file under `tile/` with the recomputed tree.
fn check_files(
    dir: &LogDir,
    files: &[String],
    entries: &[Option<Vec<u8>>],
    levels: &[Vec<Hash>],
    size: u64,
    report: &mut Report,
) {
    for name in files.iter().filter(|f| f.starts_with("tile/")) {
        let Some(tile) = TilePath::parse(name) else {
            report.log_violation(ViolationKind::Storage, format!("unexpected file {name}"));
            continue;
        };
        let first = tile.index * TILE_WIDTH;
        let end = first + u64::from(tile.width);
        let expected = match tile.kind {
            TileKind::Entries => {
                if end > size {
                    continue;
                }
                let mut bytes = Vec::new();
                for entry in entries[first as usize..end as usize].iter().flatten() {
                    bytes.extend_from_slice(&(entry.len() as u16).to_be_bytes());
                    bytes.extend_from_slice(entry);
                }
                bytes
            }
            TileKind::Hashes { level } => match levels.get(usize::from(level)) {
                Some(hashes) if end <= hashes.len() as u64 => {
                    tile_bytes(&hashes[first as usize..end as usize])
                }
                _ => continue,
            },
        };
        match dir.read_file(name) {
            Ok(bytes) if bytes == expected => {}
            Ok(_) => {
                let index = match tile.kind {
                    TileKind::Entries => Some(first),
                    TileKind::Hashes { level: 0 } => Some(first),
                    TileKind::Hashes { .. } => None,
                };
                let message = format!("{name} differs from what the entries give");
                match index {
                    Some(i) => report.violation(i, ViolationKind::TileMismatch, message),
                    None => report.log_violation(ViolationKind::TileMismatch, message),
                }
            }
            Err(e) => report.log_violation(ViolationKind::Storage, e.to_string()),
        }
    }
}

/// Every hash tile the tree needs must be present (full, or at the exact
/// partial width).
fn check_required_tiles(files: &[String], levels: &[Vec<Hash>], report: &mut Report) {
    let present: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    for (level, hashes) in levels.iter().enumerate() {
        let count = hashes.len() as u64;
        for index in 0..count.div_ceil(TILE_WIDTH) {
            let width = (count - index * TILE_WIDTH).min(TILE_WIDTH) as u16;
            let tile = TilePath::hashes(level as u8, index, width);
            let found = present.contains(tile.to_string().as_str())
                || present.contains(tile.full().to_string().as_str());
            if !found {
                report.log_violation(ViolationKind::Storage, format!("{tile} is missing"));
            }
        }
    }
}
