//! What the text-task federation tests share: the plan's protections and the
//! search for a planted name in what a party keeps.

use std::path::Path;

use fed::plan::{PrivacyBudget, SecureAggregation, TrainingPlan};
use learn::{DpSgd, Optimizer};

/// `plan` with AdamW, DP-SGD (noise 0.8, clip 1) under a budget that does not bind, and
/// secure aggregation; checked.
pub fn private_and_secure(mut plan: TrainingPlan) -> TrainingPlan {
    plan.standardize = false;
    plan.training.optimizer = Optimizer::Adam;
    plan.training.dp = Some(DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 0.8,
    });
    plan.privacy_budget = Some(PrivacyBudget {
        epsilon: 1000.0,
        delta: 1e-4,
    });
    plan.secure_aggregation = Some(SecureAggregation {
        range: fed::secure_round::weighted_mean_range(1000, 1.0).unwrap(),
        num_shares: None,
    });
    plan.validate().unwrap();
    plan
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// A transaction Bundle that puts each of `resources` at its own type and id.
fn put_bundle(resources: Vec<serde_json::Value>) -> serde_json::Value {
    let entry: Vec<serde_json::Value> = resources
        .into_iter()
        .map(|resource| {
            let url = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            );
            serde_json::json!({"resource": resource, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entry})
}

/// Load each hospital's EHR (under `dir`, where the harness's nodes find them) with what
/// `records(h)` gives for hospital number `h`: transaction Bundles, or resources, put at their
/// own type and id in one transaction.
pub async fn load_ehrs(
    dir: &Path,
    hospitals: &[String],
    records: impl Fn(usize) -> Vec<serde_json::Value>,
) {
    for (h, hospital) in hospitals.iter().enumerate() {
        let store = harness::node_ehr(dir, hospital).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let (mut bundles, resources): (Vec<_>, Vec<_>) = records(h)
            .into_iter()
            .partition(|r| r["resourceType"] == "Bundle");
        if !resources.is_empty() {
            bundles.push(put_bundle(resources));
        }
        for mut bundle in bundles {
            ehr::bundle::transaction(&mut tx, &mut bundle)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// Run `plan` to completion on the hospitals' EHR texts (`source`) and check what every text
/// plan must: every round done with every hospital, the ledger verifies offline, each hospital
/// signed its text gate's counts of `documents` documents and spent privacy budget. Returns the
/// outcome and each hospital's counts.
pub async fn run_text_plan(
    plan: &TrainingPlan,
    dir: &Path,
    source: harness::DataSource,
    documents: u64,
) -> (
    harness::Finished,
    std::collections::BTreeMap<String, ledger::entry::TextPrepared>,
) {
    let finished = harness::start_federation_from(plan, dir, source)
        .await
        .unwrap()
        .finish(|_| {})
        .await
        .unwrap();
    let state = &finished.state;
    assert_eq!(state.phase, fed::plan_run::Phase::Completed);
    assert_eq!(state.history.len(), plan.rounds as usize);
    assert!(
        state
            .history
            .iter()
            .all(|r| r.contributions.len() == plan.hospitals.len())
    );
    let report = ledger::audit::verify_log(&finished.ledger.policy, &finished.ledger.log_dir);
    assert!(report.is_clean(), "{report}");
    let mut counts = std::collections::BTreeMap::new();
    for hospital in &plan.hospitals {
        let entry = state.reviews[hospital].dataset_entry.clone().unwrap();
        let ledger::entry::Statement::TextDatasetPrepared(t) = entry.statement() else {
            panic!("{hospital} signed {:?}", entry.statement());
        };
        assert_eq!(t.text.total_documents(), documents, "{hospital}: {t:?}");
        assert!(state.epsilon_spent_micro[hospital] > 0, "{hospital}");
        counts.insert(hospital.clone(), t.text.clone());
    }
    (finished, counts)
}
