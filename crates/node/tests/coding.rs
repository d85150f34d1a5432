//! The coding task through a whole federation over gRPC with mutual TLS: each
//! hospital's notes and its coders' Claims in its own EHR, read through the text
//! gate, trained with DP-SGD under secure aggregation; the ledger verifies and
//! records the gate's counts, and a patient's name planted in the notes reaches
//! nothing the coordinator keeps.

use std::collections::BTreeMap;

use billing::corpus::{Case, Split};
use billing::features::Featurizer;
use billing::{CoderSpec, Label};
use fed::plan::{TextTask, TrainingPlan};
use serde_json::json;

mod common;

/// A name planted in the notes and the patients' records of every hospital.
const CANARY: &str = "Quixleyvander";

/// Findings and the code each one teaches.
const FINDINGS: [(&str, &str, &str); 4] = [
    (
        "D",
        "I10",
        "longstanding arterial hypertension treated with amlodipine",
    ),
    ("D", "E11.9", "type 2 diabetes mellitus on metformin"),
    (
        "D",
        "J18.9",
        "community acquired pneumonia with lobar consolidation",
    ),
    ("P", "0DTJ4ZZ", "laparoscopic appendectomy was performed"),
];

/// `n` notes of hospital `h`: each names the patient and two findings.
fn split(h: usize, n: usize) -> Split {
    let mut split = Split {
        cases: Vec::new(),
        diagnoses: BTreeMap::new(),
        procedures: BTreeMap::new(),
        evidence: BTreeMap::new(),
    };
    for i in 0..n {
        let id = format!("h{h}-case{i:03}");
        let (a, b) = ((i + h) % 4, (i / 4 + 1 + h) % 4);
        let mut text = format!("Mr. John {CANARY} was admitted on March 3, 2024. ");
        for f in [a, b] {
            text.push_str(&format!("History: {}. ", FINDINGS[f].2));
        }
        text.push_str(&format!("Seen by Dr. {CANARY}'s colleague on the ward."));
        for f in [a, b] {
            let (system, code, _) = FINDINGS[f];
            let list = match system {
                "D" => &mut split.diagnoses,
                _ => &mut split.procedures,
            };
            list.entry(id.clone())
                .or_default()
                .push(code.to_lowercase());
        }
        split.cases.push(Case { id, text });
    }
    split
}

fn spec() -> CoderSpec {
    let mut labels: Vec<Label> = FINDINGS
        .iter()
        .map(|(s, c, _)| Label::from_key(&format!("{s}|{c}")).unwrap())
        .collect();
    labels.sort();
    CoderSpec {
        lang: billing::corpus::Lang::En,
        featurizer: Featurizer {
            buckets: 1 << 10,
            max_n: 2,
        },
        dim: 8,
        labels,
    }
}

fn plan() -> TrainingPlan {
    let spec = spec();
    let mut plan = TrainingPlan::heart_disease_default();
    plan.dataset = node::source::CODED_NOTES.into();
    plan.model = spec.model_spec();
    plan.text_task = Some(TextTask::Coding {
        lang: "en".into(),
        max_n: 2,
        labels: spec.labels.iter().map(Label::key).collect(),
    });
    plan.rounds = 6;
    plan.hospitals = vec!["north".into(), "south".into(), "west".into()];
    plan.training.learning_rate = 0.1;
    plan.training.batch_size = 8;
    plan.training.epochs = 2;
    common::private_and_secure(plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospitals_train_the_code_model_on_their_coded_notes_through_the_federation() {
    let plan = plan();
    let dir = tempfile::tempdir().unwrap();
    common::load_ehrs(dir.path(), &plan.hospitals, |h| {
        let notes = split(h, 40);
        (0..notes.cases.len())
            .map(|i| {
                let mut bundle =
                    billing::coded::case_bundle(&notes, i, "2024-03-03T09:00:00Z").unwrap();
                bundle["entry"][0]["resource"]["name"] =
                    json!([{"family": CANARY, "given": ["John"]}]);
                bundle
            })
            .collect()
    })
    .await;

    // Every round done, the ledger verifies offline and holds each hospital's text-gate
    // counts, and every hospital spent privacy budget on DP-SGD.
    let (finished, counts) =
        common::run_text_plan(&plan, dir.path(), harness::DataSource::CodedNotes, 40).await;
    let state = &finished.state;
    for (hospital, text) in &counts {
        let names = text
            .removed()
            .iter()
            .find(|c| c.kind == ledger::entry::PhiCategory::Name)
            .map_or(0, |c| c.count);
        assert!(names >= 80, "{hospital}: {names} names removed");
    }

    // The federated model learned the codes: the held-out notes' best code is theirs more
    // often than under the initial model.
    let initial = plan.model.init(plan.seed);
    let initial_sha = initial.sha256_hex();
    assert_ne!(state.global_sha256, initial_sha);
    let first = &state.history[0];
    let last = &state.final_evaluation;
    let accuracy = |m: &BTreeMap<String, learn::Metrics>| {
        learn::Metrics::pooled(&m.values().cloned().collect::<Vec<_>>()).accuracy
    };
    let before = accuracy(&first.input_test());
    let after = accuracy(last);
    assert!(after > before, "precision at 1 {before} -> {after}");
    // The held-out notes are the patients whose keyed pseudonym falls in one fifth: 15 to 26
    // notes, as each EHR draws its own pseudonym key; 1.0 on most draws, 0.87 seen once.
    assert!(after >= 0.8, "precision at 1 after training: {after}");

    // Each node kept the final model to code its visits with.
    for hospital in &plan.hospitals {
        let models = node::task::coding_models(&dir.path().join("nodes").join(hospital));
        let kept: Vec<_> = std::fs::read_dir(&models).unwrap().collect();
        assert_eq!(kept.len(), 1, "{hospital}");
        let coder = billing::Coder::load(&kept[0].as_ref().unwrap().path()).unwrap();
        assert_eq!(coder.weights.sha256_hex(), state.global_sha256);
    }

    // The planted name is in each hospital's EHR but in nothing the coordinator keeps.
    assert!(
        !common::files_containing(&dir.path().join("nodes/north"), CANARY.as_bytes()).is_empty()
    );
    let leaked = common::files_containing(&dir.path().join("coordinator"), CANARY.as_bytes());
    assert!(leaked.is_empty(), "{leaked:?}");
}
