//! Inputs the fuzzer found (`fuzz/`, `cargo +nightly fuzz run deid_dicom`), kept as regression
//! tests: each must get an answer — a result or an error — without a panic and without
//! allocating what a lying length declares. This test binary counts its allocations, so an
//! allocation of gigabytes fails the test even where the machine could have served it.

mod common;

use deid::{Deidentifier, Options, ProfileOption};

#[path = "common/largest_allocation.rs"]
mod largest_allocation;

/// The findings, by file name.
fn findings() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/data/fuzz")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn fuzz_findings_get_an_answer_without_a_large_allocation() {
    let found = findings();
    assert!(!found.is_empty());
    let deidentifiers = [
        Deidentifier::new(common::key(), Options::training()).unwrap(),
        Deidentifier::new(
            common::key(),
            Options::training().without(ProfileOption::CleanPixelData),
        )
        .unwrap(),
    ];
    for (name, bytes) in found {
        for deid in &deidentifiers {
            largest_allocation::reset();
            let _ = deid.deidentify(&bytes);
            let largest = largest_allocation::largest();
            // A few times the file (output buffers, decoded frames), never a declared length.
            assert!(
                largest <= 64 * bytes.len() + (1 << 20),
                "{name}: an allocation of {largest} bytes for a {} byte file",
                bytes.len()
            );
        }
    }
}
