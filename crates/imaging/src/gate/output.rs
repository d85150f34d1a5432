//! Writing the export: each file goes to a temporary name beside its place
//! and is renamed only once everything of its instance is written, so a
//! failure leaves nothing half done.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `files` (name, bytes) into `dir` all or none: on error, the
/// temporary files and those already renamed are removed, and `dir` too
/// (with its parent) if that leaves it empty.
pub fn write_all_or_none(dir: &Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporaries: Vec<(PathBuf, PathBuf)> = files
        .iter()
        .map(|(name, _)| (dir.join(format!(".{name}.partial")), dir.join(name)))
        .collect();
    let mut renamed = Vec::new();
    let result = (|| {
        for ((temporary, _), (_, bytes)) in temporaries.iter().zip(files) {
            let mut file = std::fs::File::create(temporary)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        for (temporary, target) in &temporaries {
            std::fs::rename(temporary, target)?;
            renamed.push(target.clone());
        }
        Ok(())
    })();
    if result.is_err() {
        for (temporary, _) in &temporaries {
            let _ = std::fs::remove_file(temporary);
        }
        for target in &renamed {
            let _ = std::fs::remove_file(target);
        }
        // only succeeds on empty folders
        let _ = std::fs::remove_dir(dir);
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_pair_leaves_nothing_behind() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("study/series");
        // the second target is a folder, so its rename fails after the first succeeded
        std::fs::create_dir_all(dir.join("b.png/blocker")).expect("mkdir");
        let failed = write_all_or_none(&dir, &[("a.dcm", b"dicom"), ("b.png", b"png")]);
        assert!(failed.is_err());
        assert!(!dir.join("a.dcm").exists());
        assert!(!dir.join(".a.dcm.partial").exists());
        assert!(!dir.join(".b.png.partial").exists());

        let ok = root.path().join("other");
        write_all_or_none(&ok, &[("a.dcm", b"dicom"), ("a.png", b"png")]).expect("written");
        assert_eq!(std::fs::read(ok.join("a.png")).expect("read"), b"png");
        let names: Vec<_> = std::fs::read_dir(&ok)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
