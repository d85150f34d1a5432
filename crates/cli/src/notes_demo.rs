//! `cohort notes federate`: the turn-to-section classifier trained across hospitals through
//! the federation. Each ACI-Bench train source (aci, virtassist, virtscribe: three documentation
//! styles) is a hospital whose visits are in its own EHR: the transcript and the note the
//! clinician signed, tied to the encounter. Nodes read the pairs through the text gate
//! (de-identified), label each utterance with the note section it went to, train locally with
//! DP-SGD and send masked updates under secure aggregation; the ledger is audited at the end.
//! The federated classifier and one trained on all the visits at once without DP (pooled) are
//! scored on ACI-Bench valid: utterance accuracy and the drafts' ROUGE.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fed::plan::{TextTask, TrainingPlan};
use harness::DataSource;
use learn::{ModelSpec, Optimizer};
use notes::classifier::{self, SectionClassifier, TrainConfig};
use notes::corpus::Encounter;
use notes::{DraftConfig, Summarizer, Weights};
use serde_json::{Value, json};

use crate::demo::{Protection, load_ehr_once, run_federation};
use crate::notes_cmd::{DataArgs, score_split};

/// Options of `cohort notes federate`.
#[derive(Args)]
pub struct FederateArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Federated rounds.
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    /// Local epochs per round.
    #[arg(long, default_value_t = 2)]
    local_epochs: usize,
    /// Utterances per step (with DP-SGD, the expected number: larger batches spread the
    /// noise over more utterances).
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
    /// DP-SGD noise multiplier of every hospital (0: no differential privacy). Records are
    /// utterances.
    #[arg(long, default_value_t = 2.0)]
    dp_noise: f32,
    /// DP-SGD clipping norm of an utterance's gradient.
    #[arg(long, default_value_t = 1.0)]
    dp_clip: f32,
    /// Each hospital's epsilon budget for the plan (at --delta).
    #[arg(long, default_value_t = 8.0)]
    epsilon_budget: f64,
    /// Delta of the privacy budget.
    #[arg(long, default_value_t = 1e-5)]
    delta: f64,
    /// Secure aggregation (SecAgg+) of the updates.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    secure: bool,
    /// Seed of every hospital's training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep the federation's files (CA, EHRs, ledger) here instead of a temporary directory.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A corpus visit as a hospital's record: the patient (no name: the corpus has none), the
/// encounter, the transcript and the note the clinician signed (`final`), both tied to the
/// encounter, as one transaction.
fn visit_bundle(visit: &Encounter) -> Value {
    use base64::Engine as _;
    let id = format!("visit-{}", visit.id.to_lowercase().replace('_', "-"));
    let (patient, encounter) = (format!("Patient/{id}"), format!("Encounter/{id}"));
    let document = |kind: &str, title: &str, text: &str| {
        json!({
            "resourceType": "DocumentReference", "id": format!("{id}-{kind}"),
            "status": "current", "docStatus": "final", "type": {"text": title},
            "subject": {"reference": patient},
            "content": [{"attachment": {
                "contentType": "text/plain; charset=utf-8", "title": title,
                "data": base64::engine::general_purpose::STANDARD.encode(text)}}],
            "context": {"encounter": [{"reference": encounter}]}
        })
    };
    ehr::bundle::put_transaction([
        json!({"resourceType": "Patient", "id": id}),
        json!({
            "resourceType": "Encounter", "id": id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": patient}
        }),
        document("transcript", "Consultation transcript", &visit.dialogue),
        document("note", "Consultation note", &visit.note),
    ])
}

/// Local settings of the classifier, as `cohort notes train` uses them.
fn local_config(args: &FederateArgs) -> TrainConfig {
    TrainConfig {
        epochs: args.local_epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        ..TrainConfig::default()
    }
}

