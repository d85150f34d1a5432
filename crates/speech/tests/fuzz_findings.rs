//! Inputs the `audio_decode` fuzz target found (`fuzz/`), kept as regression tests: each must be
//! refused with an error, without allocating what a lying length declares. This test binary
//! counts its allocations, so an allocation of gigabytes fails the test even where the machine
//! could have served it.

#[path = "../../deid/tests/common/fuzz_regressions.rs"]
mod fuzz_regressions;

/// Far above what any of these files (under a kilobyte each) needs decoded.
const CEILING: usize = 64 << 20;

#[test]
fn audio_the_fuzzer_found_is_refused_without_a_large_allocation() {
    let found = fuzz_regressions::findings(env!("CARGO_MANIFEST_DIR"));
    assert!(found.len() >= 5, "{} findings", found.len());
    for (name, bytes) in found {
        fuzz_regressions::reset();
        let refused = speech::audio::decode_16k(&bytes);
        let largest = fuzz_regressions::largest();
        assert!(refused.is_err(), "{name} was decoded");
        assert!(
            largest < CEILING,
            "{name}: allocated {largest} bytes at once"
        );
    }
}
