//! The note-sections task through a whole federation over gRPC with mutual
//! TLS: each hospital's consultation transcripts and the notes its clinicians
//! signed for them, in its own EHR, read through the text gate; the section
//! classifier trained with DP-SGD under secure aggregation; the ledger
//! verifies, and a planted name reaches nothing the coordinator keeps.

use base64::Engine as _;
use fed::plan::{TextTask, TrainingPlan};
use learn::ModelSpec;
use serde_json::{Value, json};

mod common;

/// A name planted in the transcripts, the notes and the patients' records.
const CANARY: &str = "Quixleyvander";

const PARTS: [&str; 4] = ["knee", "shoulder", "ankle", "wrist"];
const MEDS: [&str; 3] = ["ibuprofen", "naproxen", "acetaminophen"];

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Visit `i` of hospital `h`: the patient, the encounter, its transcript and the signed note.
fn visit(h: usize, i: usize) -> Vec<Value> {
    let id = format!("h{h}-v{i}");
    let (part, med, days) = (PARTS[(i + h) % 4], MEDS[i % 3], 2 + i % 5);
    let dialogue = format!(
        "[doctor] good morning mr {CANARY} . what brings you in today ?\n\
         [patient] my {part} has been hurting for {days} days .\n\
         [doctor] any fever or chills ?\n[patient] no fever , no chills .\n\
         [doctor] on exam there is tenderness of the {part} .\n\
         [doctor] let's start {med} twice a day .\n[patient] thank you ."
    );
    let note = format!(
        "CHIEF COMPLAINT\n\n{part} pain.\n\n\
         HISTORY OF PRESENT ILLNESS\n\nMr. {CANARY} reports {part} pain for {days} days.\n\n\
         REVIEW OF SYSTEMS\n\nDenies fever or chills.\n\n\
         PHYSICAL EXAMINATION\n\nTenderness of the {part}.\n\n\
         ASSESSMENT AND PLAN\n\nStart {med} twice a day."
    );
    let document = |kind: &str, status: &str, title: &str, text: &str| {
        json!({
            "resourceType": "DocumentReference", "id": format!("{id}-{kind}"),
            "status": "current", "docStatus": status,
            "type": {"text": title},
            "subject": {"reference": format!("Patient/{id}")},
            "content": [{"attachment": {"contentType": "text/plain", "title": title,
                                         "data": base64(text)}}],
            "context": {"encounter": [{"reference": format!("Encounter/{id}")}]}
        })
    };
    vec![
        json!({"resourceType": "Patient", "id": id,
               "name": [{"family": CANARY, "given": ["John"]}]}),
        json!({"resourceType": "Encounter", "id": id, "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": format!("Patient/{id}")}}),
        document("transcript", "final", "Consultation transcript", &dialogue),
        document("note", "final", "Consultation note", &note),
    ]
}

fn plan() -> TrainingPlan {
    let mut plan = TrainingPlan::heart_disease_default();
    plan.dataset = node::source::SIGNED_NOTES.into();
    plan.model = ModelSpec::ZeroInit {
        tensors: notes::classifier::layout(),
    };
    plan.text_task = Some(TextTask::NoteSections { lang: "en".into() });
    plan.rounds = 4;
    plan.hospitals = vec!["north".into(), "south".into(), "west".into()];
    plan.training.learning_rate = 0.05;
    plan.training.batch_size = 16;
    plan.training.epochs = 2;
    common::private_and_secure(plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospitals_train_the_section_classifier_on_their_signed_notes_through_the_federation() {
    let plan = plan();
    let dir = tempfile::tempdir().unwrap();
    common::load_ehrs(dir.path(), &plan.hospitals, |h| {
        (0..12).flat_map(|i| visit(h, i)).collect()
    })
    .await;
    let (finished, counts) =
        common::run_text_plan(&plan, dir.path(), harness::DataSource::SignedNotes, 24).await;
    let state = &finished.state;
    for (hospital, text) in &counts {
        assert!(text.total_removed() >= 24, "{hospital}: {text:?}");
    }
    let pooled = |m: std::collections::BTreeMap<String, learn::Metrics>| {
        learn::Metrics::pooled(&m.into_values().collect::<Vec<_>>()).accuracy
    };
    let before = pooled(state.history[0].input_test());
    let after = pooled(state.final_evaluation.clone());
    assert!(
        after > before + 0.2,
        "utterance accuracy {before} -> {after}"
    );
    let at_west = common::files_containing(&dir.path().join("nodes/west"), CANARY.as_bytes());
    assert!(!at_west.is_empty());
    let leaked = common::files_containing(&dir.path().join("coordinator"), CANARY.as_bytes());
    assert!(leaked.is_empty(), "{leaked:?}");
}
