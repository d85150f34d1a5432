//! Checks by readers that share no code with this crate: pydicom and dcmtk
//! open every output, find no identifying attribute with its original value
//! and no original UID, and tesseract reads no burned-in identifier in any
//! output frame. dcmtk also makes inputs in every transfer syntax it can
//! write, and each comes out clean and readable.
//!
//! Needs `dcmdump`, `dcmconv`, `dcmcjpeg`, `dcmcrle`, `dcmcjpls` (dcmtk),
//! `tesseract`, and a Python (`$COHORT_PYTHON`, default `python3`) with
//! pydicom, numpy, pillow, pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg.
//! Without them the tests say so and pass, unless `COHORT_REQUIRE_TOOLS=1`
//! (CI), where they fail.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fixtures, fixtures_dir, key};
use deid::{Deidentifier, Options};

fn python() -> String {
    std::env::var("COHORT_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the tools are there; panics when they must be.
fn tools_present(commands: &[&str], python_modules: &[&str]) -> bool {
    let missing: Vec<String> = commands
        .iter()
        .filter(|c| {
            Command::new("which")
                .arg(c)
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|c| c.to_string())
        .chain(python_modules.iter().filter_map(|m| {
            let ok = Command::new(python())
                .args(["-c", &format!("import {m}")])
                .output()
                .is_ok_and(|o| o.status.success());
            (!ok).then(|| format!("python module {m}"))
        }))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("missing external tools: {}", missing.join(", "));
    assert!(
        std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{message}"
    );
    eprintln!("skipped: {message}");
    false
}

fn deidentify_into(deid: &Deidentifier, input: &Path, output: &Path) -> deid::Result<()> {
    let bytes = std::fs::read(input).expect("input readable");
    let out = deid.deidentify(&bytes)?;
    std::fs::write(output, out.bytes).expect("output writable");
    Ok(())
}

#[test]
fn pydicom_dcmtk_and_tesseract_find_no_identifier_in_any_output() {
    if !tools_present(
        &["dcmdump", "tesseract"],
        &["pydicom", "numpy", "PIL", "pylibjpeg"],
    ) {
        return;
    }
    let deid = Deidentifier::new(key(), Options::training()).expect("valid");
    let out = tempfile::tempdir().expect("temp dir");
    for (name, bytes) in fixtures() {
        let result = deid
            .deidentify(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::write(out.path().join(&name), result.bytes).expect("write");
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = Command::new(python())
        .arg(manifest.join("tests/tools/independent_check.py"))
        .arg(manifest.join("data/annex-e.csv"))
        .arg(fixtures_dir().join("manifest.csv"))
        .arg(fixtures_dir())
        .arg(out.path())
        .output()
        .expect("python runs");
    let report = String::from_utf8_lossy(&check.stdout);
    println!("{report}");
    assert!(
        check.status.success(),
        "independent check failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn every_transfer_syntax_dcmtk_writes_comes_out_clean_and_readable() {
    if !tools_present(
        &["dcmdump", "dcmconv", "dcmcjpeg", "dcmcrle", "dcmcjpls"],
        &[],
    ) {
        return;
    }
    let deid = Deidentifier::new(key(), Options::training()).expect("valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let variants: [(&str, &str, &[&str]); 7] = [
        ("implicit", "dcmconv", &["+ti"]),
        ("deflated", "dcmconv", &["+td"]),
        ("bigendian", "dcmconv", &["+tb"]),
        ("jpeg-baseline", "dcmcjpeg", &["+eb"]),
        ("jpeg-lossless", "dcmcjpeg", &["+e1"]),
        ("rle", "dcmcrle", &[]),
        ("jpeg-ls", "dcmcjpls", &["+el"]),
    ];
    for source in ["GREYSCALE_IMAGE.dcm", "US1_UNCR.dcm", "OBXXXX1A_2frame.dcm"] {
        for (label, tool, args) in variants {
            let input = dir.path().join(format!("{label}-{source}"));
            let made = Command::new(tool)
                .args(args)
                .arg(fixtures_dir().join(source))
                .arg(&input)
                .output()
                .expect("dcmtk runs");
            if !made.status.success() {
                // e.g. JPEG baseline of a palette image: dcmtk refuses, nothing to test
                continue;
            }
            let output = dir.path().join(format!("out-{label}-{source}"));
            match deidentify_into(&deid, &input, &output) {
                Ok(()) => {
                    let dump = Command::new("dcmdump")
                        .arg("-q")
                        .arg(&output)
                        .output()
                        .expect("dcmdump");
                    assert!(
                        dump.status.success() && dump.stderr.is_empty(),
                        "{label} {source}: {}",
                        String::from_utf8_lossy(&dump.stderr)
                    );
                    let back =
                        deid::parse(&std::fs::read(&output).expect("read")).expect("reparse");
                    assert_ne!(back.meta().transfer_syntax(), "1.2.840.10008.1.2.2");
                }
                Err(e) => panic!("{label} {source}: {e}"),
            }
        }
    }
}
