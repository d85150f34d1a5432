//! The federation in one process, over real gRPC with mutual TLS on loopback:
//! determinism, a node vanishing, malformed updates, unknown certificates.

use std::time::Duration;

use cli::demo::{self, Credentials};
use fed::plan::TrainingPlan;
use fed::server::{Phase, PlanEvent};
use learn::Weights;
use protocol::convert::{metrics_message, model_message};
use protocol::v1::{self, coordinator_client::CoordinatorClient, task::Kind};
use tonic::Code;

#[path = "../../deid/tests/common/fixtures.rs"]
mod fixtures;

fn plan(rounds: u32) -> TrainingPlan {
    let mut p = TrainingPlan::heart_disease_default();
    p.rounds = rounds;
    p
}

async fn run_federation(plan: &TrainingPlan) -> fed::server::PlanState {
    let dir = tempfile::tempdir().unwrap();
    let federation = demo::start_federation(plan, dir.path()).await.unwrap();
    federation
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap()
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_bit_identical_models_and_metrics() {
    let plan = plan(4);
    let first = run_federation(&plan).await;
    let second = run_federation(&plan).await;
    assert_eq!(first.phase, Phase::Completed);
    assert_eq!(first.global_sha256, second.global_sha256);
    assert_eq!(first.final_evaluation, second.final_evaluation);
    let outputs = |s: &fed::server::PlanState| {
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
    assert!(state.history.iter().all(|r| r.contributors.len() >= 3));
    assert!(!state.final_evaluation.contains_key("va"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_declines_a_plan_whose_code_its_operator_did_not_approve() {
    let plan = plan(2);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo::write_heart_data(&data).unwrap();
    let creds = Credentials::prepare(&dir.path().join("pki"), &plan.hospitals).unwrap();
    let coordinator = coordinator::start(
        creds
            .coordinator_settings(&plan, "127.0.0.1:0".parse().unwrap(), &dir.path().join("c"))
            .unwrap(),
    )
    .await
    .unwrap();
    let mut nodes = Vec::new();
    for h in &creds.hospitals {
        let mut settings = creds
            .node_settings(
                h,
                &plan,
                coordinator.address(),
                &data,
                &dir.path().join(&h.party),
            )
            .unwrap();
        if h.party == "hungarian" {
            settings.approved_code_hashes = vec!["0".repeat(64)];
        }
        nodes.push(tokio::spawn(node::run(settings)));
    }
    let state = coordinator.wait_finished().await;
    assert_eq!(state.phase, Phase::Completed);
    let review = &state.reviews["hungarian"];
    assert!(!review.approved);
    assert!(review.reason.contains("allow-list"), "{}", review.reason);
    assert_eq!(state.participants, vec!["cleveland", "switzerland", "va"]);
    assert!(
        state
            .history
            .iter()
            .all(|r| !r.contributors.contains_key("hungarian"))
    );
    for n in nodes {
        n.await.unwrap().unwrap();
    }
}

/// A hand-driven node client, to send what a well-behaved node never would.
struct RawNode {
    client: CoordinatorClient<tonic::transport::Channel>,
    party: String,
    key: ed25519_dalek::SigningKey,
    ledger: Option<node::witness::NodeLedger>,
}

impl RawNode {
    async fn connect(
        creds: &pki::PartyCredentials,
        address: std::net::SocketAddr,
    ) -> Result<Self, String> {
        let channel = protocol::tls::connect(
            &format!("https://127.0.0.1:{}", address.port()),
            "coordinator",
            &demo::tls(creds),
        )
        .await
        .map_err(|e| e.to_string())?;
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        Ok(RawNode {
            client: CoordinatorClient::new(channel),
            party: creds.party.clone(),
            key: ed25519_dalek::SigningKey::from_pkcs8_pem(&creds.key_pem).unwrap(),
            ledger: None,
        })
    }

    async fn join(&mut self) -> Result<v1::JoinResponse, tonic::Status> {
        let r = self
            .client
            .join(v1::JoinRequest {
                protocol_version: 1,
                software: "test".into(),
            })
            .await
            .map(|r| r.into_inner())?;
        self.ledger = Some(
            node::witness::NodeLedger::new(
                &r.ledger_origin,
                &r.ledger_key,
                &self.party,
                self.key.clone(),
                std::env::temp_dir().join(format!("raw-witness-{}", self.party)),
            )
            .unwrap(),
        );
        Ok(r)
    }

    async fn approve(&mut self, plan: &TrainingPlan) {
        let Kind::ReviewPlan(offer) = self.task().await else {
            panic!("expected a plan offer")
        };
        let entry = self
            .ledger
            .as_ref()
            .unwrap()
            .approve(plan, &offer.registration_entry)
            .unwrap();
        self.client
            .submit_review(v1::PlanReview {
                plan_id: offer.plan_id,
                approved: true,
                reason: String::new(),
                approval_entry: entry,
                dataset_entry: Vec::new(),
            })
            .await
            .unwrap();
    }

    /// The next task that is not a request to witness the ledger (this test
    /// node declines to witness).
    async fn task(&mut self) -> Kind {
        loop {
            let kind = self
                .client
                .next_task(v1::NextTaskRequest { wait_ms: 5000 })
                .await
                .unwrap()
                .into_inner()
                .kind
                .unwrap();
            if !matches!(kind, Kind::Cosign(_)) {
                return kind;
            }
            self.client
                .submit_cosignature(v1::Cosignature {
                    line: String::new(),
                    witness_size: 0,
                    error: "this test node does not witness".into(),
                })
                .await
                .unwrap();
        }
    }

    fn update(&self, plan: &TrainingPlan, round: u32, weights: &Weights) -> v1::ModelUpdate {
        let model = model_message(weights);
        let m = learn::Metrics {
            loss: 0.5,
            accuracy: 0.5,
            samples: 10,
        };
        let contribution_entry = self
            .ledger
            .as_ref()
            .unwrap()
            .contribution(&fed::record::UpdateFacts {
                plan,
                round,
                update_sha256: &model.sha256,
                num_samples: 10,
                train: m,
                epsilon_round_micro: 0,
                epsilon_total_micro: 0,
            })
            .unwrap();
        v1::ModelUpdate {
            plan_id: plan.plan_id(),
            round,
            weights: Some(model),
            num_samples: 10,
            train_metrics: Some(metrics_message(m)),
            global_test_metrics: Some(metrics_message(m)),
            code_hash: plan.code_hash(),
            contribution_entry,
            epsilon_round_micro: 0,
            epsilon_total_micro: 0,
        }
    }
}

async fn coordinator_for(
    plan: &TrainingPlan,
    dir: &std::path::Path,
) -> (Credentials, coordinator::RunningCoordinator) {
    let mut names = plan.hospitals.clone();
    names.push("stranger".into());
    let creds = Credentials::prepare(&dir.join("pki"), &names).unwrap();
    let mut settings = creds
        .coordinator_settings(plan, "127.0.0.1:0".parse().unwrap(), &dir.join("c"))
        .unwrap();
    let mut registry = coordinator::registry::Registry::default();
    for h in creds.hospitals.iter().filter(|h| h.party != "stranger") {
        registry.enrol(&h.party, &h.cert_pem).unwrap();
    }
    settings.registry = registry;
    (creds, coordinator::start(settings).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_updates_are_refused_with_a_reason_and_the_round_goes_on() {
    let plan = two_hospital_plan(2, 3);
    let dir = tempfile::tempdir().unwrap();
    let (creds, coordinator) = coordinator_for(&plan, dir.path()).await;
    let mut alpha = RawNode::connect(&creds.hospitals[0], coordinator.address())
        .await
        .unwrap();
    assert_eq!(alpha.join().await.unwrap().node_id, "alpha");
    alpha.approve(&plan).await;
    // beta never answers: after the review deadline alpha alone (quorum 1) trains.
    let Kind::Train(train) = alpha.task().await else {
        panic!("expected a training task")
    };
    assert_eq!(train.round, 1);
    let global = Weights::from_safetensors(&train.global_model.unwrap().safetensors).unwrap();

    let refuse = |code: Code, text: &'static str| {
        move |r: Result<tonic::Response<v1::Ack>, tonic::Status>| {
            let status = r.expect_err("must be refused");
            assert_eq!(status.code(), code, "{}", status.message());
            assert!(
                status.message().contains(text),
                "{:?} lacks {text:?}",
                status.message()
            );
        }
    };

    let wrong_shape =
        Weights::new(vec![("linear.weight".into(), vec![1, 3])], vec![0.0; 3]).unwrap();
    let u = alpha.update(&plan, 1, &wrong_shape);
    refuse(Code::InvalidArgument, "wrong shape")(alpha.client.submit_update(u).await);

    let nan = global.with_values(vec![f32::NAN; global.len()]).unwrap();
    let u = alpha.update(&plan, 1, &nan);
    refuse(Code::InvalidArgument, "NaN")(alpha.client.submit_update(u).await);

    let mut u = alpha.update(&plan, 1, &global);
    u.weights.as_mut().unwrap().sha256 = "00".repeat(32);
    refuse(Code::InvalidArgument, "hash")(alpha.client.submit_update(u).await);

    let mut u = alpha.update(&plan, 1, &global);
    let garbage = b"not safetensors at all".to_vec();
    u.weights = Some(v1::Model {
        sha256: fed::sha256_hex(&garbage),
        safetensors: garbage,
    });
    refuse(Code::InvalidArgument, "safetensors")(alpha.client.submit_update(u).await);

    let mut u = alpha.update(&plan, 1, &global);
    u.num_samples = 11; // the signed contribution entry says 10
    refuse(Code::InvalidArgument, "does not state this update")(
        alpha.client.submit_update(u).await,
    );

    let mut u = alpha.update(&plan, 1, &global);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let origin = ledger::entry::LogOrigin::new("cohort.federation/cohort-demo").unwrap();
    let forged = ledger::entry::SignedEntry::from_bytes(&u.contribution_entry).unwrap();
    u.contribution_entry = ledger::entry::SignedEntry::sign(
        &origin,
        forged.author().clone(),
        forged.statement().clone(),
        &stranger,
    )
    .unwrap()
    .bytes()
    .to_vec();
    refuse(Code::Unauthenticated, "signature")(alpha.client.submit_update(u).await);

    let u = alpha.update(&plan, 1, &global);
    let mut missing = u.clone();
    missing.train_metrics = None;
    refuse(Code::InvalidArgument, "metrics")(alpha.client.submit_update(missing).await);

    // After all that, a well-formed update is accepted and the round closes.
    alpha.client.submit_update(u.clone()).await.unwrap();
    refuse(Code::FailedPrecondition, "round 1 is not open")(alpha.client.submit_update(u).await);
    let Kind::Train(next) = alpha.task().await else {
        panic!("expected round 2")
    };
    assert_eq!(next.round, 2);
    coordinator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_without_an_enrolled_certificate_are_refused() {
    let plan = plan(1);
    let dir = tempfile::tempdir().unwrap();
    let (creds, coordinator) = coordinator_for(&plan, dir.path()).await;
    let stranger = creds
        .hospitals
        .iter()
        .find(|h| h.party == "stranger")
        .unwrap();
    let mut node = RawNode::connect(stranger, coordinator.address())
        .await
        .unwrap();
    let status = node.join().await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("not enrolled"),
        "{}",
        status.message()
    );

    // A certificate from another CA does not even complete the TLS handshake.
    let other_ca = pki::CertificateAuthority::generate("other").unwrap();
    let forged = other_ca.issue("cleveland").unwrap();
    match RawNode::connect(&forged, coordinator.address()).await {
        Err(_) => {}
        Ok(mut n) => assert!(
            n.join().await.is_err(),
            "a foreign certificate must not be served"
        ),
    }
    coordinator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificate_is_refused() {
    let plan = plan(1);
    let dir = tempfile::tempdir().unwrap();
    let creds = Credentials::prepare(&dir.path().join("pki"), &plan.hospitals).unwrap();
    let mut settings = creds
        .coordinator_settings(&plan, "127.0.0.1:0".parse().unwrap(), &dir.path().join("c"))
        .unwrap();
    let cleveland = &creds.hospitals[0];
    settings
        .registry
        .revoke(&cleveland.cert_fingerprint().unwrap());
    let coordinator = coordinator::start(settings).await.unwrap();
    let mut node = RawNode::connect(cleveland, coordinator.address())
        .await
        .unwrap();
    let status = node.join().await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("revoked"), "{}", status.message());
    let mut other = RawNode::connect(&creds.hospitals[1], coordinator.address())
        .await
        .unwrap();
    other.join().await.unwrap();
    coordinator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_update_is_refused_after_the_round_closed() {
    let plan = two_hospital_plan(3, 1);
    let dir = tempfile::tempdir().unwrap();
    let (creds, coordinator) = coordinator_for(&plan, dir.path()).await;
    let mut alpha = RawNode::connect(&creds.hospitals[0], coordinator.address())
        .await
        .unwrap();
    let mut beta = RawNode::connect(&creds.hospitals[1], coordinator.address())
        .await
        .unwrap();
    for n in [&mut alpha, &mut beta] {
        n.join().await.unwrap();
        n.approve(&plan).await;
    }
    let Kind::Train(a) = alpha.task().await else {
        panic!()
    };
    let Kind::Train(b) = beta.task().await else {
        panic!()
    };
    let global = Weights::from_safetensors(&a.global_model.unwrap().safetensors).unwrap();
    alpha
        .client
        .submit_update(alpha.update(&plan, 1, &global))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let status = beta
        .client
        .submit_update(beta.update(&plan, b.round, &global))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    let state = coordinator.state().await;
    assert_eq!(state.history[0].missing, vec!["beta".to_string()]);
    coordinator.shutdown().await;
}

fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_api_lists_every_message_that_left_the_hospital() {
    let plan = plan(3);
    let dir = tempfile::tempdir().unwrap();
    let federation = demo::start_federation(&plan, dir.path()).await.unwrap();
    let state = federation.coordinator.wait_finished().await;
    let (_, cleveland) = &federation.nodes[0];
    let address = cleveland
        .api_address
        .expect("the demo gives every node an API port");
    let response = tokio::task::spawn_blocking(move || http_get(address, "/disclosures"))
        .await
        .unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let log: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(log["hospital"], "cleveland");
    let kinds: Vec<&str> = log["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["statistics", "update", "update", "update", "evaluation"]
    );
    let sent: Vec<&str> = log["disclosures"].as_array().unwrap()[1..4]
        .iter()
        .map(|d| d["sha256"].as_str().unwrap())
        .collect();
    let accepted: Vec<&str> = state
        .history
        .iter()
        .map(|r| r.update_sha256["cleveland"].as_str())
        .collect();
    assert_eq!(
        sent, accepted,
        "the log names exactly the updates the coordinator aggregated"
    );
    federation
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_withdraw_rather_than_exceed_their_privacy_budget() {
    // After 30 rounds at noise 1.0, epsilon is about 8 (cleveland), 9 (hungarian),
    // 13.5 (va) and 24 (switzerland): two hospitals must stop early.
    let mut plan = plan(30);
    plan.min_hospitals = 2;
    plan.round_deadline_secs = 5;
    plan.training.dp = Some(learn::DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 1.0,
    });
    plan.privacy_budget = Some(fed::plan::PrivacyBudget {
        epsilon: 12.0,
        delta: 1e-5,
    });
    let state = run_federation(&plan).await;
    assert_eq!(state.phase, Phase::Completed);
    // Switzerland (30 records) samples the largest fraction per step and runs out first.
    assert_eq!(
        state.withdrawn.get("switzerland").map(String::as_str),
        Some("privacy-budget-exhausted")
    );
    assert!(!state.participants.contains(&"switzerland".to_string()));
    for (hospital, spent) in &state.epsilon_spent_micro {
        assert!(*spent > 0, "{hospital} spent nothing");
        assert!(
            *spent <= 12_000_000,
            "{hospital} spent {spent} micro-epsilon"
        );
    }
    let last = state.history.last().unwrap();
    assert!(!last.contributors.contains_key("switzerland"));
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
    let finished = federation
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap();
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
fn all_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_the_ehr_gives_the_csv_model_and_no_identifier_leaves_the_hospital() {
    use serde_json::json;
    let plan = plan(3);
    let csv = run_federation(&plan).await;

    // Cleveland's EHR, with a canary name, identifier and birth date planted
    // on one of its patients.
    let dir = tempfile::tempdir().unwrap();
    let store = cleveland_ehr(dir.path()).await;
    let id = "uci-cleveland-5";
    let mut patient: serde_json::Value =
        serde_json::from_str(&store.read("Patient", id).await.unwrap().content.unwrap()).unwrap();
    patient["name"] = json!([{"family": "CANARYFAMILY", "given": ["Zebulon"]}]);
    patient["identifier"] = json!([{"system": "urn:oid:1.2.3", "value": "CANARY-ID-4242"}]);
    put(&store, "Patient", id, patient).await;
    drop(store);

    let federation = demo::start_federation_from(&plan, dir.path(), demo::DemoSource::Ehr)
        .await
        .unwrap();
    let api = federation.nodes[0].1.api_address.unwrap();
    let metadata = tokio::task::spawn_blocking(move || http_get(api, "/fhir/metadata"))
        .await
        .unwrap();
    assert!(metadata.contains("CapabilityStatement"), "{metadata}");
    let ehr = federation
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap()
        .state;
    assert_eq!(
        ehr.global_sha256, csv.global_sha256,
        "the gate gives the CSV table"
    );

    // Nothing the coordinator stored (state, models, ledger) holds the canary.
    let coordinator_files = all_bytes(&dir.path().join("coordinator"));
    assert!(coordinator_files.len() > 5);
    for (path, bytes) in coordinator_files {
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["CANARYFAMILY", "Zebulon", "CANARY-ID-4242", id] {
            assert!(
                !text.contains(secret),
                "{secret} reached {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ultrasound_sent_with_storescu_is_filed_in_the_patients_record() {
    let fixture = fixtures::fixtures_dir().join("OBXXXX1A.dcm");
    let dump = std::process::Command::new("dcmdump")
        .args(["+P", "PatientID"])
        .arg(&fixture)
        .output()
        .expect("dcmdump (dcmtk) is installed by scripts/test.sh");
    let line = String::from_utf8_lossy(&dump.stdout).to_string();
    let patient_id = line
        .split('[')
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap()
        .to_string();

    let plan = plan(1);
    let dir = tempfile::tempdir().unwrap();
    let store = cleveland_ehr(dir.path()).await;
    let mut patient: serde_json::Value = serde_json::from_str(
        &store
            .read("Patient", "uci-cleveland-1")
            .await
            .unwrap()
            .content
            .unwrap(),
    )
    .unwrap();
    patient["identifier"] =
        serde_json::json!([{"system": "urn:hospital:mrn", "value": patient_id}]);
    put(&store, "Patient", "uci-cleveland-1", patient).await;

    let federation = demo::start_federation_from(&plan, dir.path(), demo::DemoSource::Ehr)
        .await
        .unwrap();
    let dicom = federation.nodes[0]
        .1
        .dicom_address
        .expect("the demo gives nodes a DICOM port");
    let sent = tokio::task::spawn_blocking(move || {
        std::process::Command::new("storescu")
            .args(["-aec", "COHORT", "127.0.0.1", &dicom.port().to_string()])
            .arg(&fixture)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let studies = store
        .counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(kind, _)| kind == "ImagingStudy")
        .map(|(_, n)| n);
    assert_eq!(studies, Some(1), "one ImagingStudy filed in the EHR");
    federation
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_opt_out_leaves_the_table_and_only_its_count_reaches_the_ledger() {
    let plan = plan(2);
    let dir = tempfile::tempdir().unwrap();
    let store = cleveland_ehr(dir.path()).await;
    let consent = serde_json::json!({
        "resourceType": "Consent", "id": "optout-1", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/uci-cleveland-1"},
        "dateTime": "2026-01-01",
        "provision": {"type": "deny", "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "MLTRAINING"}]}
    });
    put(&store, "Consent", "optout-1", consent).await;

    let finished = demo::start_federation_from(&plan, dir.path(), demo::DemoSource::Ehr)
        .await
        .unwrap()
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap();
    // Cleveland trains on 198 of its 199 training records.
    assert_eq!(finished.state.history[0].contributors["cleveland"], 198);
    let entry = hex::decode(&finished.state.reviews["cleveland"].dataset_entry_hex).unwrap();
    let entry = ::ledger::entry::SignedEntry::from_bytes(&entry).unwrap();
    let ::ledger::entry::Statement::DatasetPrepared(d) = entry.statement() else {
        panic!(
            "cleveland's dataset entry is a {}",
            entry.statement().kind_name()
        );
    };
    assert_eq!((d.excluded_by_consent, d.incomplete), (1, 0));
    let report = ::ledger::audit::verify_log(&finished.ledger.policy, &finished.ledger.log_dir);
    assert!(report.is_clean(), "{report}");
}

/// Cleveland's EHR in a demo work directory, loaded with its records.
async fn cleveland_ehr(workdir: &std::path::Path) -> ehr::Store {
    let data = workdir.join("data/heart-disease");
    demo::write_heart_data(&data).unwrap();
    let store_dir = workdir.join("nodes/cleveland");
    std::fs::create_dir_all(&store_dir).unwrap();
    let url = format!("sqlite:{}", store_dir.join("ehr.sqlite").display());
    let store = ehr::Store::open(&url).await.unwrap();
    ehr::heart::load_centre_files(&store, "cleveland", &data)
        .await
        .unwrap();
    store
}

/// Create or replace a resource.
async fn put(store: &ehr::Store, kind: &str, id: &str, resource: serde_json::Value) {
    let mut tx = store.begin().await.unwrap();
    tx.update(kind, id, resource, None).await.unwrap();
    tx.commit().await.unwrap();
}

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
        .finish(&indicatif::ProgressBar::hidden())
        .await
        .unwrap();
    let secure = finished.state;
    assert_eq!(secure.phase, Phase::Completed);
    assert_eq!(secure.history.len(), 3);
    assert!(secure.history.iter().all(|r| r.contributors.len() == 4));
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
        .finish(&indicatif::ProgressBar::hidden())
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
    assert!(sparse.history.iter().all(|r| r.contributors.len() == 4));
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
    assert_eq!(last.contributors.len(), 3);
    assert!(!last.contributors.contains_key("va"));
}

/// A plan for hospitals alpha and beta, either of which makes a round.
fn two_hospital_plan(rounds: u32, deadline_secs: u64) -> TrainingPlan {
    let mut p = plan(rounds);
    p.hospitals = vec!["alpha".into(), "beta".into()];
    p.min_hospitals = 1;
    p.standardize = false;
    p.round_deadline_secs = deadline_secs;
    p
}
