//! The auditor (`verify_log`): a clean run verifies, and each broken rule is
//! reported with the index of the entry concerned, all of them, not only the
//! first.

mod common;

use common::{Run, forge_log, full_run};
use ledger::audit::{Report, ViolationKind, verify_log};
use ledger::entry::{
    Consumed, Contribution, Epsilon, KeyRevoked, KeyRotated, Objection, ObjectionReason,
    PlanRegistered, RevocationReason, RoundOpened, SignedEntry, Statement, Weight,
};
use ledger::hash::Hash;
use ledger::synthetic::{Federation, derived_key};

fn audit(run: &Run) -> Report {
    verify_log(&run.federation.policy().unwrap(), &run.log_dir())
}

/// Index and kind of every violation.
fn found(report: &Report) -> Vec<(Option<u64>, ViolationKind)> {
    report
        .violations
        .iter()
        .map(|v| (v.index, v.kind))
        .collect()
}

fn contribution_of(entry: &SignedEntry) -> Contribution {
    match entry.statement() {
        Statement::Contribution(c) => c.clone(),
        other => panic!("not a contribution: {other:?}"),
    }
}

/// A published log: genesis, the plan and approvals, then `tail`.
fn log_with(
    federation: &Federation,
    plan: &PlanRegistered,
    tail: &[SignedEntry],
) -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = federation.create_log(&dir.path().join("log")).unwrap();
    writer
        .append_batch(&federation.plan_entries(plan).unwrap())
        .unwrap();
    writer.append_batch(tail).unwrap();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    federation.publish(&mut writer, &mut witnesses, 10).unwrap();
    let report = verify_log(&federation.policy().unwrap(), &dir.path().join("log"));
    (dir, report)
}

/// Genesis, plan, approvals and one round: indices 0..=2+h and the round after.
fn setup(hospitals: usize) -> (Federation, PlanRegistered, Vec<SignedEntry>) {
    let federation = Federation::new(hospitals, 2).unwrap();
    let plan = federation
        .plan("audit", 3, Epsilon::from_micro(1_000_000))
        .unwrap();
    let round = federation
        .round_entries(&plan, 1, Epsilon::from_micro(400_000))
        .unwrap();
    (federation, plan, round)
}

#[test]
fn a_complete_federation_run_verifies_clean() {
    let run = full_run(4, 3, 3);
    let report = audit(&run);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.tree_size, run.writer.size());
    assert_eq!(report.entries_checked, run.writer.size());
    assert_eq!(report.cosignatures, 4);
    assert_eq!(report.quorum, 3);
}

