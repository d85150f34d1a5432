//! Whole federations in one process, over real gRPC with mutual TLS on
//! loopback, end to end: determinism, a node vanishing, client-level DP, the
//! ledger, secure aggregation. The coordinator's refusals are tested in
//! `crates/coordinator/tests`, a node's own duties in `crates/node/tests`.

use fed::plan::TrainingPlan;
use fed::plan_run::{Phase, PlanEvent};
use harness as demo;
use learn::Weights;

fn plan(rounds: u32) -> TrainingPlan {
    let mut p = TrainingPlan::heart_disease_default();
    p.rounds = rounds;
    p
}

async fn run_federation(plan: &TrainingPlan) -> fed::plan_run::PlanState {
    let dir = tempfile::tempdir().unwrap();
    harness::run_plan(plan, dir.path()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_bit_identical_models_and_metrics() {
    let plan = plan(4);
    let first = run_federation(&plan).await;
    let second = run_federation(&plan).await;
    assert_eq!(first.phase, Phase::Completed);
    assert_eq!(first.global_sha256, second.global_sha256);
    assert_eq!(first.final_evaluation, second.final_evaluation);
    let outputs = |s: &fed::plan_run::PlanState| {
        s.history
            .iter()
            .map(|r| r.output_sha256.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(outputs(&first), outputs(&second));
    assert_eq!(first.history.len(), 4);

    let mut other = plan.clone();
    other.seed = 7;
    let third = run_federation(&other).await;
    assert_ne!(first.global_sha256, third.global_sha256, "the seed matters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_disappears_mid_training_does_not_stop_the_rounds() {
    let mut plan = plan(6);
    plan.round_deadline_secs = 2;
    let dir = tempfile::tempdir().unwrap();
    let federation = demo::start_federation(&plan, dir.path()).await.unwrap();
    let mut events = federation.coordinator.subscribe();
    loop {
        if let Ok(PlanEvent::RoundAggregated(r)) = events.recv().await
            && r.round == 2
        {
            break;
        }
    }
    let (name, node) = &federation.nodes[3];
    assert_eq!(name, "va");
    node.abort();
    let state = federation.coordinator.wait_finished().await;
    assert_eq!(state.phase, Phase::Completed);
    assert_eq!(state.history.len(), 6);
    let missed: Vec<_> = state
        .history
        .iter()
        .filter(|r| !r.missing.is_empty())
        .collect();
    assert!(!missed.is_empty(), "some round went on without va");
    assert!(missed.iter().all(|r| r.missing == vec!["va".to_string()]));
    assert!(state.history.iter().all(|r| r.contributions.len() >= 3));
    assert!(!state.final_evaluation.contains_key("va"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_level_dp_noises_each_update_under_secure_aggregation_and_adapts_its_clip() {
    let mut plan = plan(3);
    plan.secure_aggregation = Some(fed::plan::SecureAggregation {
        range: 1000.0,
        num_shares: None,
    });
    plan.client_dp = Some(fed::client_dp::ClientDp {
        clip_norm: 0.5,
        noise_multiplier: 8.0,
        adaptive: Some(fed::client_dp::AdaptiveClip {
            target_quantile: 0.5,
            learning_rate: 0.2,
            count_noise_std: 8.0,
        }),
    });
    plan.privacy_budget = Some(fed::plan::PrivacyBudget {
        epsilon: 8.0,
        delta: 1e-5,
    });
    let dp = plan.client_dp.unwrap();
    let state = run_federation(&plan).await;
    assert_eq!(state.phase, Phase::Completed, "{:?}", state.phase);
    assert_eq!(state.history.len(), 3);
    // Every hospital charged the record-level cost of three rounds (noise 8/2 = 4, q = 1).
    let mut accountant = privacy::accountant::RdpAccountant::new();
    for _ in 0..3 {
        accountant.compose(&dp.record_level_event()).unwrap();
    }
    let expected = accountant.epsilon(1e-5).unwrap().epsilon;
    assert_eq!(state.epsilon_spent_micro.len(), 4);
    for (hospital, spent) in &state.epsilon_spent_micro {
        let spent = *spent as f64 / 1e6;
        assert!(
            (spent - expected).abs() < 1e-5,
            "{hospital} spent {spent}, expected {expected}"
        );
    }
    // The clip norm moved from its starting value with the noisy clipped counts.
    let clip = state.clipping.expect("adaptive clipping state").clip_norm();
    assert!(clip != 0.5 && clip.is_finite() && clip > 0.0, "clip {clip}");
    // The noise is in the model: it differs from the same plan without client DP.
    let mut plain = plan.clone();
    plain.client_dp = None;
    plain.privacy_budget = None;
    let without = run_federation(&plain).await;
    assert_ne!(state.global_sha256, without.global_sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_records_every_round_and_is_cosigned_by_a_witness_quorum() {
    let plan = plan(3);
    let dir = tempfile::tempdir().unwrap();
    let federation = demo::start_federation(&plan, dir.path()).await.unwrap();
    let finished = federation.finish(|_| {}).await.unwrap();
    let ledger = &finished.ledger;
    // genesis, registration, 4 approvals, 4 datasets, 3 x (opened + 4 contributions + aggregate), release
    assert_eq!(ledger.size, 1 + 1 + 4 + 4 + 3 * 6 + 1);
    assert_eq!(
        ledger.published_size, ledger.size,
        "the final checkpoint is published"
    );
    let note = ledger.published_checkpoint.as_deref().unwrap();
    assert!(
        note.matches("/witness/").count() >= 3,
        "a quorum of 3 of 4 witnesses:\n{note}"
    );
    let report = ::ledger::audit::verify_log(&ledger.policy, &ledger.log_dir);
    assert!(report.is_clean(), "{report}");

    // The auditor notices a byte changed in the stored log.
    let bundle = ledger
        .log_dir
        .join(format!("tile/entries/000.p/{}", ledger.size));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&bundle, bytes).unwrap();
    assert!(!::ledger::audit::verify_log(&ledger.policy, &ledger.log_dir).is_clean());
}

/// Every file under `dir`, as bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_aggregation_gives_the_fedavg_model_without_the_coordinator_seeing_an_update() {
    let plain = run_federation(&plan(3)).await;
    let mut secure_plan = plan(3);
    secure_plan.secure_aggregation = Some(fed::plan::SecureAggregation {
        range: 1000.0,
        num_shares: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let finished = demo::start_federation(&secure_plan, dir.path())
        .await
        .unwrap()
        .finish(|_| {})
        .await
        .unwrap();
    let secure = finished.state;
    assert_eq!(secure.phase, Phase::Completed);
    assert_eq!(secure.history.len(), 3);
    assert!(secure.history.iter().all(|r| r.contributions.len() == 4));
    // Same model up to the quantisation error.
    let load = |sha: &str| {
        let bytes = std::fs::read(
            dir.path()
                .join("coordinator/artifacts/models")
                .join(format!("{sha}.safetensors")),
        )
        .unwrap();
        Weights::from_safetensors(&bytes).unwrap()
    };
    let model = load(&secure.global_sha256);
    let plain_dir = tempfile::tempdir().unwrap();
    let plain_run = demo::start_federation(&plan(3), plain_dir.path())
        .await
        .unwrap()
        .finish(|_| {})
        .await
        .unwrap()
        .state;
    assert_eq!(plain_run.global_sha256, plain.global_sha256);
    let reference = Weights::from_safetensors(
        &std::fs::read(
            plain_dir
                .path()
                .join("coordinator/artifacts/models")
                .join(format!("{}.safetensors", plain.global_sha256)),
        )
        .unwrap(),
    )
    .unwrap();
    for (a, b) in model.values().iter().zip(reference.values()) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // The coordinator stored global models only: no hospital's weights.
    let stored = std::fs::read_dir(dir.path().join("coordinator/artifacts/models"))
        .unwrap()
        .count();
    assert_eq!(stored, 1 + 3, "initial model and one aggregate per round");
    let report = ::ledger::audit::verify_log(&finished.ledger.policy, &finished.ledger.log_dir);
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secagg_plus_sparse_graph_gives_the_complete_graphs_model_bit_for_bit() {
    let mut complete = plan(3);
    complete.secure_aggregation = Some(fed::plan::SecureAggregation {
        range: 1000.0,
        num_shares: None,
    });
    let mut sparse = complete.clone();
    sparse.secure_aggregation = Some(fed::plan::SecureAggregation {
        range: 1000.0,
        num_shares: Some(3),
    });
    let complete = run_federation(&complete).await;
    let sparse = run_federation(&sparse).await;
    assert_eq!(sparse.phase, Phase::Completed, "{:?}", sparse.phase);
    assert!(sparse.history.iter().all(|r| r.contributions.len() == 4));
    // Both sums are exact in Z_2^32 over the same quantiser: same model.
    assert_eq!(sparse.global_sha256, complete.global_sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_rounds_go_on_when_a_hospital_drops_out() {
    let mut plan = plan(6);
    plan.round_deadline_secs = 2;
    plan.secure_aggregation = Some(fed::plan::SecureAggregation {
        range: 1000.0,
        num_shares: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let federation = demo::start_federation(&plan, dir.path()).await.unwrap();
    let mut events = federation.coordinator.subscribe();
    loop {
        if let Ok(PlanEvent::RoundAggregated(r)) = events.recv().await
            && r.round == 2
        {
            break;
        }
    }
    federation.nodes[3].1.abort();
    let state = federation.coordinator.wait_finished().await;
    assert_eq!(state.phase, Phase::Completed);
    assert_eq!(state.history.len(), 6);
    let last = state.history.last().unwrap();
    assert_eq!(last.contributions.len(), 3);
    assert!(!last.contributions.contains_key("va"));
}
