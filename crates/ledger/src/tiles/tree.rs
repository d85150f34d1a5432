//! The Merkle tree as tiles: [`TiledTree`] grows a tree and writes its tiles
//! and bundles; [`TileReader`] reads node hashes of a published tree back.

use std::cell::RefCell;
use std::collections::HashMap;

use super::bundle::{push_entry, split_entries};
use super::path::{TILE_HEIGHT, TILE_WIDTH, TilePath};
use super::store::{LogDir, LogSource, StoreError};
use crate::hash::{HASH_SIZE, Hash, leaf_hash, node_hash};
use crate::merkle::NodeReader;

/// The Merkle root of a power-of-two number of hashes.
pub(crate) fn perfect_root(hashes: &[Hash]) -> Hash {
    let mut layer: Vec<Hash> = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| node_hash(&pair[0].0, &pair[1].0))
            .collect();
    }
    layer.first().copied().unwrap_or_else(Hash::empty_root)
}

/// The root of the tree whose right edge is described by the partial tile of
/// each level (lowest level first): every partial tile splits into perfect
/// subtrees, largest first, and all of them fold from the right.
pub(crate) fn root_from_partials(levels: &[Vec<Hash>]) -> Hash {
    let mut frontier = Vec::new();
    for hashes in levels.iter().rev() {
        let mut start = 0;
        for bit in (0..TILE_HEIGHT).rev() {
            let chunk = 1usize << bit;
            if hashes.len() & chunk != 0 {
                frontier.push(perfect_root(&hashes[start..start + chunk]));
                start += chunk;
            }
        }
    }
    let mut acc = match frontier.pop() {
        Some(last) => last,
        None => return Hash::empty_root(),
    };
    while let Some(left) = frontier.pop() {
        acc = node_hash(&left.0, &acc.0);
    }
    acc
}

/// Concatenated hashes, as a tile stores them.
pub(crate) fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

fn parse_tile(bytes: &[u8], tile: &TilePath) -> Result<Vec<Hash>, StoreError> {
    if bytes.len() != usize::from(tile.width) * HASH_SIZE {
        return Err(StoreError::Corrupt {
            path: tile.to_string(),
            reason: format!(
                "{} bytes, expected {}",
                bytes.len(),
                usize::from(tile.width) * HASH_SIZE
            ),
        });
    }
    Ok(bytes
        .chunks_exact(HASH_SIZE)
        .filter_map(Hash::from_slice)
        .collect())
}

/// Read a tile of the given width, falling back to the prefix of the full tile
/// when a partial tile has been replaced by its full version.
pub(crate) fn read_tile_at_width(
    source: &dyn LogSource,
    tile: &TilePath,
) -> Result<Vec<u8>, StoreError> {
    match source.read_tile(tile) {
        Err(StoreError::Missing(_)) if !tile.is_full() => {
            let full = tile.full();
            let bytes = source.read_tile(&full)?;
            let wanted = match tile.kind {
                super::path::TileKind::Entries => {
                    let entries = split_entries(&bytes, &full.to_string())?;
                    let mut out = Vec::new();
                    for entry in entries.iter().take(usize::from(tile.width)) {
                        push_entry(&mut out, entry)?;
                    }
                    return Ok(out);
                }
                super::path::TileKind::Hashes { .. } => usize::from(tile.width) * HASH_SIZE,
            };
            Ok(bytes.get(..wanted).unwrap_or(&bytes).to_vec())
        }
        other => other,
    }
}

/// Number of hashes at tile level `level` for a tree of `size` leaves.
fn hashes_at_level(size: u64, level: u32) -> u64 {
    size.checked_shr(TILE_HEIGHT * level).unwrap_or(0)
}

/// A tree being grown: the partial tile at each level, the partial entry
/// bundle and the size. Full tiles and bundles are written as soon as they
/// fill; partial ones when [`TiledTree::write_partials`] is called.
#[derive(Clone, Debug, Default)]
pub(crate) struct TiledTree {
    size: u64,
    levels: Vec<Vec<Hash>>,
    bundle: Vec<u8>,
    bundle_len: u16,
}

