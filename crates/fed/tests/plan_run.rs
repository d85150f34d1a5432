//! The coordinator's plan state machine, driven with a fake clock.

use fed::contribution::{Contribution, SignedContribution};
use fed::plan::TrainingPlan;
use fed::plan_run::{Phase, PlanEvent, PlanRun, Rejection, Review, TaskKind};
use fed::strategy::StrategyConfig;
use learn::{Metrics, ModelSpec, Weights};

const DEADLINE_MS: i64 = 10_000;

fn plan() -> TrainingPlan {
    let mut p = TrainingPlan::heart_disease_default();
    p.model = ModelSpec::LogisticRegression { inputs: 2 };
    p.hospitals = vec!["a".into(), "b".into(), "c".into()];
    p.min_hospitals = 2;
    p.rounds = 2;
    p.round_deadline_secs = 10;
    p.round_attempts = 2;
    p.standardize = false;
    p
}

fn metrics() -> Metrics {
    Metrics {
        loss: 0.5,
        accuracy: 0.75,
        samples: 4,
    }
}

fn approve_all(run: &mut PlanRun, now: i64) {
    let id = run.state().plan_id.clone();
    for n in ["a", "b", "c"] {
        run.on_review(
            n,
            &id,
            Review {
                approved: true,
                reason: String::new(),
                approval_entry: None,
                dataset_entry: None,
            },
            now,
        )
        .unwrap();
    }
}

/// An update as a node sends it: its contribution and its weights.
#[derive(Clone)]
struct Update {
    contribution: Contribution,
    weights: Weights,
}

fn update(run: &PlanRun, round: u32, value: f32, samples: u64) -> Update {
    let global = run.global();
    let weights = global.with_values(vec![value; global.len()]).unwrap();
    Update {
        contribution: Contribution {
            round,
            update_sha256: weights.sha256_hex(),
            num_samples: samples,
            train: metrics(),
            global_test: metrics(),
            code_hash: run.state().plan.code_hash(),
            epsilon_round_micro: 0,
            epsilon_total_micro: 0,
        },
        weights,
    }
}

/// Send `u` as `node`, with a Contribution entry signed by a test key.
fn send(
    run: &mut PlanRun,
    node: &str,
    id: &str,
    u: Update,
    now: i64,
) -> Result<Vec<PlanEvent>, Rejection> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let origin = ledger::entry::LogOrigin::new("test/log").unwrap();
    let party = ledger::entry::PartyId::new(node).unwrap();
    let entry = fed::record::sign_contribution(
        &run.state().plan.clone(),
        &u.contribution,
        &origin,
        party,
        &key,
    )
    .unwrap();
    let signed = SignedContribution {
        contribution: u.contribution,
        entry,
    };
    run.on_update(node, id, signed, u.weights, now)
}

fn submit(
    run: &mut PlanRun,
    node: &str,
    value: f32,
    now: i64,
) -> Result<Vec<PlanEvent>, Rejection> {
    let id = run.state().plan_id.clone();
    let round = run.state().round;
    let u = update(run, round, value, 1);
    send(run, node, &id, u, now)
}

#[test]
fn review_hands_out_plan_then_training_tasks() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    assert_eq!(run.task_for("a"), TaskKind::Review);
    assert_eq!(run.task_for("stranger"), TaskKind::Wait);
    approve_all(&mut run, 1);
    assert_eq!(run.state().phase, Phase::Training);
    assert!(matches!(
        run.task_for("a"),
        TaskKind::Train { round: 1, .. }
    ));
}

#[test]
fn round_closes_as_soon_as_every_participant_has_sent() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    submit(&mut run, "a", 1.0, 1).unwrap();
    submit(&mut run, "b", 2.0, 2).unwrap();
    assert_eq!(run.state().round, 1, "waits for c");
    let events = submit(&mut run, "c", 3.0, 3).unwrap();
    assert!(matches!(&events[0], PlanEvent::RoundAggregated(r) if r.round == 1));
    assert_eq!(run.state().round, 2);
    // FedAvg of equal-weight updates 1, 2, 3 is 2 everywhere.
    assert!(run.global().values().iter().all(|v| *v == 2.0));
}

#[test]
fn round_with_quorum_aggregates_at_the_deadline_without_the_missing_node() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    submit(&mut run, "a", 1.0, 1).unwrap();
    submit(&mut run, "b", 3.0, 2).unwrap();
    assert!(
        run.advance(DEADLINE_MS).is_empty(),
        "deadline not passed yet"
    );
    let events = run.advance(DEADLINE_MS + 1);
    let PlanEvent::RoundAggregated(record) = &events[0] else {
        panic!("expected an aggregation, got {events:?}");
    };
    assert_eq!(record.missing, vec!["c".to_string()]);
    assert_eq!(run.state().absent, vec!["c".to_string()]);
    assert!(run.global().values().iter().all(|v| *v == 2.0));
}

