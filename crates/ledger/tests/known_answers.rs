//! Known answers (tests/vectors/known-answers.json): RFC 6962 hashing, the
//! certificate-transparency reference tree with its roots, audit paths and
//! consistency proofs, and the C2SP signed-note example.

mod common;

use common::MemoryTree;
use ledger::hash::{Hash, leaf_hash, node_hash};
use ledger::merkle::{
    consistency_proof, inclusion_proof, range_root, verify_consistency, verify_inclusion,
};
use ledger::note::{Note, NoteKey};
use serde_json::Value;

fn answers() -> Value {
    let text = std::fs::read_to_string(common::vectors_dir().join("known-answers.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex_hash(v: &Value) -> Hash {
    Hash::from_hex(v["hex"].as_str().unwrap()).unwrap()
}

fn reference_tree() -> (Vec<Vec<u8>>, Value) {
    let tree = answers()["ct_reference_tree"].clone();
    let inputs = tree["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
        .collect();
    (inputs, tree)
}

#[test]
fn hashing_matches_rfc6962_known_answers() {
    for case in answers()["hash_known_answers"]["cases"].as_array().unwrap() {
        let want = Hash::from_hex(case["want_hex"].as_str().unwrap()).unwrap();
        let got = match case["op"].as_str().unwrap() {
            "empty_root" => Hash::empty_root(),
            "hash_leaf" => leaf_hash(&hex::decode(case["input_hex"].as_str().unwrap()).unwrap()),
            "hash_children" => node_hash(
                &hex::decode(case["left_hex"].as_str().unwrap()).unwrap(),
                &hex::decode(case["right_hex"].as_str().unwrap()).unwrap(),
            ),
            other => panic!("unknown op {other}"),
        };
        assert_eq!(got, want, "{}", case["desc"]);
        assert_eq!(got.to_base64(), case["want_base64"].as_str().unwrap());
    }
}

#[test]
fn reference_tree_roots_match_for_every_size() {
    let (inputs, tree) = reference_tree();
    assert_eq!(hex_hash(&tree["empty_tree_root"]), Hash::empty_root());
    for root in tree["roots_by_size"].as_array().unwrap() {
        let size = root["size"].as_u64().unwrap() as usize;
        let memory = MemoryTree::new(&inputs[..size]);
        assert_eq!(
            range_root(&memory, 0, size as u64).unwrap(),
            hex_hash(root),
            "size {size}"
        );
    }
}

#[test]
fn reference_audit_paths_are_built_and_verified() {
    let (inputs, tree) = reference_tree();
    let memory = MemoryTree::new(&inputs);
    for case in tree["inclusion_paths"]["cases"].as_array().unwrap() {
        let Some(index) = case["leaf_index"].as_u64() else {
            continue; // the C++ file's invalid leaf 0
        };
        let size = case["tree_size"].as_u64().unwrap();
        let want: Vec<Hash> = case["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex_hash)
            .collect();
        let sized = MemoryTree::new(&inputs[..size as usize]);
        assert_eq!(
            inclusion_proof(&sized, index, size).unwrap(),
            want,
            "leaf {index} of {size}"
        );
        let root = range_root(&sized, 0, size).unwrap();
        let leaf = leaf_hash(&inputs[index as usize]);
        verify_inclusion(index, size, &leaf.0, &want, &root.0).unwrap();
    }
    // Every leaf of every size, built and checked against the tree.
    for size in 1..=8u64 {
        let sized = MemoryTree::new(&inputs[..size as usize]);
        let root = range_root(&sized, 0, size).unwrap();
        for index in 0..size {
            let proof = inclusion_proof(&sized, index, size).unwrap();
            let leaf = leaf_hash(&inputs[index as usize]);
            verify_inclusion(index, size, &leaf.0, &proof, &root.0).unwrap();
        }
    }
    drop(memory);
}

#[test]
fn reference_consistency_proofs_are_built_and_verified() {
    let (inputs, tree) = reference_tree();
    for case in tree["consistency_proofs"]["cases"].as_array().unwrap() {
        let size1 = case["size1"].as_u64().unwrap();
        let size2 = case["size2"].as_u64().unwrap();
        let want: Vec<Hash> = case["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex_hash)
            .collect();
        let tree2 = MemoryTree::new(&inputs[..size2 as usize]);
        assert_eq!(
            consistency_proof(&tree2, size1, size2).unwrap(),
            want,
            "{size1} -> {size2}"
        );
        let root1 = range_root(&tree2, 0, size1).unwrap();
        let root2 = range_root(&tree2, 0, size2).unwrap();
        verify_consistency(size1, size2, &want, &root1.0, &root2.0).unwrap();
    }
    for size2 in 1..=8u64 {
        let tree2 = MemoryTree::new(&inputs[..size2 as usize]);
        for size1 in 1..=size2 {
            let proof = consistency_proof(&tree2, size1, size2).unwrap();
            let root1 = range_root(&tree2, 0, size1).unwrap();
            let root2 = range_root(&tree2, 0, size2).unwrap();
            verify_consistency(size1, size2, &proof, &root1.0, &root2.0).unwrap();
        }
    }
}

#[test]
fn signed_note_example_verifies_with_its_verifier_key() {
    let example = answers()["signed_note_example"].clone();
    let key = NoteKey::from_vkey(example["verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(
        format!("{:08x}", key.key_id()),
        example["key_id_hex"].as_str().unwrap()
    );
    assert_eq!(key.to_vkey(), example["verifier_key"].as_str().unwrap());
    let note = Note::parse(example["signed_note"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(note.text(), example["note_text"].as_str().unwrap());
    assert_eq!(note.signatures().len(), 1);
    assert!(key.verify(note.text(), &note.signatures()[0]).is_some());
    assert_eq!(
        note.to_bytes(),
        example["signed_note"].as_str().unwrap().as_bytes()
    );
    let mut altered = note.text().to_string();
    altered.insert(0, 'X');
    assert!(key.verify(&altered, &note.signatures()[0]).is_none());
}
