//! `cohort billing federate`: the coding model trained across hospitals through the
//! federation. Each simulated hospital holds a share of CodiEsp's train cases in its own EHR
//! (patient, encounter, note and the coders' Claim, as FHIR); its node reads the coded notes
//! through the text gate (de-identified, consent applied), trains the code model locally with
//! DP-SGD, and sends masked updates under secure aggregation over gRPC with mutual TLS; the
//! ledger records every step and is audited offline at the end. The final model, a pooled
//! model and each hospital's local-only model are then scored on CodiEsp dev.

use std::path::PathBuf;

use anyhow::Context;
use billing::codiesp::{Report, code_cases, evaluate, spec_for};
use billing::corpus::{Lang, Split};
use billing::features::Featurizer;
use billing::{Coder, CoderSpec, TrainConfig, Weights, examples};
use clap::Args;
use fed::plan::{TextTask, TrainingPlan};
use harness::DataSource;
use learn::Optimizer;
use serde_json::{Value, json};

use crate::demo::{Protection, load_ehr_once, run_federation};

/// Options of `cohort billing federate`.
#[derive(Args, Clone, Debug)]
pub struct FederateArgs {
    /// CodiEsp folder holding `train/` and `dev/` (English texts, `text_files_en/`, are read).
    pub codiesp: PathBuf,
    /// Simulated hospitals; hospital h holds the train cases whose position is h modulo this.
    #[arg(long, default_value_t = 4)]
    pub hospitals: usize,
    /// Federated rounds.
    #[arg(long, default_value_t = 15)]
    pub rounds: u32,
    /// Local epochs per round.
    #[arg(long, default_value_t = 2)]
    pub local_epochs: usize,
    /// Hash buckets of the model, as a power of two.
    #[arg(long, default_value_t = 14)]
    pub buckets_log2: u32,
    /// Document embedding width.
    #[arg(long, default_value_t = 32)]
    pub dim: usize,
    /// DP-SGD noise multiplier of every hospital (0: no differential privacy).
    #[arg(long, default_value_t = 2.0)]
    pub dp_noise: f32,
    /// DP-SGD clipping norm of a note's gradient.
    #[arg(long, default_value_t = 1.0)]
    pub dp_clip: f32,
    /// Each hospital's epsilon budget for the plan (at --delta).
    #[arg(long, default_value_t = 8.0)]
    pub epsilon_budget: f64,
    /// Delta of the privacy budget.
    #[arg(long, default_value_t = 1e-4)]
    pub delta: f64,
    /// Secure aggregation (SecAgg+) of the updates.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub secure: bool,
    /// Seed of the initial model and of every hospital's training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the pooled and local-only models.
    #[arg(long)]
    pub no_baselines: bool,
    /// Keep the federation's files (CA, EHRs, ledger) here instead of a temporary directory.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Notes per AdamW step, as in `cohort billing train`.
const BATCH: usize = 16;
/// AdamW learning rate.
const LEARNING_RATE: f32 = 0.01;

/// The coding plan: the label space is the public code list (here every code of CodiEsp's
/// published train annotations, standing for the national tables), so agreeing it reveals no
/// hospital's code counts.
fn coding_plan(args: &FederateArgs, spec: &CoderSpec) -> anyhow::Result<TrainingPlan> {
    let mut plan = TrainingPlan::heart_disease_default();
    plan.name = "codiesp coding, embedding bag".into();
    plan.dataset = node::source::CODED_NOTES.into();
    plan.model = spec.model_spec();
    plan.text_task = Some(TextTask::Coding {
        lang: "en".into(),
        max_n: spec.featurizer.max_n,
        labels: spec.labels.iter().map(billing::Label::key).collect(),
    });
    plan.standardize = false;
    plan.rounds = args.rounds;
    plan.seed = args.seed;
    plan.hospitals = (1..=args.hospitals)
        .map(|h| format!("hospital-{h:02}"))
        .collect();
    plan.min_hospitals = args.hospitals;
    plan.round_deadline_secs = 600;
    plan.training.epochs = args.local_epochs;
    plan.training.batch_size = BATCH;
    plan.training.learning_rate = LEARNING_RATE;
    plan.training.optimizer = Optimizer::Adam;
    Protection {
        dp_noise: args.dp_noise,
        dp_clip: args.dp_clip,
        epsilon_budget: args.epsilon_budget,
        delta: args.delta,
        secure: args.secure,
        max_samples: 1000,
    }
    .apply(plan)
}

/// MAP of both code systems and CodiEsp-X F1 of a report, as JSON.
fn scores(report: &Report) -> Value {
    json!({
        "map_diagnosis": report.diagnosis.as_ref().map(|s| s.map),
        "map_procedure": report.procedure.as_ref().map(|s| s.map),
        "codiesp_x_f1": report.evidence.as_ref().map(|p| p.f1),
    })
}

/// Scores of `weights` on `dev`.
fn score(spec: &CoderSpec, weights: &Weights, dev: &Split) -> anyhow::Result<Value> {
    let coder = Coder::new(spec.clone(), weights.clone())?;
    Ok(scores(&evaluate(
        &code_cases(&coder, &dev.cases, 100)?,
        dev,
    )))
}

/// Run `cohort billing federate`.
pub async fn run(args: FederateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.hospitals >= 2, "--hospitals must be at least 2");
    let train = Split::load(&args.codiesp.join("train"), Lang::En)
        .with_context(|| format!("reading {}/train", args.codiesp.display()))?;
    let dev = Split::load(&args.codiesp.join("dev"), Lang::En)
        .with_context(|| format!("reading {}/dev", args.codiesp.display()))?;
    let buckets = 1u32
        .checked_shl(args.buckets_log2)
        .filter(|_| args.buckets_log2 < 32)
        .context("--buckets-log2 must be below 32")?;
    let spec = spec_for(&train, Lang::En, Featurizer { buckets, max_n: 2 }, args.dim);
    let plan = coding_plan(&args, &spec)?;
    let temp = tempfile::tempdir()?;
    let workdir = args.workdir.clone().unwrap_or_else(|| temp.path().into());
    println!(
        "cohort billing federate: {} hospitals, {} rounds of {} local epochs; {} labels, {} parameters",
        args.hospitals,
        plan.rounds,
        args.local_epochs,
        spec.labels.len(),
        plan.model
            .layout()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum::<usize>()
    );
    println!("plan {}  code {}", plan.plan_id(), plan.code_hash());
    for (h, hospital) in plan.hospitals.iter().enumerate() {
        let part = train.share(h, args.hospitals);
        let bundles = (0..part.cases.len())
            .map(|i| billing::coded::case_bundle(&part, i, "2024-03-01T10:00:00Z"))
            .collect::<Result<Vec<_>, _>>()?;
        load_ehr_once(&workdir, hospital, bundles).await?;
        println!(
            "  {hospital}: {} coded notes in its EHR (Patient, Encounter, DocumentReference, Claim)",
            part.cases.len()
        );
    }
    let state = run_federation(
        &plan,
        &workdir,
        DataSource::CodedNotes,
        args.workdir.is_some(),
    )
    .await?;
    let state = &state;
    let epsilon = crate::results::epsilon_spent(state);
    let global = harness::stored_model(&workdir, &state.global_sha256)?;
    let mut results = json!({
        "hospitals": args.hospitals, "rounds": plan.rounds, "local_epochs": args.local_epochs,
        "labels": spec.labels.len(), "secure_aggregation": args.secure,
        "dp_noise": args.dp_noise, "epsilon": epsilon, "delta": args.delta,
        "final_model_sha256": state.global_sha256,
        "federated": score(&spec, &global, &dev)?,
    });
    println!("CodiEsp dev (English), MAP diagnoses / procedures:");
    let line = |name: &str, s: &Value| {
        println!(
            "  {name:<28} {:.4} / {:.4}",
            s["map_diagnosis"].as_f64().unwrap_or(f64::NAN),
            s["map_procedure"].as_f64().unwrap_or(f64::NAN)
        );
    };
    line("federated (through cohort)", &results["federated"]);
    if !args.no_baselines {
        let config = TrainConfig {
            epochs: args.local_epochs * plan.rounds as usize,
            batch_size: BATCH,
            learning_rate: f64::from(LEARNING_RATE),
            ..TrainConfig::default()
        };
        let start = spec.init(args.seed);
        let (pooled, _) = billing::train(&spec, &start, &examples(&spec, &train), &config, 0)?;
        results["pooled"] = score(&spec, &pooled, &dev)?;
        line("pooled, no DP", &results["pooled"]);
        let mut local = Vec::new();
        for (h, hospital) in plan.hospitals.iter().enumerate() {
            let part = train.share(h, args.hospitals);
            let (weights, _) = billing::train(&spec, &start, &examples(&spec, &part), &config, 0)?;
            let s = score(&spec, &weights, &dev)?;
            line(&format!("local only, {hospital}"), &s);
            local.push(json!({"hospital": hospital, "scores": s}));
        }
        results["local_only"] = local.into();
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}