#[test]
fn absent_node_is_not_waited_for_until_it_asks_for_a_task_again() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    submit(&mut run, "a", 1.0, 1).unwrap();
    submit(&mut run, "b", 1.0, 2).unwrap();
    run.advance(DEADLINE_MS + 1);
    let t = DEADLINE_MS + 2;
    submit(&mut run, "a", 1.0, t).unwrap();
    let events = submit(&mut run, "b", 1.0, t).unwrap();
    assert!(
        matches!(&events[0], PlanEvent::RoundAggregated(r) if r.round == 2),
        "round 2 closes without waiting for absent c"
    );
    assert!(run.on_poll("c"), "c is back");
    assert!(run.state().absent.is_empty());
}

#[test]
fn missed_quorum_reopens_the_round_then_fails_the_plan() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    submit(&mut run, "a", 1.0, 1).unwrap();
    let events = run.advance(DEADLINE_MS + 1);
    assert!(matches!(&events[0], PlanEvent::Reopened { attempt: 2, .. }));
    let events = run.advance(2 * DEADLINE_MS + 10);
    assert!(
        matches!(&events[0], PlanEvent::Failed(reason) if reason.contains("updates from 1 hospitals, 2 needed"))
    );
    assert!(matches!(run.task_for("a"), TaskKind::Finished { .. }));
}

#[test]
fn update_of_the_wrong_shape_is_rejected_with_the_expected_layout() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let mut u = update(&run, 1, 1.0, 1);
    u.weights = Weights::new(vec![("linear.weight".into(), vec![1, 5])], vec![0.0; 5]).unwrap();
    let id = run.state().plan_id.clone();
    let err = send(&mut run, "a", &id, u, 1).unwrap_err();
    assert!(
        matches!(&err, Rejection::Invalid(m) if m.contains("wrong shape")),
        "{err}"
    );
    assert!(run.state().updates.is_empty());
}

#[test]
fn update_with_nan_is_rejected() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let id = run.state().plan_id.clone();
    let u = update(&run, 1, f32::NAN, 1);
    let err = send(&mut run, "a", &id, u, 1).unwrap_err();
    assert!(
        matches!(&err, Rejection::Invalid(m) if m.contains("NaN")),
        "{err}"
    );
    let u = update(&run, 1, f32::INFINITY, 1);
    assert!(send(&mut run, "a", &id, u, 1).is_err());
}

#[test]
fn update_after_the_deadline_is_rejected() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let err = submit(&mut run, "a", 1.0, DEADLINE_MS + 5).unwrap_err();
    assert!(
        matches!(&err, Rejection::OutOfPhase(m) if m.contains("deadline")),
        "{err}"
    );
}

#[test]
fn update_for_another_round_is_rejected() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let id = run.state().plan_id.clone();
    let u = update(&run, 2, 1.0, 1);
    let err = send(&mut run, "a", &id, u, 1).unwrap_err();
    assert!(
        matches!(&err, Rejection::OutOfPhase(m) if m.contains("open round is 1")),
        "{err}"
    );
}

#[test]
fn second_update_in_a_round_is_rejected() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    submit(&mut run, "a", 1.0, 1).unwrap();
    assert!(matches!(
        submit(&mut run, "a", 1.0, 2),
        Err(Rejection::Duplicate(_))
    ));
}

#[test]
fn update_from_a_hospital_outside_the_plan_is_rejected() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    assert!(matches!(
        submit(&mut run, "z", 1.0, 1),
        Err(Rejection::NotParticipant(_))
    ));
}

#[test]
fn update_from_other_code_is_rejected() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let id = run.state().plan_id.clone();
    let mut u = update(&run, 1, 1.0, 1);
    u.contribution.code_hash = "0".repeat(64);
    assert!(
        matches!(send(&mut run, "a", &id, u, 1), Err(Rejection::Invalid(m)) if m.contains("code"))
    );
}

#[test]
fn declines_below_the_quorum_fail_the_plan() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    let id = run.state().plan_id.clone();
    let no = || Review {
        approved: false,
        reason: "code not allowed".into(),
        approval_entry: None,
        dataset_entry: None,
    };
    run.on_review(
        "a",
        &id,
        Review {
            approved: true,
            reason: String::new(),
            approval_entry: None,
            dataset_entry: None,
        },
        0,
    )
    .unwrap();
    run.on_review("b", &id, no(), 0).unwrap();
    let events = run.on_review("c", &id, no(), 0).unwrap();
    assert!(matches!(&events[0], PlanEvent::Failed(m) if m.contains("only 1 of 3")));
}

