//! A hospital node in a whole federation over real gRPC with mutual TLS on
//! loopback: its review against the allow-list, its log of disclosures, its
//! privacy budget, training from its own EHR, ultrasound filing and consent.

use fed::plan::TrainingPlan;
use fed::plan_run::Phase;
use harness::{self as demo, Credentials};

#[path = "../../deid/tests/common/fixtures.rs"]
mod fixtures;

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
            .all(|r| !r.contributions.contains_key("hungarian"))
    );
    for n in nodes {
        n.await.unwrap().unwrap();
    }
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
        .map(|r| {
            r.contributions["cleveland"]
                .contribution
                .update_sha256
                .as_str()
        })
        .collect();
    assert_eq!(
        sent, accepted,
        "the log names exactly the updates the coordinator aggregated"
    );
    federation.finish(|_| {}).await.unwrap();
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
    assert!(!last.contributions.contains_key("switzerland"));
}

/// Every file under `dir` with its bytes. The coordinator may still be writing: a file that is
/// gone by the time it is read (a database journal, an atomic write's temporary) is not stored
/// data and is skipped.
fn all_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Err(e) if gone(&e) => return out,
        entries => entries.unwrap(),
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            match std::fs::read(&path) {
                Err(e) if gone(&e) => {}
                bytes => out.push((path.clone(), bytes.unwrap())),
            }
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

    let federation = demo::start_federation_from(&plan, dir.path(), demo::DataSource::Ehr)
        .await
        .unwrap();
    let api = federation.nodes[0].1.api_address.unwrap();
    let metadata = tokio::task::spawn_blocking(move || http_get(api, "/fhir/metadata"))
        .await
        .unwrap();
    assert!(metadata.contains("CapabilityStatement"), "{metadata}");
    let ehr = federation.finish(|_| {}).await.unwrap().state;
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

    let federation = demo::start_federation_from(&plan, dir.path(), demo::DataSource::Ehr)
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
    federation.finish(|_| {}).await.unwrap();
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

    let finished = demo::start_federation_from(&plan, dir.path(), demo::DataSource::Ehr)
        .await
        .unwrap()
        .finish(|_| {})
        .await
        .unwrap();
    // Cleveland trains on 198 of its 199 training records.
    assert_eq!(
        finished.state.history[0].contributions["cleveland"]
            .contribution
            .num_samples,
        198
    );
    let entry = finished.state.reviews["cleveland"]
        .dataset_entry
        .clone()
        .unwrap();
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