#[test]
fn every_broken_rule_is_reported_with_its_index() {
    let (federation, plan, round1) = setup(3);
    // Indices: 0 genesis, 1 plan, 2-4 approvals, 5-9 round 1 (open, 3 contributions, aggregate).
    let mut tail = round1.clone();
    let eps = Epsilon::from_micro(400_000);
    // 10: a contribution to round 1, which is closed.
    let mut late = contribution_of(&federation.contribution(&plan, 1, 0, eps).unwrap());
    late.update_hash = Hash::of_bytes(b"late update");
    late.epsilon_round = Epsilon::from_micro(0);
    late.epsilon_total = Epsilon::from_micro(400_000);
    tail.push(
        federation
            .by_hospital(0, Statement::Contribution(late))
            .unwrap(),
    );
    // 11: round 3 opened after round 1.
    tail.push(
        federation
            .by_coordinator(Statement::RoundOpened(RoundOpened {
                plan: plan.plan,
                round: 3,
                input_model: Hash::default(),
            }))
            .unwrap(),
    );
    // 12: round 2 opened properly.
    tail.push(
        federation
            .by_coordinator(Statement::RoundOpened(RoundOpened {
                plan: plan.plan,
                round: 2,
                input_model: Federation::model_after(&plan, 1),
            }))
            .unwrap(),
    );
    // 13: hospital 0 contributes to round 2 with the wrong code and a total
    // that does not add up.
    let mut wrong = contribution_of(&federation.contribution(&plan, 2, 0, eps).unwrap());
    wrong.code_hash = Hash::of_bytes(b"other code");
    wrong.epsilon_total = Epsilon::from_micro(300_000); // below the previous 0.4
    tail.push(
        federation
            .by_hospital(0, Statement::Contribution(wrong))
            .unwrap(),
    );
    // 14: hospital 0 again in round 2 (its budget accounting right).
    let mut again = contribution_of(&federation.contribution(&plan, 2, 0, eps).unwrap());
    again.epsilon_round = Epsilon::from_micro(0);
    again.epsilon_total = Epsilon::from_micro(800_000);
    tail.push(
        federation
            .by_hospital(0, Statement::Contribution(again))
            .unwrap(),
    );
    // 15: hospital 1 over budget (0.4 + 0.7 > 1.0).
    let mut greedy = contribution_of(&federation.contribution(&plan, 2, 1, eps).unwrap());
    greedy.epsilon_round = Epsilon::from_micro(700_000);
    greedy.epsilon_total = Epsilon::from_micro(1_100_000);
    let greedy = federation
        .by_hospital(1, Statement::Contribution(greedy))
        .unwrap();
    tail.push(greedy.clone());
    // 16: hospital 2's contribution, which the aggregate will leave out.
    tail.push(federation.contribution(&plan, 2, 2, eps).unwrap());
    // 17: aggregate of round 2 listing 13 and 15 with wrong weights, plus an
    // unknown contribution.
    tail.push(
        federation
            .by_coordinator(Statement::RoundAggregated(ledger::entry::RoundAggregated {
                plan: plan.plan,
                round: 2,
                consumed: vec![
                    Consumed {
                        contribution: tail[8].entry_hash(),
                        weight: Weight::from_ppb(500_000_000).unwrap(),
                    },
                    Consumed {
                        contribution: greedy.entry_hash(),
                        weight: Weight::from_ppb(500_000_000).unwrap(),
                    },
                    Consumed {
                        contribution: Hash::of_bytes(b"nothing"),
                        weight: Weight::from_ppb(0).unwrap(),
                    },
                ],
                output_model: Federation::model_after(&plan, 2),
            }))
            .unwrap(),
    );
    // 18: release of a model no aggregate produced.
    tail.push(
        federation
            .by_coordinator(Statement::ModelReleased(ledger::entry::ModelReleased {
                plan: plan.plan,
                model: Hash::of_bytes(b"some other model"),
            }))
            .unwrap(),
    );
    // 19: an objection to an entry that is not in the log; 20: a valid one.
    tail.push(
        federation
            .by_hospital(
                2,
                Statement::Objection(Objection {
                    entry: Hash::of_bytes(b"no such entry"),
                    reason: ObjectionReason::ContributionMissing,
                }),
            )
            .unwrap(),
    );
    tail.push(
        federation
            .by_hospital(
                2,
                Statement::Objection(Objection {
                    entry: tail[11].entry_hash(),
                    reason: ObjectionReason::ContributionMissing,
                }),
            )
            .unwrap(),
    );
    // 21: the release of round 1's model: allowed.
    tail.push(federation.release(&plan, 1).unwrap());

    let (_dir, report) = log_with(&federation, &plan, &tail);
    let got = found(&report);
    let expected = [
        (Some(10), ViolationKind::Round),
        (Some(11), ViolationKind::Round),
        (Some(13), ViolationKind::CodeHash),
        (Some(13), ViolationKind::Budget),
        (Some(14), ViolationKind::DuplicateContribution),
        (Some(15), ViolationKind::Budget),
        (Some(17), ViolationKind::Aggregate),
        (Some(18), ViolationKind::Release),
        (Some(19), ViolationKind::Objection),
    ];
    for e in expected {
        assert!(got.contains(&e), "missing {e:?} in\n{report}");
    }
    for (index, _) in &got {
        assert!(
            expected.iter().any(|(i, _)| i == index),
            "unexpected violation at {index:?}\n{report}"
        );
    }
    let aggregate_problems = report
        .violations
        .iter()
        .filter(|v| v.index == Some(17))
        .map(|v| v.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        aggregate_problems.contains("not a contribution"),
        "{aggregate_problems}"
    );
    assert!(
        aggregate_problems.contains("index 16 is not consumed"),
        "{aggregate_problems}"
    );
}