impl TiledTree {
    /// The state of a published tree of `size` leaves, read from its partial
    /// tiles and bundle (the leaf hashes of the bundle are checked).
    pub(crate) fn resume(source: &dyn LogSource, size: u64) -> Result<Self, StoreError> {
        let mut tree = Self {
            size,
            ..Self::default()
        };
        let mut level = 0;
        while hashes_at_level(size, level) > 0 {
            let width = (hashes_at_level(size, level) % TILE_WIDTH) as u16;
            let mut hashes = Vec::new();
            if width > 0 {
                let tile = TilePath::hashes(level as u8, hashes_at_level(size, level + 1), width);
                hashes = parse_tile(&read_tile_at_width(source, &tile)?, &tile)?;
            }
            tree.levels.push(hashes);
            level += 1;
        }
        let width = (size % TILE_WIDTH) as u16;
        if width > 0 {
            let tile = TilePath::entries(size / TILE_WIDTH, width);
            let bytes = read_tile_at_width(source, &tile)?;
            let entries = split_entries(&bytes, &tile.to_string())?;
            let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
            if tree.levels.first() != Some(&hashes) {
                return Err(StoreError::Corrupt {
                    path: tile.to_string(),
                    reason: "entries do not match the level-0 tile".into(),
                });
            }
            tree.bundle = bytes;
            tree.bundle_len = width;
        }
        Ok(tree)
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The current root.
    pub(crate) fn root(&self) -> Hash {
        root_from_partials(&self.levels)
    }

    /// Append an entry: its bytes go to the bundle, its leaf hash to the tree.
    /// Full tiles and bundles are written to `sink` when there is one (a tree
    /// grown without a sink only computes its root).
    pub(crate) fn push(&mut self, entry: &[u8], sink: Option<&LogDir>) -> Result<Hash, StoreError> {
        let leaf = leaf_hash(entry);
        push_entry(&mut self.bundle, entry)?;
        self.bundle_len += 1;
        self.size += 1;
        if u64::from(self.bundle_len) == TILE_WIDTH {
            if let Some(dir) = sink {
                let tile = TilePath::entries(self.size / TILE_WIDTH - 1, TILE_WIDTH as u16);
                dir.write_tile(&tile, &self.bundle)?;
            }
            self.bundle.clear();
            self.bundle_len = 0;
        }
        self.push_hash(0, leaf, sink)?;
        Ok(leaf)
    }

    fn push_hash(
        &mut self,
        level: usize,
        hash: Hash,
        sink: Option<&LogDir>,
    ) -> Result<(), StoreError> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(hash);
        if self.levels[level].len() as u64 == TILE_WIDTH {
            let full = std::mem::take(&mut self.levels[level]);
            if let Some(dir) = sink {
                let index = hashes_at_level(self.size, level as u32 + 1) - 1;
                dir.write_tile(
                    &TilePath::hashes(level as u8, index, TILE_WIDTH as u16),
                    &tile_bytes(&full),
                )?;
            }
            self.push_hash(level + 1, perfect_root(&full), sink)?;
        }
        Ok(())
    }

    /// Write the partial tiles and the partial bundle of the current size.
    pub(crate) fn write_partials(&self, dir: &LogDir) -> Result<(), StoreError> {
        for (level, hashes) in self.levels.iter().enumerate() {
            if !hashes.is_empty() {
                let index = hashes_at_level(self.size, level as u32 + 1);
                let tile = TilePath::hashes(level as u8, index, hashes.len() as u16);
                dir.write_tile(&tile, &tile_bytes(hashes))?;
            }
        }
        if self.bundle_len > 0 {
            let tile = TilePath::entries(self.size / TILE_WIDTH, self.bundle_len);
            dir.write_tile(&tile, &self.bundle)?;
        }
        Ok(())
    }
}

/// Node hashes of the published tree of `size` leaves, read from its tiles
/// (each tile is read once and kept).
pub struct TileReader<'a> {
    source: &'a dyn LogSource,
    size: u64,
    cache: RefCell<HashMap<(u8, u64), Vec<Hash>>>,
}

impl<'a> TileReader<'a> {
    /// A reader for the tree of `size` leaves published in `source`.
    pub fn new(source: &'a dyn LogSource, size: u64) -> Self {
        Self {
            source,
            size,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// The entries `start..end` (read from the entry bundles).
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        if end > self.size {
            return Err(StoreError::OutOfRange {
                index: end,
                size: self.size,
            });
        }
        let mut out = Vec::new();
        let mut bundle_index = start / TILE_WIDTH;
        while bundle_index * TILE_WIDTH < end {
            let width = (self.size - bundle_index * TILE_WIDTH).min(TILE_WIDTH) as u16;
            let tile = TilePath::entries(bundle_index, width);
            let entries =
                split_entries(&read_tile_at_width(self.source, &tile)?, &tile.to_string())?;
            if entries.len() != usize::from(width) {
                return Err(StoreError::Corrupt {
                    path: tile.to_string(),
                    reason: format!("{} entries, expected {width}", entries.len()),
                });
            }
            let first = bundle_index * TILE_WIDTH;
            out.extend(
                entries
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| (start..end).contains(&(first + *i as u64)))
                    .map(|(_, e)| e),
            );
            bundle_index += 1;
        }
        Ok(out)
    }

