//! The edge-case policy of tests/vectors/SOURCE.md, case by case, on proofs
//! given in the vector JSON format (as `cohort ledger check-proof` reads them).

use ledger::hash::Hash;
use ledger::proof_file::ProofFile;

fn holds(json: &str) -> bool {
    ProofFile::parse(json).is_ok_and(|p| p.verify().is_ok())
}

const LEAF: &str = "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=";
const ROOT8: &str = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";
const DONT_CARE_1: &str = "ZG9uJ3QgY2FyZSAx";
const DONT_CARE_2: &str = "ZG9uJ3QgY2FyZSAy";

#[test]
fn inclusion_in_a_single_entry_tree_needs_an_empty_proof() {
    let ok =
        format!(r#"{{"leafIdx":0,"treeSize":1,"root":"{LEAF}","leafHash":"{LEAF}","proof":null}}"#);
    assert!(holds(&ok));
    let extra = format!(
        r#"{{"leafIdx":0,"treeSize":1,"root":"{LEAF}","leafHash":"{LEAF}","proof":["{LEAF}"]}}"#
    );
    assert!(!holds(&extra));
}

#[test]
fn an_empty_leaf_hash_is_an_error_even_against_an_empty_root() {
    assert!(!holds(
        r#"{"leafIdx":0,"treeSize":1,"root":"","leafHash":"","proof":[]}"#
    ));
    assert!(!holds(
        r#"{"leafIdx":0,"treeSize":1,"root":null,"leafHash":null}"#
    ));
}

#[test]
fn inclusion_beyond_the_tree_size_is_an_error() {
    for (idx, size) in [(0u64, 0u64), (1, 1), (8, 8), (u64::MAX, 1)] {
        let json = format!(
            r#"{{"leafIdx":{idx},"treeSize":{size},"root":"{LEAF}","leafHash":"{LEAF}","proof":[]}}"#
        );
        assert!(!holds(&json), "{idx} of {size}");
    }
}

#[test]
fn any_consistency_proof_from_size_zero_is_an_error() {
    let empty = Hash::empty_root().to_base64();
    for size2 in [0u64, 1, 8] {
        let json = format!(
            r#"{{"size1":0,"size2":{size2},"root1":"{empty}","root2":"{empty}","proof":[]}}"#
        );
        assert!(!holds(&json), "0 -> {size2}");
    }
}

#[test]
fn equal_sizes_need_an_empty_proof_and_equal_roots_of_any_length() {
    let same = format!(
        r#"{{"size1":5,"size2":5,"root1":"{DONT_CARE_1}","root2":"{DONT_CARE_1}","proof":null}}"#
    );
    assert!(holds(&same));
    let different = format!(
        r#"{{"size1":5,"size2":5,"root1":"{DONT_CARE_1}","root2":"{DONT_CARE_2}","proof":null}}"#
    );
    assert!(!holds(&different));
    let with_proof = format!(
        r#"{{"size1":5,"size2":5,"root1":"{ROOT8}","root2":"{ROOT8}","proof":["{LEAF}"]}}"#
    );
    assert!(!holds(&with_proof));
}

#[test]
fn a_shrinking_tree_or_an_empty_proof_between_different_sizes_is_an_error() {
    let shrink =
        format!(r#"{{"size1":8,"size2":7,"root1":"{ROOT8}","root2":"{ROOT8}","proof":[]}}"#);
    assert!(!holds(&shrink));
    let empty = format!(r#"{{"size1":1,"size2":8,"root1":"{LEAF}","root2":"{ROOT8}","proof":[]}}"#);
    assert!(!holds(&empty));
}

#[test]
fn invalid_subtrees_are_errors() {
    for (start, end) in [(1u64, 3u64), (3, 5), (4, 2), (6, 10)] {
        let json = format!(
            r#"{{"leafIdx":{start},"start":{start},"end":{end},"root":"{LEAF}","leafHash":"{LEAF}","proof":[]}}"#
        );
        assert!(!holds(&json), "[{start}, {end})");
    }
    // [start, start) and [0, n) are always valid subtrees.
    let single = format!(
        r#"{{"leafIdx":7,"start":7,"end":8,"root":"{LEAF}","leafHash":"{LEAF}","proof":[]}}"#
    );
    assert!(holds(&single));
}

#[test]
fn an_empty_subtree_is_consistent_only_with_the_empty_hash_and_no_proof() {
    let empty = Hash::empty_root().to_base64();
    let ok = format!(
        r#"{{"start":4,"end":4,"size":8,"root1":"{empty}","root2":"{DONT_CARE_1}","proof":[]}}"#
    );
    assert!(holds(&ok));
    let wrong_root =
        format!(r#"{{"start":4,"end":4,"size":8,"root1":"{LEAF}","root2":"{ROOT8}","proof":[]}}"#);
    assert!(!holds(&wrong_root));
    let beyond =
        format!(r#"{{"start":4,"end":4,"size":3,"root1":"{empty}","root2":"{ROOT8}","proof":[]}}"#);
    assert!(!holds(&beyond));
}

#[test]
fn the_whole_tree_as_subtree_needs_equal_roots_and_no_proof() {
    let ok =
        format!(r#"{{"start":0,"end":8,"size":8,"root1":"{ROOT8}","root2":"{ROOT8}","proof":[]}}"#);
    assert!(holds(&ok));
    let with_proof = format!(
        r#"{{"start":0,"end":8,"size":8,"root1":"{ROOT8}","root2":"{ROOT8}","proof":["{LEAF}"]}}"#
    );
    assert!(!holds(&with_proof));
}

#[test]
fn malformed_files_are_rejected_not_accepted() {
    for json in [
        "not json",
        "[]",
        r#"{"desc":"nothing"}"#,
        r#"{"leafIdx":-1,"treeSize":1}"#,
        r#"{"leafIdx":0,"treeSize":1,"leafHash":"***"}"#,
    ] {
        assert!(!holds(json), "{json}");
    }
}
