//! The coordinator's service over real gRPC with mutual TLS on loopback,
//! driven by a hand-written node client: what it refuses and why
//! (malformed updates, unknown or revoked certificates, late updates).

use std::time::Duration;

use fed::plan::TrainingPlan;
use harness::{self as demo, Credentials};
use learn::Weights;
use protocol::convert::model_message;
use protocol::v1::{self, coordinator_client::CoordinatorClient, task::Kind};
use tonic::Code;

fn plan(rounds: u32) -> TrainingPlan {
    let mut p = TrainingPlan::heart_disease_default();
    p.rounds = rounds;
    p
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
        let contribution = fed::contribution::Contribution {
            round,
            update_sha256: model.sha256.clone(),
            num_samples: 10,
            train: m,
            global_test: m,
            code_hash: plan.code_hash(),
            epsilon_round_micro: 0,
            epsilon_total_micro: 0,
        };
        let entry = self
            .ledger
            .as_ref()
            .unwrap()
            .contribution(plan, &contribution)
            .unwrap();
        let signed = fed::contribution::SignedContribution {
            contribution,
            entry,
        };
        v1::ModelUpdate {
            plan_id: plan.plan_id(),
            weights: Some(model),
            contribution: Some((&signed).into()),
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
    u.contribution.as_mut().unwrap().num_samples = 11; // the signed contribution entry says 10
    refuse(Code::InvalidArgument, "does not state this update")(
        alpha.client.submit_update(u).await,
    );

    let mut u = alpha.update(&plan, 1, &global);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let origin = ledger::entry::LogOrigin::new("cohort.federation/cohort-demo").unwrap();
    let claims = u.contribution.as_mut().unwrap();
    let forged = ledger::entry::SignedEntry::from_bytes(&claims.contribution_entry).unwrap();
    claims.contribution_entry = ledger::entry::SignedEntry::sign(
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
    missing.contribution.as_mut().unwrap().train_metrics = None;
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
