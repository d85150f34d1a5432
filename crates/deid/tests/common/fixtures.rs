//! Where the ultrasound fixtures are (shared by the deid and imaging tests).

use std::path::PathBuf;

/// `../shared/data/dicom-us` beside the repository (or `$COHORT_SHARED_DATA/dicom-us`).
pub fn fixtures_dir() -> PathBuf {
    let base = std::env::var_os("COHORT_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let dir = base.join("dicom-us");
    assert!(
        dir.join("manifest.csv").exists(),
        "ultrasound fixtures not found at {} (the shared data folder must sit beside the \
         repository as ../shared, or set COHORT_SHARED_DATA)",
        dir.display()
    );
    dir
}