fn section_plan(args: &FederateArgs, hospitals: Vec<String>) -> anyhow::Result<TrainingPlan> {
    let config = local_config(args);
    let mut plan = TrainingPlan::heart_disease_default();
    plan.name = "aci-bench section classifier".into();
    plan.dataset = node::source::SIGNED_NOTES.into();
    plan.model = ModelSpec::ZeroInit {
        tensors: classifier::layout(),
    };
    plan.text_task = Some(TextTask::NoteSections { lang: "en".into() });
    plan.standardize = false;
    plan.rounds = args.rounds;
    plan.seed = args.seed;
    plan.min_hospitals = hospitals.len();
    plan.hospitals = hospitals;
    plan.round_deadline_secs = 600;
    plan.training.epochs = config.epochs;
    plan.training.batch_size = config.batch_size;
    plan.training.learning_rate = config.learning_rate as f32;
    plan.training.weight_decay = config.weight_decay as f32;
    plan.training.optimizer = Optimizer::Adam;
    Protection {
        dp_noise: args.dp_noise,
        dp_clip: args.dp_clip,
        epsilon_budget: args.epsilon_budget,
        delta: args.delta,
        secure: args.secure,
        max_samples: 100_000,
    }
    .apply(plan)
}

/// Utterance accuracy and draft ROUGE of `weights` on `valid`.
fn score(weights: &Weights, valid: &[Encounter]) -> anyhow::Result<Value> {
    let examples = notes::align::corpus_examples(valid, &[])?;
    let summarizer = Summarizer::new(SectionClassifier::new(weights)?, DraftConfig::default());
    let s = score_split(&summarizer, valid)?;
    Ok(json!({
        "utterance_accuracy": classifier::fit(weights, &examples)?.accuracy,
        "rouge1": 100.0 * s.rouge.rouge1, "rouge2": 100.0 * s.rouge.rouge2,
        "rouge_lsum": 100.0 * s.rouge.rouge_lsum,
    }))
}

/// Run `cohort notes federate`.
pub async fn run(args: FederateArgs) -> anyhow::Result<()> {
    let train = args.data.aci_bench("train")?;
    let valid = args.data.aci_bench("valid")?;
    let mut sources: Vec<String> = train.iter().map(|v| v.dataset.clone()).collect();
    sources.sort();
    sources.dedup();
    let hospitals: Vec<String> = sources.iter().map(|s| format!("aci-bench-{s}")).collect();
    let plan = section_plan(&args, hospitals.clone())?;
    let temp = tempfile::tempdir()?;
    let workdir = args.workdir.clone().unwrap_or_else(|| temp.path().into());
    println!(
        "cohort notes federate: {} hospitals, {} rounds of {} local epochs",
        plan.hospitals.len(),
        plan.rounds,
        args.local_epochs
    );
    println!("plan {}  code {}", plan.plan_id(), plan.code_hash());
    for (source, hospital) in sources.iter().zip(&hospitals) {
        let bundles: Vec<Value> = train
            .iter()
            .filter(|v| &v.dataset == source)
            .map(visit_bundle)
            .collect();
        let visits = bundles.len();
        load_ehr_once(&workdir, hospital, bundles).await?;
        println!(
            "  {hospital}: {} visits in its EHR (transcript + signed note)",
            visits
        );
    }
    let state = run_federation(
        &plan,
        &workdir,
        DataSource::SignedNotes,
        args.workdir.is_some(),
    )
    .await?;
    let global = harness::stored_model(&workdir, &state.global_sha256)?;
    let pooled_examples = notes::align::corpus_examples(&train, &[])?;
    let pooled_config = TrainConfig {
        epochs: args.local_epochs * args.rounds as usize,
        ..local_config(&args)
    };
    let (pooled, _) = classifier::train_local(
        &classifier::initial_weights(),
        &pooled_examples,
        &pooled_config,
        args.seed,
    )?;
    let results = json!({
        "hospitals": plan.hospitals, "rounds": plan.rounds, "local_epochs": args.local_epochs,
        "dp_noise": args.dp_noise, "delta": args.delta, "secure_aggregation": args.secure,
        "epsilon": crate::results::epsilon_spent(&state),
        "final_model_sha256": state.global_sha256,
        "federated": score(&global, &valid)?,
        "pooled_no_dp": score(&pooled, &valid)?,
    });
    println!("ACI-Bench valid: utterance accuracy, ROUGE-1/2/Lsum of the drafts");
    for name in ["federated", "pooled_no_dp"] {
        let s = &results[name];
        println!(
            "  {name:<14} {:.3}   {:.2} / {:.2} / {:.2}",
            s["utterance_accuracy"].as_f64().unwrap_or(f64::NAN),
            s["rouge1"].as_f64().unwrap_or(f64::NAN),
            s["rouge2"].as_f64().unwrap_or(f64::NAN),
            s["rouge_lsum"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}
