//! `cohort demo` end to end, as a user runs it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cohort");

fn demo(dir: &std::path::Path, seed: &str) -> serde_json::Value {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--rounds",
            "5",
            "--seed",
            seed,
            "--json",
            "results.json",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "federated fedavg",
        "pooled training",
        "local cleveland",
        "FLamby published",
        "report written to report.html",
    ] {
        assert!(
            stdout.contains(expected),
            "output lacks {expected:?}:\n{stdout}"
        );
    }
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn demo_trains_compares_with_baselines_and_writes_report_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let results = demo(dir.path(), "3");
    let methods = results["methods"].as_array().unwrap();
    let names: Vec<&str> = methods
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "federated fedavg",
            "pooled training",
            "local cleveland",
            "local hungarian",
            "local switzerland",
            "local va"
        ]
    );
    for m in methods {
        let pooled = m["pooled"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&pooled));
        assert_eq!(m["per_hospital"].as_object().unwrap().len(), 4);
    }
    assert_eq!(results["rounds"], 5);
    assert_eq!(results["seed"], 3);
    assert_eq!(
        results["curve"].as_array().unwrap().len(),
        6,
        "rounds 0..=5"
    );
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(
        report.matches("<svg").count(),
        3,
        "accuracy, per-hospital and loss plots"
    );
    assert!(report.contains("cleveland") && report.contains("FLamby"));
}

#[test]
fn demo_with_the_same_seed_gives_the_same_results_bit_for_bit() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = demo(a.path(), "11");
    let second = demo(b.path(), "11");
    for key in ["final_model_sha256", "methods", "curve", "plan_id"] {
        assert_eq!(first[key], second[key], "{key} differs");
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["coordinator", "--help"],
        vec!["node", "--help"],
        vec!["ca", "init", "--help"],
        vec!["ca", "issue", "--help"],
        vec!["plan", "code-hash", "--help"],
        vec!["bench", "federation", "--help"],
        vec!["bench", "scale", "--help"],
        vec!["bench", "accuracy", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn unknown_strategy_is_refused_with_the_list_of_known_ones() {
    let out = Command::new(BIN)
        .args(["demo", "--strategy", "fedmagic"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fedmagic") && err.contains("fedyogi"), "{err}");
}

#[test]
fn a_canary_patient_in_an_ehr_never_reaches_the_logs_or_the_coordinator() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let data = work.join("data/heart-disease");
    harness::write_heart_data(&data).unwrap();
    let store_dir = work.join("nodes/hungarian");
    std::fs::create_dir_all(&store_dir).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite:{}", store_dir.join("ehr.sqlite").display());
        let store = ehr::Store::open(&url).await.unwrap();
        ehr::heart::load_centre_files(&store, "hungarian", &data)
            .await
            .unwrap();
        let id = "uci-hungarian-3";
        let mut patient: serde_json::Value =
            serde_json::from_str(&store.read("Patient", id).await.unwrap().content.unwrap())
                .unwrap();
        patient["name"] = json!([{"family": "CANARYFAMILY", "given": ["Zebulon"]}]);
        patient["identifier"] = json!([{"system": "urn:oid:1.2.3", "value": "CANARY-ID-4242"}]);
        let mut tx = store.begin().await.unwrap();
        tx.update("Patient", id, patient, None).await.unwrap();
        tx.commit().await.unwrap();
    });
    let out = Command::new(BIN)
        .args([
            "--log",
            "trace",
            "demo",
            "--rounds",
            "3",
            "--no-baselines",
            "--workdir",
        ])
        .arg(&work)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        logs.contains("training table built through the gate"),
        "the node logged its gate"
    );
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for secret in [
        "CANARYFAMILY",
        "Zebulon",
        "CANARY-ID-4242",
        "uci-hungarian-3",
    ] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
        assert!(!report.contains(secret), "{secret} reached the report");
    }
}
