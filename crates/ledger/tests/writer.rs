//! The sequencer: what it accepts, how it publishes, and how it restarts.

mod common;

use ledger::entry::{Epsilon, SignedEntry, Statement};
use ledger::hash::Hash;
use ledger::proof_file::ProofFile;
use ledger::registry::AuthError;
use ledger::synthetic::{Federation, derived_key};
use ledger::writer::{LogError, LogWriter};

fn started() -> (Federation, tempfile::TempDir, LogWriter) {
    let federation = Federation::new(3, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let writer = federation.create_log(&dir.path().join("log")).unwrap();
    (federation, dir, writer)
}

#[test]
fn append_refuses_an_entry_with_a_bad_signature() {
    let (federation, _dir, mut writer) = started();
    let plan = federation.plan("p", 1, Epsilon::from_micro(1)).unwrap();
    let forged = SignedEntry::sign(
        &federation.origin,
        federation.coordinator.0.clone(),
        Statement::PlanRegistered(plan),
        &derived_key("impostor"),
    )
    .unwrap();
    let err = writer.append(&forged).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Unauthorised {
                position: 1,
                source: AuthError::BadSignature(_)
            }
        ),
        "{err}"
    );
    assert_eq!(writer.size(), 1);
}

#[test]
fn append_refuses_a_statement_outside_the_authors_role() {
    let (federation, _dir, mut writer) = started();
    let plan = federation.plan("p", 1, Epsilon::from_micro(1)).unwrap();
    let by_hospital = federation
        .by_hospital(0, Statement::PlanRegistered(plan))
        .unwrap();
    let err = writer.append(&by_hospital).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Unauthorised {
                source: AuthError::RoleNotAllowed { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_batch_is_appended_all_or_nothing() {
    let (federation, _dir, mut writer) = started();
    let plan = federation.plan("p", 1, Epsilon::from_micro(1)).unwrap();
    let mut batch = federation.plan_entries(&plan).unwrap();
    let bad = SignedEntry::sign(
        &federation.origin,
        federation.hospitals[2].0.clone(),
        batch[3].statement().clone(),
        &derived_key("impostor"),
    )
    .unwrap();
    batch[3] = bad;
    let err = writer.append_batch(&batch).unwrap_err();
    assert!(
        matches!(err, LogError::Unauthorised { position: 4, .. }),
        "{err}"
    );
    assert_eq!(writer.size(), 1);
}

#[test]
fn an_entry_signed_for_another_log_is_refused() {
    let (federation, _dir, mut writer) = started();
    let plan = federation.plan("p", 1, Epsilon::from_micro(1)).unwrap();
    let elsewhere = SignedEntry::sign(
        &"other.example/log".parse().unwrap(),
        federation.coordinator.0.clone(),
        Statement::PlanRegistered(plan),
        &federation.coordinator.1,
    )
    .unwrap();
    assert!(writer.append(&elsewhere).is_err());
}

#[test]
fn publishing_needs_a_quorum_of_witness_cosignatures() {
    let (federation, dir, mut writer) = started();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    writer.checkpoint().unwrap();
    let request = writer.add_checkpoint_request(0).unwrap();
    let one = witnesses[0].cosign(&request, writer.dir(), 1).unwrap();
    writer.add_cosignature(one).unwrap();
    assert!(matches!(
        writer.publish(),
        Err(LogError::NoQuorum { have: 1, need: 2 })
    ));
    assert!(writer.published().is_none());
    let two = witnesses[1].cosign(&request, writer.dir(), 1).unwrap();
    assert_eq!(
        writer.add_cosignature(two).unwrap(),
        federation.hospitals[1].0
    );
    let published = writer.publish().unwrap();
    assert_eq!(published.checkpoint().size, 1);
    assert!(writer.dir().has_checkpoint());
}

#[test]
fn a_cosignature_by_a_key_outside_the_witness_policy_is_refused() {
    let (federation, dir, mut writer) = started();
    writer.checkpoint().unwrap();
    let request = writer.add_checkpoint_request(0).unwrap();
    let mut stranger = ledger::witness::Witness::open(
        dir.path().join("stranger"),
        federation.hospitals[0].0.clone(),
        derived_key("stranger"),
        federation.origin.clone(),
        federation.policy().unwrap().log_key,
    )
    .unwrap();
    let line = stranger.cosign(&request, writer.dir(), 1).unwrap();
    assert!(matches!(
        writer.add_cosignature(line),
        Err(LogError::BadCosignature(_))
    ));
}

#[test]
fn a_reopened_log_continues_where_it_stopped() {
    let (federation, dir, mut writer) = started();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    let plan = federation.plan("p", 2, Epsilon::from_micro(10)).unwrap();
    writer
        .append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    federation.publish(&mut writer, &mut witnesses, 1).unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 1, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    let staged = writer.checkpoint().unwrap();
    drop(writer);

    // Reopened with a staged checkpoint: the same tree, the same signature.
    let log_dir = dir.path().join("log");
    let mut writer = LogWriter::open(
        &log_dir,
        federation.origin.clone(),
        federation.log_key.clone(),
    )
    .unwrap();
    assert_eq!(writer.size(), staged.checkpoint().size);
    assert_eq!(writer.staged(), Some(&staged));
    assert_eq!(writer.published().unwrap().checkpoint().size, 5);
    for w in witnesses.iter_mut() {
        let request = writer.add_checkpoint_request(w.size()).unwrap();
        writer
            .add_cosignature(w.cosign(&request, writer.dir(), 2).unwrap())
            .unwrap();
    }
    writer.publish().unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 2, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    federation.publish(&mut writer, &mut witnesses, 3).unwrap();
    let report = ledger::audit::verify_log(&federation.policy().unwrap(), &log_dir);
    assert!(report.is_clean(), "{report}");
}

#[test]
fn receipts_prove_inclusion_in_the_vector_format() {
    let run = common::full_run(3, 2, 2);
    let policy = run.federation.policy().unwrap();
    for index in [0, 5, run.writer.size() - 1] {
        let receipt = run.writer.receipt(index).unwrap();
        let entry = receipt.verify(&policy.origin, &policy.log_key).unwrap();
        assert_eq!(entry.bytes(), run.entries()[index as usize]);
        // The same JSON is a transparency-dev inclusion vector.
        let as_vector = ProofFile::parse(&receipt.to_json()).unwrap();
        assert_eq!(as_vector.kind(), "inclusion");
        as_vector.verify().unwrap();
        // 32 bytes per tree level.
        assert_eq!(
            receipt.proof.len(),
            (run.writer.size() as f64).log2().ceil() as usize
        );
    }
    let mut tampered = run.writer.receipt(5).unwrap();
    tampered.leaf_hash = Hash::of_bytes(b"x").to_base64();
    assert!(tampered.verify(&policy.origin, &policy.log_key).is_err());
    assert!(run.writer.receipt(run.writer.size()).is_err());
}
