//! Inputs the `audio_decode` fuzz target found (`fuzz/`), kept as regression tests: each must be
//! refused with an error, without allocating what a lying length declares. This test binary
//! counts its allocations, so an allocation of gigabytes fails the test even where the machine
//! could have served it.

#[path = "../../deid/tests/common/largest_allocation.rs"]
mod largest_allocation;

/// Far above what any of these files (under a kilobyte each) needs decoded.
const CEILING: usize = 64 << 20;

#[test]
fn audio_the_fuzzer_found_is_refused_without_a_large_allocation() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    assert!(found.len() >= 5, "{found:?}");
    for path in found {
        let bytes = std::fs::read(&path).unwrap();
        largest_allocation::reset();
        let refused = speech::audio::decode_16k(&bytes);
        let largest = largest_allocation::largest();
        assert!(refused.is_err(), "{} was decoded", path.display());
        assert!(
            largest < CEILING,
            "{}: allocated {largest} bytes at once",
            path.display()
        );
    }
}
