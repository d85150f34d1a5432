//! `cohort billing`: clinical coding — train the code model, code case texts with ranked codes
//! and evidence spans, score predictions with the CodiEsp metrics, and turn an EHR encounter
//! into a reviewed claim.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use billing::claim::{Decision, Encounter, FeeSchedule};
use billing::codiesp::{code_cases, evaluate, spec_for};
use billing::corpus::{CodeSystem, Lang, Split, read_cases};
use billing::encounter::{
    CodeDecision, find_coverage, read_encounter_note, review, suggest_note, write_claim,
};
use billing::features::Featurizer;
use billing::metrics::Predictions;
use billing::{Coder, TrainConfig, examples};
use clap::{Subcommand, ValueEnum};

/// Clinical coding commands.
#[derive(Subcommand)]
pub enum BillingCommand {
    /// Train the code model across simulated hospitals through the federation: each holds a
    /// share of CodiEsp's train cases in its own EHR (notes + the coders' Claims), trains on
    /// them through the text gate with DP-SGD, updates combined by secure aggregation over
    /// gRPC + mutual TLS; the ledger is audited, then federated, pooled and local-only models
    /// are scored on CodiEsp dev.
    Federate(crate::coding_demo::FederateArgs),
    /// Train a code model on a CodiEsp-layout split (texts + `*D.tsv` / `*P.tsv`); its label
    /// space is the codes of that split.
    Train {
        /// Split folder (e.g. codiesp/train).
        split: PathBuf,
        /// Language of the texts.
        #[arg(long, value_enum, default_value = "es")]
        lang: LangArg,
        /// Model folder to write.
        #[arg(long)]
        out: PathBuf,
        /// Hash buckets, as a power of two.
        #[arg(long, default_value_t = 15)]
        buckets_log2: u32,
        /// Longest word n-gram.
        #[arg(long, default_value_t = 2)]
        max_n: usize,
        /// Document embedding width.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Training epochs.
        #[arg(long, default_value_t = TrainConfig::default().epochs)]
        epochs: usize,
        /// Documents per step.
        #[arg(long, default_value_t = TrainConfig::default().batch_size)]
        batch_size: usize,
        /// AdamW learning rate.
        #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
        learning_rate: f64,
        /// AdamW weight decay.
        #[arg(long, default_value_t = TrainConfig::default().weight_decay)]
        weight_decay: f64,
        /// Seed of the initial weights and the shuffles.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Code every `*.txt` case of a folder: case id -> ranked `[{code, system, score, evidence}]`.
    Code {
        /// Folder of case texts, one file per case.
        input: PathBuf,
        /// Model folder (from `cohort billing train`).
        #[arg(long)]
        model: PathBuf,
        /// Language of the texts (must be the model's).
        #[arg(long, value_enum, default_value = "es")]
        lang: LangArg,
        /// Codes kept per system and case.
        #[arg(long, default_value_t = 100)]
        top: usize,
        /// Where to write the predictions.
        #[arg(long)]
        json: PathBuf,
    },
    /// Score predictions against a split's gold files: CodiEsp MAP (D and P), micro-F1 at the
    /// best threshold, and evidence precision/recall (CodiEsp-X, spans overlapping).
    Eval {
        /// Predictions (from `cohort billing code`, or any `{case: [{code, score}]}` file).
        #[arg(long)]
        pred: PathBuf,
        /// Split folder with the gold `*D.tsv`, `*P.tsv`, `*X.tsv`.
        #[arg(long)]
        gold: PathBuf,
    },
    /// Code an encounter of a node's EHR and write its claim. Reads the encounter's latest
    /// DocumentReference with a text attachment and suggests codes with evidence; without
    /// decisions it prints them (JSON) and writes nothing. With the coder's decisions
    /// (`--accept`, `--reject`, `--decisions`) it writes the Claim, a ChargeItem per accepted
    /// procedure and a Provenance per decision into the store, and prints their ids.
    Claim {
        /// The Encounter's id.
        #[arg(long)]
        encounter: String,
        /// The EHR database (e.g. `sqlite:///var/lib/cohort/ehr.db`).
        #[arg(long)]
        db: String,
        /// Model folder (from `cohort billing train`).
        #[arg(long)]
        model: PathBuf,
        /// Codes suggested per system.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// A code the coder accepts, in claim order (the first diagnosis is principal);
        /// `diagnosis:CODE` or `procedure:CODE` for a code that was not suggested. Repeatable.
        #[arg(long)]
        accept: Vec<String>,
        /// A suggested code the coder rejects. Repeatable.
        #[arg(long)]
        reject: Vec<String>,
        /// JSON list of `{"code", "decision": "accepted"|"rejected", "system"?}`, in claim
        /// order (after any `--accept` / `--reject`).
        #[arg(long)]
        decisions: Option<PathBuf>,
        /// The coder, as a FHIR reference (`Practitioner/<id>`).
        #[arg(long)]
        coder: Option<String>,
        /// The Coverage to bill (default: the patient's first Coverage in the store).
        #[arg(long)]
        coverage: Option<String>,
        /// The billing Organization (default: the encounter's service provider).
        #[arg(long)]
        provider: Option<String>,
        /// Fee schedule: `code,amount` lines.
        #[arg(long)]
        fees: Option<PathBuf>,
        /// Currency of the fees (ISO 4217).
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// Price of a code without a fee.
        #[arg(long, default_value_t = 0.0)]
        default_fee: f64,
    },
}

/// Arguments of `cohort billing claim`.
struct ClaimArgs {
    encounter: String,
    db: String,
    model: PathBuf,
    top: usize,
    decisions: Vec<CodeDecision>,
    coder: Option<String>,
    coverage: Option<String>,
    provider: Option<String>,
    fees: FeeSchedule,
}

/// A `--accept` / `--reject` value: `CODE`, `diagnosis:CODE` or `procedure:CODE`.
fn flag_decision(value: &str, decision: Decision) -> CodeDecision {
    let (system, code) = match value.split_once(':') {
        Some(("diagnosis", code)) => (Some(CodeSystem::Diagnosis), code),
        Some(("procedure", code)) => (Some(CodeSystem::Procedure), code),
        _ => (None, value),
    };
    CodeDecision {
        code: code.to_string(),
        decision,
        system,
    }
}

/// Suggests codes for the encounter; with decisions, writes the claim.
async fn claim(args: ClaimArgs) -> anyhow::Result<serde_json::Value> {
    let coder = Coder::load(&args.model)?;
    let store = ehr::Store::open(&args.db)
        .await
        .with_context(|| format!("opening the EHR {}", args.db))?;
    let note = read_encounter_note(&store, &args.encounter).await?;
    let suggestions = suggest_note(&coder, &note, args.top)?;
    let mut out = serde_json::json!({"document": note.document, "suggestions": suggestions});
    if args.decisions.is_empty() {
        return Ok(out);
    }
    let reviewed = review(&suggestions, &args.decisions)?;
    let coverage = match args.coverage {
        Some(c) => c,
        None => find_coverage(&store, &note.patient)
            .await?
            .with_context(|| format!("{} has no Coverage: pass --coverage", note.patient))?,
    };
    let encounter = Encounter {
        provider: args
            .provider
            .or(note.provider)
            .context("the encounter names no service provider: pass --provider")?,
        coder: args
            .coder
            .context("recording decisions needs the coder: pass --coder Practitioner/<id>")?,
        patient: note.patient,
        encounter: note.encounter,
        coverage,
        document: note.document,
        date: ehr::datetime::format_instant(ehr::datetime::now_micros()),
    };
    let written = write_claim(&store, &encounter, &reviewed, &args.fees).await?;
    store.close().await;
    out["written"] = serde_json::to_value(written)?;
    Ok(out)
}

/// Case-text language.
#[derive(Clone, Copy, ValueEnum)]
pub enum LangArg {
    /// Spanish.
    Es,
    /// English.
    En,
}

impl From<LangArg> for Lang {
    fn from(lang: LangArg) -> Self {
        match lang {
            LangArg::Es => Lang::Es,
            LangArg::En => Lang::En,
        }
    }
}

/// Runs a `cohort billing` command.
///
/// # Errors
/// When a file cannot be read or written, or does not fit the model.
pub fn run(cmd: BillingCommand) -> anyhow::Result<()> {
    match cmd {
        BillingCommand::Federate(args) => {
            tokio::runtime::Runtime::new()?.block_on(crate::coding_demo::run(args))
        }
        BillingCommand::Train {
            split,
            lang,
            out,
            buckets_log2,
            max_n,
            dim,
            epochs,
            batch_size,
            learning_rate,
            weight_decay,
            seed,
        } => {
            let lang = Lang::from(lang);
            let split = Split::load(&split, lang)?;
            let buckets = 1u32
                .checked_shl(buckets_log2)
                .filter(|_| buckets_log2 < 32)
                .context("--buckets-log2 must be below 32")?;
            let spec = spec_for(&split, lang, Featurizer { buckets, max_n }, dim);
            let cfg = TrainConfig {
                epochs,
                batch_size,
                learning_rate,
                weight_decay,
                dp: None,
            };
            let clock = Instant::now();
            let data = examples(&spec, &split);
            let (weights, report) = billing::train(&spec, &spec.init(seed), &data, &cfg, seed)?;
            let seconds = clock.elapsed().as_secs_f64();
            println!(
                "{} cases, {} labels, {} parameters; loss {:.3} -> {:.3}; {seconds:.1} s ({:.2} s an epoch)",
                data.len(),
                spec.labels.len(),
                weights.len(),
                report.epoch_losses.first().copied().unwrap_or(f32::NAN),
                report.epoch_losses.last().copied().unwrap_or(f32::NAN),
                seconds / epochs as f64
            );
            Coder::new(spec, weights)?.save(&out)?;
            Ok(())
        }
        BillingCommand::Code {
            input,
            model,
            lang,
            top,
            json,
        } => {
            let coder = Coder::load(&model)?;
            anyhow::ensure!(
                coder.spec.lang == Lang::from(lang),
                "the model reads {:?} texts, not {:?}",
                coder.spec.lang,
                Lang::from(lang)
            );
            let cases = read_cases(&input)?;
            let clock = Instant::now();
            let predictions = code_cases(&coder, &cases, top)?;
            let seconds = clock.elapsed().as_secs_f64();
            write_json(&json, &predictions)?;
            println!(
                "{} cases coded in {seconds:.2} s ({:.1} ms a case)",
                predictions.len(),
                1000.0 * seconds / predictions.len().max(1) as f64
            );
            Ok(())
        }
        BillingCommand::Eval { pred, gold } => {
            let bytes =
                std::fs::read(&pred).with_context(|| format!("reading {}", pred.display()))?;
            let predictions: Predictions = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a predictions file", pred.display()))?;
            // Gold files only: the texts' language does not matter here.
            let report = evaluate(&predictions, &Split::load(&gold, Lang::Es)?);
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        BillingCommand::Claim {
            encounter,
            db,
            model,
            top,
            accept,
            reject,
            decisions,
            coder,
            coverage,
            provider,
            fees,
            currency,
            default_fee,
        } => {
            let mut list: Vec<CodeDecision> = accept
                .iter()
                .map(|c| flag_decision(c, Decision::Accepted))
                .chain(reject.iter().map(|c| flag_decision(c, Decision::Rejected)))
                .collect();
            if let Some(path) = decisions {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let file: Vec<CodeDecision> = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a decisions list", path.display()))?;
                list.extend(file);
            }
            let fee_text = match &fees {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => String::new(),
            };
            let args = ClaimArgs {
                encounter,
                db,
                model,
                top,
                decisions: list,
                coder,
                coverage,
                provider,
                fees: FeeSchedule::parse(&currency, default_fee, &fee_text)?,
            };
            let out = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(claim(args))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(value)?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
