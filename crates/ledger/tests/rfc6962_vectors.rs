//! The transparency-dev/merkle conformance vectors (see tests/vectors/SOURCE.md):
//! every file's verification outcome must equal its `wantErr`.

mod common;

use std::fs;
use std::path::Path;

use ledger::proof_file::ProofFile;

/// Run every vector of `folder`, returning (files checked, failures).
fn run_folder(folder: &str) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut failures = Vec::new();
    let root = common::vectors_dir().join(folder);
    let mut files = Vec::new();
    collect_json(&root, &mut files);
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want_err = json["wantErr"].as_bool().unwrap();
        let got_err = match ProofFile::parse(&text) {
            Ok(proof) => proof.verify().is_err(),
            Err(_) => true,
        };
        checked += 1;
        if got_err != want_err {
            failures.push(format!(
                "{}: wantErr={want_err} got error={got_err}",
                file.display()
            ));
        }
    }
    (checked, failures)
}

fn collect_json(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn assert_folder(folder: &str, expected_files: usize) {
    let (checked, failures) = run_folder(folder);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, expected_files, "files found in {folder}");
}

#[test]
fn every_inclusion_vector_gives_the_expected_outcome() {
    assert_folder("inclusion", 82);
}

#[test]
fn every_consistency_vector_gives_the_expected_outcome() {
    assert_folder("consistency", 84);
}

#[test]
fn every_subtree_inclusion_vector_gives_the_expected_outcome() {
    assert_folder("subtreeinclusion", 164);
}

#[test]
fn every_subtree_consistency_vector_gives_the_expected_outcome() {
    assert_folder("subtreeconsistency", 88);
}