    fn tile(&self, level: u8, index: u64) -> Result<Vec<Hash>, StoreError> {
        if let Some(hashes) = self.cache.borrow().get(&(level, index)) {
            return Ok(hashes.clone());
        }
        let available = hashes_at_level(self.size, u32::from(level));
        let width = (available - index * TILE_WIDTH).min(TILE_WIDTH) as u16;
        let tile = TilePath::hashes(level, index, width);
        let hashes = parse_tile(&read_tile_at_width(self.source, &tile)?, &tile)?;
        self.cache
            .borrow_mut()
            .insert((level, index), hashes.clone());
        Ok(hashes)
    }
}

impl NodeReader for TileReader<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        if level >= 64 || (u128::from(index) + 1) << level > u128::from(self.size) {
            return Err(StoreError::OutOfRange {
                index,
                size: self.size,
            });
        }
        let tile_level = u32::from(level) / TILE_HEIGHT;
        let within = u32::from(level) % TILE_HEIGHT;
        let first = index << within;
        let hashes = self.tile(tile_level as u8, first / TILE_WIDTH)?;
        let offset = (first % TILE_WIDTH) as usize;
        let count = 1usize << within;
        let slice = hashes
            .get(offset..offset + count)
            .ok_or(StoreError::OutOfRange {
                index,
                size: self.size,
            })?;
        Ok(perfect_root(slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::range_root;

    fn grown(size: u64, dir: &LogDir) -> TiledTree {
        let mut tree = TiledTree::default();
        for i in 0..size {
            tree.push(&i.to_be_bytes(), Some(dir)).unwrap();
        }
        tree.write_partials(dir).unwrap();
        tree
    }

    #[test]
    fn a_tree_of_70000_entries_has_the_tiles_of_the_c2sp_example() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path());
        let tree = grown(70_000, &dir);
        let files = dir.list_files().unwrap();
        let count = |prefix: &str| files.iter().filter(|f| f.starts_with(prefix)).count();
        let full_level0 = files
            .iter()
            .filter_map(|f| TilePath::parse(f))
            .filter(|t| t.kind == crate::tiles::TileKind::Hashes { level: 0 } && t.is_full())
            .count();
        assert_eq!(full_level0, 273);
        assert!(files.contains(&"tile/0/273.p/112".to_string()));
        assert!(files.contains(&"tile/1/000".to_string()));
        assert!(files.contains(&"tile/1/001.p/17".to_string()));
        assert!(files.contains(&"tile/2/000.p/1".to_string()));
        assert_eq!(count("tile/entries/"), 274);
        assert_eq!(count("tile/"), 274 + 274 + 2 + 1);

        let reader = TileReader::new(&dir, 70_000);
        assert_eq!(range_root(&reader, 0, 70_000).unwrap(), tree.root());
        let resumed = TiledTree::resume(&dir, 70_000).unwrap();
        assert_eq!(resumed.root(), tree.root());
        assert_eq!(
            reader.entries(69_990, 70_000).unwrap()[9],
            69_999u64.to_be_bytes()
        );
    }

    #[test]
    fn a_tree_of_256_entries_has_a_full_tile_and_a_level_one_tile_of_width_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path());
        grown(256, &dir);
        let files = dir.list_files().unwrap();
        assert_eq!(files, ["tile/0/000", "tile/1/000.p/1", "tile/entries/000"]);
    }

    #[test]
    fn the_root_from_tiles_matches_the_root_from_node_hashes_at_every_size() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path());
        let mut tree = TiledTree::default();
        for size in 1..=600u64 {
            tree.push(&size.to_le_bytes(), Some(&dir)).unwrap();
            if size % 37 == 0 || size.is_power_of_two() || size == 600 {
                tree.write_partials(&dir).unwrap();
                let reader = TileReader::new(&dir, size);
                assert_eq!(
                    range_root(&reader, 0, size).unwrap(),
                    tree.root(),
                    "size {size}"
                );
            }
        }
    }
}
