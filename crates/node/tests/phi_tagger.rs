//! The PHI tagger trained through a whole federation over gRPC with mutual TLS: each
//! hospital's notes, in its own EHR, labelled by the de-identification rules with the patient's
//! record as context (the record names the relatives that no cue announces); DP-SGD under
//! secure aggregation; the ledger verifies; the kept tagger then finds a name that is in no
//! record, in a sentence the rules alone leave whole; a planted name reaches nothing the
//! coordinator keeps.

use base64::Engine as _;
use deid::text::tagger::Tagger;
use deid::text::{Context, Deidentifier, Lang, Replacement, TextOptions};
use fed::plan::{TextTask, TrainingPlan};
use learn::ModelSpec;
use serde_json::{Value, json};

mod common;

/// The family name of every patient, planted in the records and the notes.
const CANARY: &str = "Quixleyvander";

const ONSETS: [&str; 8] = ["Dr", "Vel", "Ost", "Mar", "Quen", "Bral", "Sor", "Tev"];
const MIDDLES: [&str; 6] = ["an", "ov", "el", "ir", "ub", "ag"];
const ENDS: [&str; 6] = ["dor", "ik", "ane", "usz", "olt", "ena"];

/// A made-up name that no list holds, different for each (hospital, patient, person).
fn made_up(h: usize, i: usize, k: usize) -> String {
    let n = h * 97 + i * 13 + k * 5;
    format!(
        "{}{}{}",
        ONSETS[n % 8],
        MIDDLES[(n / 8) % 6],
        ENDS[(n / 48) % 6]
    )
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Patient `i` of hospital `h`: the record (with a relative as contact) and two notes that
/// name the relative without a cue the rules know.
fn patient(h: usize, i: usize) -> Vec<Value> {
    let id = format!("h{h}-p{i}");
    let (relative, other) = (made_up(h, i, 0), made_up(h, i, 1));
    let notes = [
        format!(
            "Plan discussed with {relative} at bedside. {relative} agreed to call {other} \
             tomorrow. Knee pain improving, continue ibuprofen."
        ),
        format!(
            "Follow up with {other} in {} weeks. Signed out to {relative} overnight. \
             Mr. {CANARY} tolerating diet.",
            2 + i % 4
        ),
    ];
    let mut resources = vec![json!({
        "resourceType": "Patient", "id": id,
        "name": [{"family": CANARY, "given": ["John"]}],
        "contact": [{"name": {"family": relative}}, {"name": {"family": other}}]
    })];
    for (k, note) in notes.iter().enumerate() {
        resources.push(json!({
            "resourceType": "DocumentReference", "id": format!("{id}-n{k}"),
            "status": "current", "docStatus": "final",
            "type": {"text": "Progress note"},
            "subject": {"reference": format!("Patient/{id}")},
            "content": [{"attachment": {"contentType": "text/plain", "data": base64(note)}}]
        }));
    }
    resources
}

fn plan() -> TrainingPlan {
    let mut plan = TrainingPlan::heart_disease_default();
    plan.dataset = node::source::TAGGER_NOTES.into();
    plan.model = ModelSpec::ZeroInit {
        tensors: deid::text::tagger::model(Lang::En).layout(),
    };
    plan.text_task = Some(TextTask::PhiTagger { lang: "en".into() });
    plan.rounds = 4;
    plan.hospitals = vec!["north".into(), "south".into(), "west".into()];
    plan.training.learning_rate = 0.05;
    plan.training.batch_size = 16;
    plan.training.epochs = 2;
    common::private_and_secure(plan)
}

fn names_found(deid: &Deidentifier, text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    deid.detect(text, &Context::default())
        .iter()
        .map(|s| chars[s.start..s.end].iter().collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospitals_train_the_phi_tagger_on_their_notes_through_the_federation() {
    let plan = plan();
    let dir = tempfile::tempdir().unwrap();
    common::load_ehrs(dir.path(), &plan.hospitals, |h| {
        (0..12).flat_map(|i| patient(h, i)).collect()
    })
    .await;
    let (finished, _) =
        common::run_text_plan(&plan, dir.path(), harness::DataSource::TaggerNotes, 24).await;
    let state = &finished.state;
    let pooled = |m: std::collections::BTreeMap<String, learn::Metrics>| {
        learn::Metrics::pooled(&m.into_values().collect::<Vec<_>>()).loss
    };
    let before = pooled(state.history[0].input_test());
    let after = pooled(state.final_evaluation.clone());
    assert!(after < before * 0.7, "held-out loss {before} -> {after}");

    // The tagger each hospital kept finds a name that is in no record, where the rules alone
    // (and the shipped tagger) leave it.
    let kept = node::task::tagger_models(&dir.path().join("nodes/west"));
    let file = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .expect("a kept tagger");
    let weights = learn::Weights::from_safetensors(&std::fs::read(file).unwrap()).unwrap();
    let rules = Deidentifier::new(
        Lang::En,
        None,
        TextOptions {
            replacement: Replacement::Tags,
        },
    )
    .unwrap();
    let shipped = rules
        .clone()
        .with_tagger(Tagger::shipped(Lang::En))
        .unwrap();
    let federated = rules
        .clone()
        .with_tagger(Tagger::new(Lang::En, &weights).unwrap())
        .unwrap();
    let unseen = "Plan discussed with Zembrowitz at bedside.";
    assert!(names_found(&rules, unseen).is_empty());
    assert!(names_found(&shipped, unseen).is_empty());
    assert_eq!(names_found(&federated, unseen), ["Zembrowitz"]);
    let clinical = "Knee pain improving, continue ibuprofen. Tolerating diet.";
    assert!(names_found(&federated, clinical).is_empty());

    let at_west = common::files_containing(&dir.path().join("nodes/west"), CANARY.as_bytes());
    assert!(!at_west.is_empty());
    let leaked = common::files_containing(&dir.path().join("coordinator"), CANARY.as_bytes());
    assert!(leaked.is_empty(), "{leaked:?}");
}