#[test]
fn weights_must_follow_from_the_sample_buckets() {
    let (federation, plan, mut round1) = setup(2);
    let contributions = &round1[1..3];
    let mut aggregate = match round1[3].statement() {
        Statement::RoundAggregated(a) => a.clone(),
        _ => unreachable!(),
    };
    assert_eq!(aggregate.consumed.len(), contributions.len());
    aggregate.consumed.swap(0, 1);
    aggregate.consumed[0].contribution = contributions[0].entry_hash();
    aggregate.consumed[1].contribution = contributions[1].entry_hash();
    round1[3] = federation
        .by_coordinator(Statement::RoundAggregated(aggregate))
        .unwrap();
    let (_dir, report) = log_with(&federation, &plan, &round1);
    assert_eq!(
        found(&report),
        [(Some(7), ViolationKind::Aggregate)],
        "{report}"
    );
    assert!(report.violations[0].message.contains("weights"));
}

/// Forge (bypassing the sequencer's checks) a log of the setup's prefix and
/// `tail`, cosigned by every witness, and audit it.
fn forged(federation: &Federation, plan: &PlanRegistered, tail: &[SignedEntry]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = vec![federation.genesis().unwrap().bytes().to_vec()];
    entries.extend(
        federation
            .plan_entries(plan)
            .unwrap()
            .iter()
            .map(|e| e.bytes().to_vec()),
    );
    entries.extend(tail.iter().map(|e| e.bytes().to_vec()));
    forge_log(federation, dir.path(), &entries, federation.hospitals.len());
    verify_log(&federation.policy().unwrap(), dir.path())
}

#[test]
fn signatures_are_checked_against_keys_as_of_each_index() {
    let (federation, plan, round1) = setup(2);
    let origin = &federation.origin;
    let (h0, old_key) = federation.hospitals[0].clone();
    let new_key = derived_key("rotated");
    let rotation = federation
        .by_hospital(
            0,
            Statement::KeyRotated(KeyRotated {
                party: h0.clone(),
                new_key: new_key.verifying_key().into(),
            }),
        )
        .unwrap();
    let open = round1[0].clone();
    let contribution = contribution_of(&round1[1]);
    let with_old = SignedEntry::sign(
        origin,
        h0.clone(),
        Statement::Contribution(contribution.clone()),
        &old_key,
    )
    .unwrap();
    let with_new = SignedEntry::sign(
        origin,
        h0.clone(),
        Statement::Contribution(contribution),
        &new_key,
    )
    .unwrap();
    let revoke = federation
        .by_coordinator(Statement::KeyRevoked(KeyRevoked {
            party: federation.hospitals[1].0.clone(),
            reason: RevocationReason::Compromised,
        }))
        .unwrap();
    let after_revocation = round1[2].clone();
    // 4 rotation, 5 open, 6 contribution with the old key (bad), 7 with the
    // new key (good), 8 revocation of hospital 1, 9 hospital 1 contributes.
    let tail = [rotation, open, with_old, with_new, revoke, after_revocation];
    let report = forged(&federation, &plan, &tail);
    assert_eq!(
        found(&report),
        [
            (Some(6), ViolationKind::Signature),
            (Some(9), ViolationKind::Unauthorised)
        ],
        "{report}"
    );
}

