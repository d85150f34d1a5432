//! Where a log's files live: a [`LogSource`] to read them (a directory here; a
//! network fetcher elsewhere), and [`LogDir`], the directory a log or a mirror
//! is written to. The directory is exactly the C2SP tlog-tiles resource tree,
//! so copying it is mirroring it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::path::TilePath;

/// Name of the published checkpoint file in a log directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";

/// Errors reading or writing a log's files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file that the tree size requires is absent.
    #[error("{0} is missing")]
    Missing(String),
    /// A file is present but malformed.
    #[error("{path} is malformed: {reason}")]
    Corrupt {
        /// The file concerned.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A position beyond the tree was asked for.
    #[error("position {index} is out of range for tree size {size}")]
    OutOfRange {
        /// The position asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// An entry is too large for a bundle's 16-bit length prefix.
    #[error("entry of {0} bytes exceeds the 65535-byte limit of entry bundles")]
    EntryTooLarge(usize),
}

/// Read access to a log's resources.
pub trait LogSource {
    /// The bytes of a tile or entry bundle, exactly as published.
    fn read_tile(&self, tile: &TilePath) -> Result<Vec<u8>, StoreError>;
    /// The published checkpoint (a signed note).
    fn read_checkpoint(&self) -> Result<Vec<u8>, StoreError>;
}

/// A log directory on the local file system.
#[derive(Clone, Debug)]
pub struct LogDir {
    root: PathBuf,
}

impl LogDir {
    /// A log directory rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a published checkpoint exists.
    pub fn has_checkpoint(&self) -> bool {
        self.root.join(CHECKPOINT_FILE).is_file()
    }

    /// Write a tile or bundle (atomically: readers never see half a file).
    pub fn write_tile(&self, tile: &TilePath, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_file(&tile.to_string(), bytes)
    }

    /// Replace the published checkpoint (atomically).
    pub fn write_checkpoint(&self, note: &[u8]) -> Result<(), StoreError> {
        self.write_file(CHECKPOINT_FILE, note)
    }

    /// Read any file of the directory, by relative path.
    pub fn read_file(&self, relative: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.root.join(relative);
        fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::Missing(relative.to_string())
            } else {
                StoreError::Io { path, source }
            }
        })
    }

    /// Write any file of the directory, by relative path, atomically.
    pub fn write_file(&self, relative: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.root.join(relative);
        let io_err = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err)?;
        }
        let tmp = path.with_extension("tmp-write");
        let mut file = fs::File::create(&tmp).map_err(io_err)?;
        file.write_all(bytes).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        fs::rename(&tmp, &path).map_err(io_err)
    }

    /// Remove a file of the directory if it exists.
    pub fn remove_file(&self, relative: &str) -> Result<(), StoreError> {
        let path = self.root.join(relative);
        match fs::remove_file(&path) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::Io { path, source })
            }
            _ => Ok(()),
        }
    }

    /// Every regular file under the directory, as sorted relative paths with
    /// `/` separators.
    pub fn list_files(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            let io_err = |source| StoreError::Io {
                path: dir.clone(),
                source,
            };
            for item in fs::read_dir(&dir).map_err(io_err)? {
                let item = item.map_err(io_err)?;
                let path = item.path();
                if item.file_type().map_err(io_err)?.is_dir() {
                    pending.push(path);
                } else if let Ok(relative) = path.strip_prefix(&self.root) {
                    let parts: Vec<String> = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    out.push(parts.join("/"));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl LogSource for LogDir {
    fn read_tile(&self, tile: &TilePath) -> Result<Vec<u8>, StoreError> {
        self.read_file(&tile.to_string())
    }

    fn read_checkpoint(&self) -> Result<Vec<u8>, StoreError> {
        self.read_file(CHECKPOINT_FILE)
    }
}
