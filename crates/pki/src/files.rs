//! Reading and writing PEM files.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::Error;

/// How a file is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// World-readable (certificates), replacing any existing file.
    Public,
    /// Owner-only 0600 (private keys), replacing any existing file.
    Private,
    /// Owner-only 0600, failing with `AlreadyExists` if the file exists.
    PrivateNew,
}

/// Create `dir` and its parents if missing.
pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Read a whole text file.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Write `contents` to `path`; see [`Mode`].
///
/// For `Mode::PrivateNew` an existing file is [`Error::KeyExists`].
pub(crate) fn write(path: &Path, contents: &str, mode: Mode) -> Result<(), Error> {
    write_inner(path, contents, mode).map_err(|source| {
        if mode == Mode::PrivateNew && source.kind() == io::ErrorKind::AlreadyExists {
            Error::KeyExists {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn write_inner(path: &Path, contents: &str, mode: Mode) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if mode == Mode::PrivateNew {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    if mode != Mode::Public {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // `mode` applies only to newly created files: tighten an existing one too.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())?;
        return file.sync_all();
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}
