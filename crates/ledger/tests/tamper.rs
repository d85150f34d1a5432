//! Tamper evidence: any byte flipped anywhere in the stored log (checkpoint,
//! hash tiles, entry bundles, older partial tiles) is caught by the auditor.

mod common;

use std::path::PathBuf;

use ledger::audit::verify_log;
use ledger::tiles::LogDir;
use rand::{Rng, SeedableRng};

#[test]
fn the_auditor_catches_every_one_of_1000_random_byte_flips() {
    let run = common::full_run(4, 3, 3);
    let policy = run.federation.policy().unwrap();
    let dir = run.log_dir();
    assert!(verify_log(&policy, &dir).is_clean());

    let files: Vec<(PathBuf, Vec<u8>)> = LogDir::new(&dir)
        .list_files()
        .unwrap()
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(
        files.len() >= 5,
        "checkpoint, tiles and bundles, old partials included"
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    for trial in 0..1000 {
        // A byte position uniformly over the whole stored log.
        let mut at = rng.random_range(0..total);
        let (path, original) = files
            .iter()
            .find(|(_, bytes)| {
                if at < bytes.len() {
                    true
                } else {
                    at -= bytes.len();
                    false
                }
            })
            .unwrap();
        let mut flipped = original.clone();
        flipped[at] ^= rng.random_range(1..=255u8);
        std::fs::write(path, &flipped).unwrap();
        let report = verify_log(&policy, &dir);
        assert!(
            !report.is_clean(),
            "trial {trial}: flip at byte {at} of {} went unnoticed",
            path.display()
        );
        std::fs::write(path, original).unwrap();
    }
    assert!(verify_log(&policy, &dir).is_clean());
}