#[test]
fn a_statement_outside_the_authors_role_is_unauthorised() {
    let (federation, plan, _) = setup(2);
    let mut other = plan.clone();
    other.plan = Hash::of_bytes(b"hospital's own plan");
    let by_hospital = federation
        .by_hospital(0, Statement::PlanRegistered(other))
        .unwrap();
    let report = forged(&federation, &plan, &[by_hospital]);
    assert_eq!(
        found(&report),
        [(Some(4), ViolationKind::Unauthorised)],
        "{report}"
    );
}

#[test]
fn a_genesis_that_differs_from_the_policy_is_reported() {
    let federation = Federation::new(3, 2).unwrap();
    let smaller = Federation::new(2, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    forge_log(
        &federation,
        dir.path(),
        &[smaller.genesis().unwrap().bytes().to_vec()],
        3,
    );
    let report = verify_log(&federation.policy().unwrap(), dir.path());
    assert!(
        found(&report).contains(&(Some(0), ViolationKind::Genesis)),
        "{report}"
    );
}

#[test]
fn a_checkpoint_without_a_quorum_of_cosignatures_is_reported() {
    let (federation, plan, round1) = setup(3);
    let dir = tempfile::tempdir().unwrap();
    let mut entries = vec![federation.genesis().unwrap().bytes().to_vec()];
    entries.extend(
        federation
            .plan_entries(&plan)
            .unwrap()
            .iter()
            .map(|e| e.bytes().to_vec()),
    );
    entries.extend(round1.iter().map(|e| e.bytes().to_vec()));
    forge_log(&federation, dir.path(), &entries, 1);
    let report = verify_log(&federation.policy().unwrap(), dir.path());
    assert_eq!(found(&report), [(None, ViolationKind::Quorum)], "{report}");
}

#[test]
fn a_removed_entry_is_caught() {
    let run = full_run(3, 2, 2);
    let policy = run.federation.policy().unwrap();
    let mut entries = run.entries();
    let removed = entries.remove(7); // a contribution of round 1

    // Cut out of the stored bundle: the files no longer add up.
    let cut = tempfile::tempdir().unwrap();
    copy_dir(&run.log_dir(), cut.path());
    let bundle = cut
        .path()
        .join(format!("tile/entries/000.p/{}", run.writer.size()));
    let mut bytes = Vec::new();
    for e in &entries {
        bytes.extend_from_slice(&(e.len() as u16).to_be_bytes());
        bytes.extend_from_slice(e);
    }
    std::fs::write(&bundle, bytes).unwrap();
    let report = verify_log(&policy, cut.path());
    assert!(!report.is_clean());
    assert!(
        found(&report).contains(&(Some(0), ViolationKind::Storage)),
        "{report}"
    );

    // Rewritten by the coordinator, re-signed with the log key, but without
    // the witnesses: no quorum, and the aggregate misses its contribution.
    let rewritten = tempfile::tempdir().unwrap();
    forge_log(&run.federation, rewritten.path(), &entries, 0);
    let report = verify_log(&policy, rewritten.path());
    let kinds = found(&report);
    assert!(kinds.contains(&(None, ViolationKind::Quorum)), "{report}");
    assert!(
        kinds.iter().any(|(_, k)| *k == ViolationKind::Aggregate),
        "{report}"
    );
    assert!(report.violations.iter().all(|v| !v.message.is_empty()));
    drop(removed);
}

#[test]
fn reordered_entries_are_caught() {
    let run = full_run(3, 2, 2);
    let policy = run.federation.policy().unwrap();
    let mut entries = run.entries();
    entries.swap(5, 6); // a contribution before its round is opened

    // Swapped in place: the tiles and the root no longer match.
    let swapped = tempfile::tempdir().unwrap();
    copy_dir(&run.log_dir(), swapped.path());
    let mut bytes = Vec::new();
    for e in &entries {
        bytes.extend_from_slice(&(e.len() as u16).to_be_bytes());
        bytes.extend_from_slice(e);
    }
    std::fs::write(
        swapped
            .path()
            .join(format!("tile/entries/000.p/{}", entries.len())),
        bytes,
    )
    .unwrap();
    let report = verify_log(&policy, swapped.path());
    let kinds = found(&report);
    assert!(
        kinds.iter().any(|(_, k)| *k == ViolationKind::TileMismatch),
        "{report}"
    );
    assert!(
        kinds.contains(&(None, ViolationKind::RootMismatch)),
        "{report}"
    );

    // Even fully re-signed and cosigned (log key and witnesses colluding),
    // the order breaks the rules.
    let forged = tempfile::tempdir().unwrap();
    forge_log(&run.federation, forged.path(), &entries, 3);
    let report = verify_log(&policy, forged.path());
    assert!(
        found(&report).contains(&(Some(5), ViolationKind::Round)),
        "{report}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

/// A published log: genesis, then `entries` (no plan prepended).
fn published(federation: &Federation, entries: &[SignedEntry]) -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = federation.create_log(&dir.path().join("log")).unwrap();
    writer.append_batch(entries).unwrap();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    federation.publish(&mut writer, &mut witnesses, 10).unwrap();
    let report = verify_log(&federation.policy().unwrap(), &dir.path().join("log"));
    (dir, report)
}

#[test]
fn dataset_statements_before_or_after_approval_verify_clean() {
    let (federation, plan, round1) = setup(3);
    let plan_entries = federation.plan_entries(&plan).unwrap();
    let registration = plan_entries[0].entry_hash();
    // Hospital 0 states its dataset before approving, hospital 1 after, and
    // hospital 2 not at all; then round 1.
    let mut entries = vec![
        plan_entries[0].clone(),
        federation
            .dataset_prepared(&plan, registration, 0, 87, 4, 2)
            .unwrap(),
    ];
    entries.extend(plan_entries[1..].iter().cloned());
    entries.push(
        federation
            .dataset_prepared(&plan, registration, 1, 144, 0, 0)
            .unwrap(),
    );
    entries.extend(round1);
    let (_dir, report) = published(&federation, &entries);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.entries_checked, 1 + entries.len() as u64);
}

#[test]
fn misplaced_dataset_statements_are_each_reported() {
    let federation = Federation::new(4, 2).unwrap();
    let eps = Epsilon::from_micro(400_000);
    let mut plan = federation
        .plan("dataset", 2, Epsilon::from_micro(1_000_000))
        .unwrap();
    // The fourth hospital (`hospital-4`) is enrolled but not eligible.
    plan.eligible = ledger::entry::PartySet::new(
        federation.hospitals[..3]
            .iter()
            .map(|(id, _)| id.clone())
            .collect(),
    )
    .unwrap();
    let plan_entries = federation.plan_entries(&plan).unwrap();
    let registration = plan_entries[0].entry_hash();
    let mut unregistered = federation.plan("never", 2, eps).unwrap();
    unregistered.plan = Hash::of_bytes(b"plan that is never registered");
    let later = federation.plan("later", 2, eps).unwrap();
    let prepared = |plan: &PlanRegistered, registration, i| {
        federation
            .dataset_prepared(plan, registration, i, 100, 1, 0)
            .unwrap()
    };
    // Round 1 with the eligible hospitals only.
    let contributions: Vec<SignedEntry> = (0..3)
        .map(|i| federation.contribution(&plan, 1, i, eps).unwrap())
        .collect();
    let open = federation
        .by_coordinator(Statement::RoundOpened(RoundOpened {
            plan: plan.plan,
            round: 1,
            input_model: Federation::model_after(&plan, 0),
        }))
        .unwrap();
    let aggregate = federation.aggregate(&plan, 1, &contributions).unwrap();

    let entries = vec![
        // 1: the registration.
        plan_entries[0].clone(),
        // 2: hospital 3 is not eligible.
        prepared(&plan, registration, 3),
        // 3: a plan that is not registered.
        prepared(&unregistered, registration, 0),
        // 4-6: approvals by the eligible hospitals.
        plan_entries[1].clone(),
        plan_entries[2].clone(),
        plan_entries[3].clone(),
        // 7: hospital 0, fine; 8: hospital 0 again.
        prepared(&plan, registration, 0),
        federation
            .dataset_prepared(&plan, registration, 0, 90, 2, 1)
            .unwrap(),
        // 9: hospital 1 names another registration entry.
        prepared(&plan, Hash::of_bytes(b"other registration"), 1),
        // 10-13: round 1 opened and its contributions.
        open,
        contributions[0].clone(),
        contributions[1].clone(),
        contributions[2].clone(),
        // 14: hospital 2, after its contribution.
        prepared(&plan, registration, 2),
        // 15: the aggregate.
        aggregate,
        // 16: a plan registered only afterwards, at 17.
        prepared(&later, registration, 0),
        federation
            .by_coordinator(Statement::PlanRegistered(later.clone()))
            .unwrap(),
    ];
    let (_dir, report) = published(&federation, &entries);
    assert_eq!(
        found(&report),
        [2, 3, 8, 9, 14, 16].map(|i| (Some(i), ViolationKind::Plan)),
        "{report}"
    );
    let message = |index: u64| {
        report
            .violations
            .iter()
            .find(|v| v.index == Some(index))
            .map(|v| v.message.clone())
            .unwrap()
    };
    assert!(message(2).contains("not eligible"), "{report}");
    assert!(message(3).contains("not registered"), "{report}");
    assert!(message(8).contains("already stated"), "{report}");
    assert!(message(8).contains("index 7"), "{report}");
    assert!(message(9).contains("registration"), "{report}");
    assert!(message(14).contains("after contributing"), "{report}");
    assert!(message(16).contains("not registered"), "{report}");
}

#[test]
fn a_dataset_statement_by_the_coordinator_is_unauthorised() {
    let (federation, plan, _) = setup(2);
    let registration = federation.plan_entries(&plan).unwrap()[0].entry_hash();
    let Statement::DatasetPrepared(prepared) = federation
        .dataset_prepared(&plan, registration, 0, 50, 0, 0)
        .unwrap()
        .statement()
        .clone()
    else {
        unreachable!()
    };
    let by_coordinator = federation
        .by_coordinator(Statement::DatasetPrepared(prepared))
        .unwrap();
    let report = forged(&federation, &plan, &[by_coordinator]);
    assert_eq!(
        found(&report),
        [(Some(4), ViolationKind::Unauthorised)],
        "{report}"
    );
}

#[test]
fn text_dataset_statements_follow_the_dataset_rules_and_add_up() {
    use ledger::entry::{PhiCategory, TextCount, TextDatasetPrepared, TextKind, TextPrepared};
    let (federation, plan, _) = setup(2);
    let registration = federation.plan_entries(&plan).unwrap()[0].entry_hash();
    let with_text = |i: usize, documents: u32, names: u32| {
        let Statement::DatasetPrepared(dataset) = federation
            .dataset_prepared(&plan, registration, i, 50, 1, 0)
            .unwrap()
            .statement()
            .clone()
        else {
            unreachable!()
        };
        let text = TextPrepared::new(
            vec![TextCount {
                kind: TextKind::Note,
                count: documents,
            }],
            vec![TextCount {
                kind: PhiCategory::Name,
                count: names,
            }],
        )
        .unwrap();
        federation
            .by_hospital(
                i,
                Statement::TextDatasetPrepared(TextDatasetPrepared { dataset, text }),
            )
            .unwrap()
    };
    // 0 genesis, 1 plan, 2-3 approvals; 4: fine; 5: names removed from no document;
    // 6: hospital 0 states its dataset a second time.
    let tail = [
        with_text(0, 40, 120),
        with_text(1, 0, 3),
        with_text(0, 41, 120),
    ];
    let (_dir, report) = log_with(&federation, &plan, &tail);
    assert_eq!(
        found(&report),
        [
            (Some(5), ViolationKind::Plan),
            (Some(6), ViolationKind::Plan)
        ],
        "{report}"
    );
    assert!(
        report.violations[0].message.contains("no document"),
        "{report}"
    );
}
