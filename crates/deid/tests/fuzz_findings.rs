//! Inputs the fuzzer found (`fuzz/`, `cargo +nightly fuzz run deid_dicom`), kept as regression
//! tests: each must get an answer — a result or an error — without a panic and without
//! allocating what a lying length declares. This test binary counts its allocations, so an
//! allocation of gigabytes fails the test even where the machine could have served it.

mod common;

use deid::{Deidentifier, Options, ProfileOption};

#[path = "common/fuzz_regressions.rs"]
mod fuzz_regressions;

#[test]
fn fuzz_findings_get_an_answer_without_a_large_allocation() {
    let found = fuzz_regressions::findings(env!("CARGO_MANIFEST_DIR"));
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
            fuzz_regressions::reset();
            let _ = deid.deidentify(&bytes);
            let largest = fuzz_regressions::largest();
            // A few times the file (output buffers, decoded frames), never a declared length.
            assert!(
                largest <= 64 * bytes.len() + (1 << 20),
                "{name}: an allocation of {largest} bytes for a {} byte file",
                bytes.len()
            );
        }
    }
}
