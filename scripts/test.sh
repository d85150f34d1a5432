#!/usr/bin/env bash
# The test command: makes sure what the tests need is installed, then runs the
# whole workspace's tests in the debug profile (dependencies are optimised,
# see [profile.dev.package."*"] in Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

# A target directory outside the clone, reused between runs (CI and local).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cohort-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast "$@"
fi
