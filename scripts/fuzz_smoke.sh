#!/usr/bin/env bash
# Fuzz smoke run (called by scripts/test.sh): builds the cargo-fuzz targets with the nightly
# toolchain and runs every target of fuzz/Cargo.toml on its seed corpus (fuzz/seed.sh) plus the regression inputs, then a
# fixed-seed batch of mutations, so the run is the same every time. Long runs: see
# docs/RELIABILITY.md. Skipped, with a message, where no nightly toolchain is installed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz smoke skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked -q cargo-fuzz@0.13.2
./seed.sh >/dev/null
cp ../crates/deid/tests/data/fuzz/* corpus/deid_dicom/
cp ../crates/speech/tests/data/fuzz/* corpus/audio_decode/
cp ../crates/imaging/tests/data/fuzz/* corpus/cstore_receiver/
export CARGO_TARGET_DIR="${COHORT_FUZZ_TARGET:-$PWD/target}"  # not the workspace's: other flags, other toolchain
for target in $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v cohort-fuzz); do
    cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
        -seed=1 -runs=3000 -max_len=65536 -rss_limit_mb=2048 -timeout=20 2>&1 | tail -n 2
done