#[test]
fn plan_ends_with_evaluation_of_the_final_model() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    for round in 1..=2 {
        for n in ["a", "b", "c"] {
            submit(&mut run, n, round as f32, round).unwrap();
        }
    }
    assert_eq!(run.state().phase, Phase::Evaluation);
    let TaskKind::Evaluate { model, round, .. } = run.task_for("a") else {
        panic!("expected an evaluation task");
    };
    assert_eq!(round, 2);
    let id = run.state().plan_id.clone();
    let sha = model.sha256_hex();
    for n in ["a", "b", "c"] {
        run.on_evaluation(n, &id, &sha, metrics(), 10).unwrap();
    }
    assert_eq!(run.state().phase, Phase::Completed);
    assert_eq!(run.state().history.len(), 2);
}

#[test]
fn restored_state_continues_exactly_like_the_original() {
    let mut p = plan();
    p.strategy = StrategyConfig::from_name("fedadam").unwrap();
    let mut original = PlanRun::new(p, 0).unwrap();
    approve_all(&mut original, 0);
    for n in ["a", "b", "c"] {
        submit(&mut original, n, 0.5, 1).unwrap();
    }
    submit(&mut original, "a", 0.25, 2).unwrap();

    // Persist as the coordinator does: artifacts by hash, the state as JSON
    // and each finished round as its own record.
    let mut store = std::collections::HashMap::new();
    for (sha, w) in original.take_unsaved() {
        store.insert(sha, w);
    }
    let json = serde_json::to_string(original.state()).unwrap();
    let rounds: Vec<String> = original
        .state()
        .history
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let mut state: fed::plan_run::PlanState = serde_json::from_str(&json).unwrap();
    assert!(state.history.is_empty(), "finished rounds are stored apart");
    state.history = rounds
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let mut restored = PlanRun::restore(state, |sha| store.get(sha).cloned()).unwrap();

    for run in [&mut original, &mut restored] {
        submit(run, "b", 0.75, 3).unwrap();
        submit(run, "c", 1.0, 3).unwrap();
    }
    assert_eq!(original.state(), restored.state());
    assert_eq!(original.global(), restored.global());
}

fn dp_plan() -> TrainingPlan {
    let mut p = plan();
    p.training.dp = Some(learn::DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 1.0,
    });
    p.privacy_budget = Some(fed::plan::PrivacyBudget {
        epsilon: 2.0,
        delta: 1e-5,
    });
    p
}

#[test]
fn update_claiming_more_epsilon_than_the_budget_is_rejected() {
    let mut run = PlanRun::new(dp_plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let id = run.state().plan_id.clone();
    let mut u = update(&run, 1, 1.0, 1);
    u.contribution.epsilon_round_micro = 500_000;
    u.contribution.epsilon_total_micro = 2_000_001;
    let err = send(&mut run, "a", &id, u.clone(), 1).unwrap_err();
    assert!(
        matches!(&err, Rejection::Invalid(m) if m.contains("over the plan's budget")),
        "{err}"
    );
    u.contribution.epsilon_total_micro = 1_500_000;
    send(&mut run, "a", &id, u, 1).unwrap();
    assert_eq!(run.state().epsilon_spent_micro["a"], 1_500_000);
}

#[test]
fn update_without_privacy_accounting_is_rejected_under_a_dp_plan() {
    let mut run = PlanRun::new(dp_plan(), 0).unwrap();
    approve_all(&mut run, 0);
    assert!(
        matches!(submit(&mut run, "a", 1.0, 1), Err(Rejection::Invalid(m)) if m.contains("inconsistent"))
    );
}

#[test]
fn withdrawn_hospital_is_no_longer_waited_for() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let id = run.state().plan_id.clone();
    submit(&mut run, "a", 1.0, 1).unwrap();
    submit(&mut run, "b", 1.0, 1).unwrap();
    let events = run
        .on_withdraw("c", &id, "privacy-budget-exhausted", 2)
        .unwrap();
    assert!(matches!(&events[0], PlanEvent::RoundAggregated(r) if r.round == 1));
    assert_eq!(run.state().withdrawn["c"], "privacy-budget-exhausted");
    assert_eq!(run.task_for("c"), TaskKind::Wait);
}

#[test]
fn withdrawals_below_the_minimum_end_the_plan_at_once() {
    let mut run = PlanRun::new(plan(), 0).unwrap();
    approve_all(&mut run, 0);
    let id = run.state().plan_id.clone();
    run.on_withdraw("c", &id, "privacy-budget-exhausted", 1)
        .unwrap();
    assert_eq!(run.state().phase, Phase::Training);
    let events = run
        .on_withdraw("b", &id, "privacy-budget-exhausted", 2)
        .unwrap();
    assert!(matches!(&events[0], PlanEvent::Failed(m) if m.contains("1 participants left")));
    assert!(run.is_finished());
}

#[test]
fn restore_reports_a_missing_artifact() {
    let run = PlanRun::new(plan(), 0).unwrap();
    let state = run.state().clone();
    assert!(PlanRun::restore(state, |_| None).is_err());
}
