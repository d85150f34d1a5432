//! The log on disk, laid out as C2SP tlog-tiles: hash tiles, entry bundles
//! and the checkpoint, as plain files.

mod bundle;
mod path;
mod store;
mod tree;

pub use bundle::MAX_ENTRY_SIZE;
pub(crate) use bundle::split_entries;
pub use path::{TILE_HEIGHT, TILE_WIDTH, TileKind, TilePath};
pub use store::{CHECKPOINT_FILE, LogDir, LogSource, StoreError};
pub use tree::TileReader;
pub(crate) use tree::{TiledTree, perfect_root, root_from_partials, tile_bytes};
