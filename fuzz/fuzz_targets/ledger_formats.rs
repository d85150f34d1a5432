//! Any bytes as the ledger's outside formats, as an auditor's verifier and a hospital's witness
//! read them: signed notes and checkpoints, signature lines, tile paths, signed entries and statements, add-checkpoint requests and proof files (which are then
//! verified). Errors are expected; a panic is a finding.
#![no_main]

use ledger::checkpoint::Checkpoint;
use ledger::entry::SignedEntry;
use ledger::note::{Note, NoteSignature};
use ledger::proof_file::ProofFile;
use ledger::tiles::TilePath;
use ledger::witness::AddCheckpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        let _ = Checkpoint::from_text(note.text());
        let again = Note::parse(&note.to_bytes()).expect("a note's own bytes parse");
        assert_eq!(again.text(), note.text());
    }
    let _ = AddCheckpoint::parse(data);
    let _ = SignedEntry::from_bytes(data);
    let _ = ledger::entry::Statement::decode(data);
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            let _ = NoteSignature::parse_line(line);
            let _ = TilePath::parse(line);
        }
        if let Ok(proof) = ProofFile::parse(text) {
            let _ = proof.verify();
        }
    }
});
