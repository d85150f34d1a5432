//! Resource names of the C2SP tlog-tiles layout: `tile/<L>/<N>[.p/<W>]` for
//! hash tiles and `tile/entries/<N>[.p/<W>]` for entry bundles.

use std::fmt;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// Tile height: each tile spans 8 levels of the Merkle tree.
pub const TILE_HEIGHT: u32 = 8;

/// Highest tile level the layout allows.
const MAX_LEVEL: u8 = 63;

/// What a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Merkle tree hashes at tile level `level` (0 = leaf hashes).
    Hashes {
        /// The tile level, 0 to 63.
        level: u8,
    },
    /// An entry bundle: the log entries behind a level-0 tile.
    Entries,
}

/// One tile or entry bundle: its kind, index within its level, and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TilePath {
    /// Hash tile or entry bundle.
    pub kind: TileKind,
    /// `N`: the tile's index within its level.
    pub index: u64,
    /// `W`: the number of hashes or entries, 1 to 256 (256 = a full tile).
    pub width: u16,
}

impl TilePath {
    /// A hash tile.
    pub fn hashes(level: u8, index: u64, width: u16) -> Self {
        Self {
            kind: TileKind::Hashes { level },
            index,
            width,
        }
    }

    /// An entry bundle.
    pub fn entries(index: u64, width: u16) -> Self {
        Self {
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// Whether this is a full (256-wide) tile.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The same tile at full width.
    pub fn full(&self) -> Self {
        Self {
            width: TILE_WIDTH as u16,
            ..*self
        }
    }

    /// Parse a path relative to the log directory, accepting only the
    /// canonical spelling (so that parsing and formatting round-trip).
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (kind_part, rest) = rest.split_once('/')?;
        let kind = if kind_part == "entries" {
            TileKind::Entries
        } else {
            let level: u8 = parse_decimal(kind_part)?.try_into().ok()?;
            if level > MAX_LEVEL {
                return None;
            }
            TileKind::Hashes { level }
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index_part, width_part)) => {
                let width = parse_decimal(width_part)?;
                if width == 0 || width >= TILE_WIDTH {
                    return None;
                }
                (index_part, width as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let tile = Self {
            kind,
            index: parse_index(index_part)?,
            width,
        };
        (tile.to_string() == path).then_some(tile)
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tile/")?;
        match self.kind {
            TileKind::Hashes { level } => write!(f, "{level}/")?,
            TileKind::Entries => f.write_str("entries/")?,
        }
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, group) in groups.iter().enumerate().rev() {
            if i == 0 {
                write!(f, "{group:03}")?;
            } else {
                write!(f, "x{group:03}/")?;
            }
        }
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

fn parse_index(text: &str) -> Option<u64> {
    let groups: Vec<&str> = text.split('/').collect();
    let (last, leading) = groups.split_last()?;
    let mut value: u64 = 0;
    for group in leading {
        value = push_group(value, group.strip_prefix('x')?)?;
    }
    push_group(value, last)
}

fn push_group(value: u64, group: &str) -> Option<u64> {
    if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: u64 = group.parse().ok()?;
    value.checked_mul(1000)?.checked_add(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_written_in_three_digit_groups_with_x_prefixes() {
        assert_eq!(
            TilePath::hashes(0, 1_234_067, 256).to_string(),
            "tile/0/x001/x234/067"
        );
        assert_eq!(TilePath::hashes(2, 0, 1).to_string(), "tile/2/000.p/1");
        assert_eq!(
            TilePath::entries(5, 112).to_string(),
            "tile/entries/005.p/112"
        );
    }

    #[test]
    fn canonical_paths_round_trip_and_others_are_rejected() {
        for path in [
            "tile/0/x001/x234/067",
            "tile/entries/000",
            "tile/63/999.p/255",
        ] {
            assert_eq!(
                TilePath::parse(path).map(|t| t.to_string()).as_deref(),
                Some(path)
            );
        }
        for path in [
            "tile/0/1",
            "tile/01/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/64/000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "checkpoint",
        ] {
            assert_eq!(TilePath::parse(path), None, "{path}");
        }
    }
}
