//! Witnesses: they cosign only checkpoints consistent with the last one they
//! cosigned, mirror the log, and catch a forking coordinator with evidence
//! that anyone holding the log's public key can check.

mod common;

use common::{forge_log, full_run};
use ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use ledger::entry::Epsilon;
use ledger::fork::{ForkEvidence, ForkEvidenceError};
use ledger::hash::Hash;
use ledger::synthetic::{Federation, derived_key};
use ledger::tiles::LogDir;
use ledger::witness::{AddCheckpoint, Witness, WitnessError};
use ledger::writer::LogWriter;

/// A fresh federation log with the plan published, and its witnesses.
fn started(hospitals: usize) -> (Federation, tempfile::TempDir, LogWriter, Vec<Witness>) {
    let federation = Federation::new(hospitals, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut writer = federation.create_log(&dir.path().join("log")).unwrap();
    let plan = federation
        .plan("w", 5, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    federation
        .publish(&mut writer, &mut witnesses, 100)
        .unwrap();
    (federation, dir, writer, witnesses)
}

/// A second history of the same log: the genesis, then other entries,
/// signed with the same log key.
fn fork_of(
    federation: &Federation,
    dir: &std::path::Path,
    plan_name: &str,
    rounds: u32,
) -> LogWriter {
    let mut fork = federation.create_log(dir).unwrap();
    let plan = federation
        .plan(plan_name, rounds, Epsilon::from_micro(5_000_000))
        .unwrap();
    fork.append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    for round in 1..=rounds {
        fork.append_batch(
            &federation
                .round_entries(&plan, round, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    }
    fork.checkpoint().unwrap();
    fork
}

fn expect_fork(result: Result<ledger::note::NoteSignature, WitnessError>) -> ForkEvidence {
    match result {
        Err(WitnessError::Fork(evidence)) => *evidence,
        other => panic!("expected fork evidence, got {other:?}"),
    }
}

#[test]
fn witnesses_mirror_the_log_byte_for_byte() {
    let run = full_run(3, 2, 2);
    let log = LogDir::new(run.log_dir());
    let log_files: Vec<String> = log
        .list_files()
        .unwrap()
        .into_iter()
        .filter(|f| f.starts_with("tile/"))
        .collect();
    for witness in &run.witnesses {
        assert_eq!(witness.size(), run.writer.size());
        let mirror_files: Vec<String> = witness
            .mirror()
            .list_files()
            .unwrap()
            .into_iter()
            .filter(|f| f.starts_with("tile/"))
            .collect();
        assert_eq!(mirror_files, log_files);
        for f in &log_files {
            assert_eq!(
                witness.mirror().read_file(f).unwrap(),
                log.read_file(f).unwrap(),
                "{f}"
            );
        }
    }
}

#[test]
fn a_witness_refuses_a_stale_old_size_and_tells_its_own() {
    let (federation, _dir, mut writer, mut witnesses) = started(2);
    let plan = federation
        .plan("w", 5, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 1, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    writer.checkpoint().unwrap();
    let request = writer.add_checkpoint_request(1).unwrap();
    match witnesses[0].cosign(&request, writer.dir(), 200) {
        Err(e @ WitnessError::Conflict { latest }) => {
            assert_eq!(latest, 4);
            assert_eq!(e.http_status(), 409);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_witness_refuses_a_proof_that_does_not_verify() {
    let (federation, _dir, mut writer, mut witnesses) = started(2);
    let plan = federation
        .plan("w", 5, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 1, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    writer.checkpoint().unwrap();
    let mut request = writer.add_checkpoint_request(witnesses[0].size()).unwrap();
    request.proof[0] = Hash::of_bytes(b"garbage");
    // The log's own data is consistent, so there is no fork to prove: 422.
    let err = witnesses[0]
        .cosign(&request, writer.dir(), 200)
        .unwrap_err();
    assert!(matches!(err, WitnessError::InconsistentProof), "{err:?}");
    assert_eq!(err.http_status(), 422);
    // The correct request is then accepted.
    let request = writer.add_checkpoint_request(witnesses[0].size()).unwrap();
    witnesses[0].cosign(&request, writer.dir(), 201).unwrap();
}

#[test]
fn a_witness_refuses_a_checkpoint_not_signed_by_the_log() {
    let (federation, _dir, writer, mut witnesses) = started(2);
    let head = writer.published().unwrap().checkpoint().clone();
    let forged = SignedCheckpoint::sign(
        Checkpoint {
            size: head.size + 1,
            ..head
        },
        &derived_key("not the log key"),
    )
    .unwrap();
    let request = AddCheckpoint {
        old_size: witnesses[0].size(),
        proof: vec![],
        checkpoint: forged.to_bytes(),
    };
    let err = witnesses[0]
        .cosign(&request, writer.dir(), 200)
        .unwrap_err();
    assert_eq!(err.http_status(), 403, "{err:?}");
    drop(federation);
}

#[test]
fn add_checkpoint_requests_round_trip_through_the_c2sp_body() {
    let (federation, _dir, mut writer, _) = started(2);
    let plan = federation
        .plan("w", 5, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 1, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    writer.checkpoint().unwrap();
    let request = writer.add_checkpoint_request(3).unwrap();
    let body = request.to_bytes();
    assert!(body.starts_with(b"old 3\n"));
    assert_eq!(AddCheckpoint::parse(&body).unwrap(), request);
}

#[test]
fn a_forked_log_is_caught_with_evidence_a_third_party_can_verify() {
    let (federation, dir, writer, mut witnesses) = started(2);
    let cosigned = witnesses[0].latest().unwrap().clone();
    // The coordinator builds another history (a different plan after the
    // same genesis) and asks the witness to extend its checkpoint with it.
    let fork = fork_of(&federation, &dir.path().join("fork"), "other", 2);
    let request = AddCheckpoint {
        old_size: witnesses[0].size(),
        proof: fork.consistency_proof(witnesses[0].size()).unwrap(),
        checkpoint: fork.staged().unwrap().to_bytes(),
    };
    let evidence = expect_fork(witnesses[0].cosign(&request, fork.dir(), 300));
    assert_eq!(
        witnesses[0].latest(),
        Some(&cosigned),
        "the witness state is unchanged"
    );

    // A third party with only the log's public key checks the evidence.
    let policy = federation.policy().unwrap();
    let json = evidence.to_json();
    let received = ForkEvidence::from_json(&json, &policy.origin, &policy.log_key).unwrap();
    received.verify(&policy.origin, &policy.log_key).unwrap();
    assert_eq!(received.first.checkpoint().size, writer.size());
    assert_eq!(received.second.checkpoint().size, fork.size());
}

#[test]
fn two_checkpoints_of_the_same_size_with_different_roots_are_a_fork() {
    let (federation, dir, writer, mut witnesses) = started(2);
    // Same size as the published log (genesis + plan + 2 approvals), other plan.
    let mut fork = federation.create_log(&dir.path().join("fork")).unwrap();
    let plan = federation
        .plan("same-size", 1, Epsilon::from_micro(1))
        .unwrap();
    fork.append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    fork.checkpoint().unwrap();
    assert_eq!(fork.size(), writer.size());
    let request = fork.add_checkpoint_request(witnesses[1].size()).unwrap();
    let evidence = expect_fork(witnesses[1].cosign(&request, fork.dir(), 300));
    let policy = federation.policy().unwrap();
    evidence.verify(&policy.origin, &policy.log_key).unwrap();
}

#[test]
fn witnesses_shown_split_views_detect_it_by_comparing_checkpoints() {
    let (federation, dir, mut writer, mut witnesses) = started(2);
    // Witness 0 is shown the honest history, witness 1 a fork.
    let plan = federation
        .plan("w", 5, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 1, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    writer.checkpoint().unwrap();
    let request = writer.add_checkpoint_request(witnesses[0].size()).unwrap();
    witnesses[0].cosign(&request, writer.dir(), 300).unwrap();

    let split = tempfile::tempdir_in(dir.path()).unwrap();
    let fresh_witness_dir = split.path().join("w1");
    let mut other_view = Witness::open(
        &fresh_witness_dir,
        federation.hospitals[1].0.clone(),
        federation.witness_keys[1].clone(),
        federation.origin.clone(),
        federation.policy().unwrap().log_key,
    )
    .unwrap();
    let fork = fork_of(&federation, &split.path().join("fork"), "other", 1);
    let request = fork.add_checkpoint_request(0).unwrap();
    other_view.cosign(&request, fork.dir(), 300).unwrap();
    assert_eq!(other_view.size(), witnesses[0].size());

    // Gossip: each compares the other's checkpoint with its own history.
    let theirs = other_view.latest().unwrap().to_bytes();
    let evidence = witnesses[0].compare(&theirs).unwrap().expect("a fork");
    let policy = federation.policy().unwrap();
    evidence.verify(&policy.origin, &policy.log_key).unwrap();
    // An older checkpoint of the honest log is consistent.
    let older = writer.published().unwrap().to_bytes();
    assert!(witnesses[0].compare(&older).unwrap().is_none());
    // An older checkpoint of the fork is not.
    let fork_prefix = fork_of(&federation, &split.path().join("fork-prefix"), "other", 0);
    let mut fork_prefix_witness = Witness::open(
        split.path().join("w1b"),
        federation.hospitals[1].0.clone(),
        federation.witness_keys[1].clone(),
        federation.origin.clone(),
        policy.log_key,
    )
    .unwrap();
    let request = fork_prefix.add_checkpoint_request(0).unwrap();
    fork_prefix_witness
        .cosign(&request, fork_prefix.dir(), 300)
        .unwrap();
    let smaller = fork_prefix_witness.latest().unwrap().to_bytes();
    let evidence = witnesses[0].compare(&smaller).unwrap().expect("a fork");
    evidence.verify(&policy.origin, &policy.log_key).unwrap();
}

#[test]
fn a_log_rewritten_without_an_entry_is_refused_by_the_witnesses() {
    let run = full_run(3, 2, 2);
    let mut entries = run.entries();
    entries.remove(7);
    let plan = &run.plan;
    entries.push(run.federation.release(plan, 1).unwrap().bytes().to_vec());
    entries.push(run.federation.release(plan, 2).unwrap().bytes().to_vec());
    let rewritten = tempfile::tempdir().unwrap();
    forge_log(&run.federation, rewritten.path(), &entries, 0);
    let log = LogDir::new(rewritten.path());
    let mut witness = Witness::open(
        run.dir
            .path()
            .join("witnesses")
            .join(run.federation.hospitals[0].0.as_str()),
        run.federation.hospitals[0].0.clone(),
        run.federation.witness_keys[0].clone(),
        run.federation.origin.clone(),
        run.federation.policy().unwrap().log_key,
    )
    .unwrap();
    let request = AddCheckpoint {
        old_size: witness.size(),
        proof: vec![Hash::default()],
        checkpoint: log.read_file("checkpoint").unwrap(),
    };
    let evidence = expect_fork(witness.cosign(&request, &log, 500));
    let policy = run.federation.policy().unwrap();
    evidence.verify(&policy.origin, &policy.log_key).unwrap();
}

#[test]
fn consistent_checkpoints_are_not_fork_evidence() {
    let run = full_run(2, 2, 1);
    let latest = run.witnesses[0].latest().unwrap().clone();
    let evidence = ForkEvidence {
        first: latest.clone(),
        second: latest,
        second_prefix_root: Hash::default(),
        proof: vec![],
    };
    let policy = run.federation.policy().unwrap();
    assert_eq!(
        evidence.verify(&policy.origin, &policy.log_key),
        Err(ForkEvidenceError::Consistent)
    );
}

#[test]
fn a_restarted_witness_resumes_from_its_mirror() {
    let (federation, dir, mut writer, witnesses) = started(2);
    let size = witnesses[0].size();
    drop(witnesses);
    let mut reopened = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    assert_eq!(reopened[0].size(), size);
    let plan = federation
        .plan("w", 5, Epsilon::from_micro(5_000_000))
        .unwrap();
    writer
        .append_batch(
            &federation
                .round_entries(&plan, 1, Epsilon::from_micro(1))
                .unwrap(),
        )
        .unwrap();
    federation.publish(&mut writer, &mut reopened, 400).unwrap();
    assert_eq!(reopened[1].size(), writer.size());
}
