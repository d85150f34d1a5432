//! `cohort notes`: consultation transcript → structured clinical note (draft, checked facts),
//! its evaluation on ACI-Bench, the section classifier's training, and federated averaging of
//! that classifier over hospitals in one process.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use fed::strategy::{ClientUpdate, StrategyConfig};
use notes::classifier::{self, Example, SectionClassifier, TrainConfig};
use notes::corpus::{self, Encounter, SectionPair};
use notes::eval::{FactFigures, SectionScore, score};
use notes::rouge::Rouge;
use notes::{Draft, DraftConfig, Section, Summarizer, Weights};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Consultation summaries.
#[derive(Subcommand)]
pub enum NotesCommand {
    /// Train the section classifier across hospitals through the federation: each ACI-Bench
    /// train source (aci, virtassist, virtscribe) is a hospital holding its visits in its own
    /// EHR (transcript + signed note); nodes read them through the text gate, train with
    /// DP-SGD, updates combined by secure aggregation over gRPC + mutual TLS; the ledger is
    /// audited, then the federated classifier is scored on ACI-Bench valid.
    Federate(crate::notes_demo::FederateArgs),
    /// Draft the note of one transcript: IN.json `{"dialogue"}` → OUT.json `{"note", "sections",
    /// "flags"}`.
    Summarize {
        /// Input JSON with the transcript in `dialogue` (`[doctor] … [patient] …`).
        input: PathBuf,
        /// Output JSON.
        output: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Train the section classifier on ACI-Bench train notes and MTS-Dialog sections.
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Where to write the weights (safetensors).
        #[arg(long, default_value = "crates/notes/model/sections.safetensors")]
        out: PathBuf,
        /// Passes over the training examples.
        #[arg(long, default_value_t = TrainConfig::default().epochs)]
        epochs: usize,
        /// Seed of the example order.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Draft every ACI-Bench visit of a split and score the drafts: ROUGE-1/2/Lsum, fact
    /// checker figures, time per note.
    Eval {
        #[command(flatten)]
        data: DataArgs,
        /// Split to score (`valid`, or `train`).
        #[arg(long, default_value = "valid")]
        split: String,
        #[command(flatten)]
        model: ModelArgs,
        /// Also write the figures and every draft as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Federated averaging of the section classifier over hospitals in one process (ACI-Bench
    /// subsets and MTS-Dialog as hospitals) beside pooled and local-only training.
    BenchFederated {
        #[command(flatten)]
        data: DataArgs,
        /// Federated rounds.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Local epochs per round.
        #[arg(long, default_value_t = 1)]
        local_epochs: usize,
        /// Seed of the example orders.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// Which classifier and settings draft the notes.
#[derive(Args)]
pub struct ModelArgs {
    /// Section classifier weights (safetensors); the shipped model when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Smallest probability of being in a section for an utterance to be kept.
    #[arg(long, default_value_t = DraftConfig::default().keep_threshold)]
    keep_threshold: f32,
}

/// Where the corpora are.
#[derive(Args)]
pub struct DataArgs {
    /// The clinical-dialogue folder (ACI-Bench and MTS-Dialog); default:
    /// `$COHORT_SHARED_DATA/clinical-dialogue`, else `../shared/data/clinical-dialogue`.
    #[arg(long)]
    data: Option<PathBuf>,
}

impl DataArgs {
    fn root(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(|| {
            std::env::var_os("COHORT_SHARED_DATA")
                .map_or_else(|| PathBuf::from("../shared/data"), PathBuf::from)
                .join("clinical-dialogue")
        })
    }

    pub(crate) fn aci_bench(&self, split: &str) -> anyhow::Result<Vec<Encounter>> {
        let path = self
            .root()
            .join(format!("aci-bench/challenge_data/{split}.csv"));
        Ok(corpus::aci_bench(&read(&path)?)?)
    }

    fn mts_dialog(&self) -> anyhow::Result<Vec<SectionPair>> {
        let path = self
            .root()
            .join("mts-dialog/Main-Dataset/MTS-Dialog-TrainingSet.csv");
        Ok(corpus::mts_dialog(&read(&path)?)?)
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

impl ModelArgs {
    fn summarizer(&self) -> anyhow::Result<Summarizer> {
        let classifier = match &self.model {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                SectionClassifier::new(&Weights::from_safetensors(&bytes)?)?
            }
            None => SectionClassifier::shipped()?,
        };
        Ok(Summarizer::new(
            classifier,
            DraftConfig {
                keep_threshold: self.keep_threshold,
                ..DraftConfig::default()
            },
        ))
    }
}

/// Runs a `cohort notes` command.
///
/// # Errors
/// When an input cannot be read or parsed, or an output cannot be written.
pub fn run(cmd: NotesCommand) -> anyhow::Result<()> {
    match cmd {
        NotesCommand::Federate(args) => {
            tokio::runtime::Runtime::new()?.block_on(crate::notes_demo::run(args))
        }
        NotesCommand::Summarize {
            input,
            output,
            model,
        } => summarize(&input, &output, &model),
        NotesCommand::Train {
            data,
            out,
            epochs,
            seed,
        } => train(&data, &out, epochs, seed),
        NotesCommand::Eval {
            data,
            split,
            model,
            json,
        } => evaluate(&data, &split, &model, json.as_deref()),
        NotesCommand::BenchFederated {
            data,
            rounds,
            local_epochs,
            seed,
        } => bench_federated(&data, rounds, local_epochs, seed),
    }
}

fn summarize(input: &Path, output: &Path, model: &ModelArgs) -> anyhow::Result<()> {
    let request: Value = serde_json::from_str(&read(input)?)
        .with_context(|| format!("{} is not JSON", input.display()))?;
    let Some(dialogue) = request.get("dialogue").and_then(Value::as_str) else {
        bail!("{} has no \"dialogue\" string", input.display());
    };
    let draft = model.summarizer()?.draft(dialogue)?;
    let out = serde_json::to_string_pretty(&draft_json(&draft))?;
    std::fs::write(output, out).with_context(|| format!("writing {}", output.display()))
}

/// The draft as `summarize` writes it: the plain-text note, its sections, the flagged sentences.
fn draft_json(draft: &Draft) -> Value {
    let sections: Vec<Value> = draft
        .sections
        .iter()
        .map(|s| {
            json!({
                "section": s.section,
                "title": s.title,
                "loinc": s.section.loinc().0,
                "text": draft.section_text(s.section),
                "sentences": s.statements,
            })
        })
        .collect();
    json!({"note": draft.text(), "sections": sections, "flags": draft.flags})
}

fn train(data: &DataArgs, out: &Path, epochs: usize, seed: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let examples = notes::align::corpus_examples(&data.aci_bench("train")?, &data.mts_dialog()?)?;
    let config = TrainConfig {
        epochs,
        ..TrainConfig::default()
    };
    let (weights, report) =
        classifier::train_local(&classifier::initial_weights(), &examples, &config, seed)?;
    std::fs::write(out, weights.to_safetensors())
        .with_context(|| format!("writing {}", out.display()))?;
    let valid = notes::align::corpus_examples(&data.aci_bench("valid")?, &[])?;
    let before = classifier::fit(&classifier::initial_weights(), &examples)?;
    let after = classifier::fit(&weights, &examples)?;
    println!(
        "{} examples, loss {:.4} -> {:.4}, train accuracy {:.3}, valid accuracy {:.3}, {:.1} s; weights {} (sha256 {})",
        report.samples,
        before.loss,
        after.loss,
        after.accuracy,
        classifier::fit(&weights, &valid)?.accuracy,
        started.elapsed().as_secs_f64(),
        out.display(),
        weights.sha256_hex()
    );
    Ok(())
}

/// Mean ROUGE and summed fact figures over a split's drafts.
pub(crate) struct SplitScore {
    pub(crate) rouge: Rouge,
    facts: FactFigures,
    /// Per section: visits where the reference or the draft has it, and the summed scores.
    sections: BTreeMap<Section, (usize, SectionScore)>,
    seconds_per_note: f64,
    drafts: Vec<Value>,
}

pub(crate) fn score_split(
    summarizer: &Summarizer,
    visits: &[Encounter],
) -> anyhow::Result<SplitScore> {
    let mut total = Rouge::default();
    let mut facts = FactFigures::default();
    let mut sections: BTreeMap<Section, (usize, SectionScore)> = BTreeMap::new();
    let mut drafts = Vec::new();
    let started = Instant::now();
    for visit in visits {
        let (draft, s) = score(summarizer, &visit.dialogue, &visit.note)
            .with_context(|| format!("encounter {}", visit.id))?;
        total.rouge1 += s.rouge.rouge1;
        total.rouge2 += s.rouge.rouge2;
        total.rouge_lsum += s.rouge.rouge_lsum;
        facts += s.facts.clone();
        for (section, one) in &s.sections {
            let (n, sum) = sections.entry(*section).or_default();
            *n += 1;
            sum.reference_words += one.reference_words;
            sum.draft_words += one.draft_words;
            sum.rouge1 += one.rouge1;
        }
        drafts.push(json!({"encounter_id": visit.id, "score": s, "draft": draft_json(&draft)}));
    }
    let n = visits.len().max(1) as f64;
    Ok(SplitScore {
        rouge: Rouge {
            rouge1: total.rouge1 / n,
            rouge2: total.rouge2 / n,
            rouge_lsum: total.rouge_lsum / n,
        },
        facts,
        sections,
        seconds_per_note: started.elapsed().as_secs_f64() / n,
        drafts,
    })
}

fn evaluate(
    data: &DataArgs,
    split: &str,
    model: &ModelArgs,
    json_out: Option<&Path>,
) -> anyhow::Result<()> {
    let visits = data.aci_bench(split)?;
    let s = score_split(&model.summarizer()?, &visits)?;
    println!(
        "ACI-Bench {split} ({} encounters): ROUGE-1 {:.2}  ROUGE-2 {:.2}  ROUGE-Lsum {:.2}",
        visits.len(),
        100.0 * s.rouge.rouge1,
        100.0 * s.rouge.rouge2,
        100.0 * s.rouge.rouge_lsum
    );
    println!(
        "{:<16} {:>9} {:>11} {:>6} {:>11} {:>9} {:>7} {:>9} {:>6}",
        "facts",
        "candidate",
        "unsupported",
        "draft",
        "unsupported",
        "reference",
        "omitted",
        "corrupted",
        "caught"
    );
    let mut rows: Vec<(String, notes::eval::FactCounts)> = s
        .facts
        .by_kind
        .iter()
        .map(|(k, c)| {
            (
                serde_json::to_value(k).map_or_else(
                    |_| format!("{k:?}"),
                    |v| v.as_str().unwrap_or_default().to_string(),
                ),
                *c,
            )
        })
        .collect();
    rows.push(("all".into(), s.facts.total()));
    for (kind, c) in &rows {
        println!(
            "{kind:<16} {:>9} {:>11} {:>6} {:>11} {:>9} {:>7} {:>9} {:>6}",
            c.candidate,
            c.unsupported_candidate,
            c.draft,
            c.unsupported_draft,
            c.reference,
            c.omitted,
            c.corrupted,
            c.corrupted_caught
        );
    }
    let t = s.facts.total();
    let md = s.facts.medications_and_doses();
    println!(
        "hallucination rate {:.1}% before the checker, {:.1}% in the drafts ({} unsupported medications/doses); omission rate {:.1}%; checker removed {} sentences, caught {:.1}% of corrupted sentences",
        100.0 * t.hallucination_rate_before_check(),
        100.0 * t.hallucination_rate(),
        md.unsupported_draft,
        100.0 * t.omission_rate(),
        s.facts.removed_sentences,
        100.0 * t.corruption_recall()
    );
    println!(
        "{:<28} {:>6} {:>15} {:>11} {:>8}",
        "section", "visits", "reference words", "draft words", "ROUGE-1"
    );
    for (section, (n, sum)) in &s.sections {
        let n = *n as f64;
        println!(
            "{:<28} {:>6} {:>15.0} {:>11.0} {:>8.2}",
            section.heading(),
            n,
            sum.reference_words as f64 / n,
            sum.draft_words as f64 / n,
            100.0 * sum.rouge1 / n
        );
    }
    println!("time per note: {:.1} ms", 1000.0 * s.seconds_per_note);
    if let Some(path) = json_out {
        let sections: BTreeMap<&str, Value> = s
            .sections
            .iter()
            .map(|(section, (n, sum))| {
                let n = *n as f64;
                (
                    section.heading(),
                    json!({
                        "visits": n,
                        "mean_reference_words": sum.reference_words as f64 / n,
                        "mean_draft_words": sum.draft_words as f64 / n,
                        "mean_rouge1": sum.rouge1 / n,
                    }),
                )
            })
            .collect();
        let out = json!({
            "split": split,
            "rouge": s.rouge,
            "facts": s.facts,
            "hallucination_rate_before_check": t.hallucination_rate_before_check(),
            "hallucination_rate": t.hallucination_rate(),
            "omission_rate": t.omission_rate(),
            "corruption_recall": t.corruption_recall(),
            "sections": sections,
            "seconds_per_note": s.seconds_per_note,
            "drafts": s.drafts,
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One in-process hospital of the federated benchmark.
struct Hospital {
    name: String,
    examples: Vec<Example>,
}

fn hospitals(data: &DataArgs) -> anyhow::Result<Vec<Hospital>> {
    let visits = data.aci_bench("train")?;
    let mut names: Vec<String> = visits.iter().map(|v| v.dataset.clone()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let own: Vec<Encounter> = visits
            .iter()
            .filter(|v| v.dataset == name)
            .cloned()
            .collect();
        out.push(Hospital {
            examples: notes::align::corpus_examples(&own, &[])?,
            name: format!("aci-bench-{name}"),
        });
    }
    out.push(Hospital {
        name: "mts-dialog".into(),
        examples: notes::align::corpus_examples(&[], &data.mts_dialog()?)?,
    });
    Ok(out)
}

fn bench_federated(
    data: &DataArgs,
    rounds: usize,
    local_epochs: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let hospitals = hospitals(data)?;
    let valid = data.aci_bench("valid")?;
    let valid_examples = notes::align::corpus_examples(&valid, &[])?;
    let report = |label: &str, weights: &Weights, seconds: f64| -> anyhow::Result<()> {
        let summarizer = Summarizer::new(SectionClassifier::new(weights)?, DraftConfig::default());
        let s = score_split(&summarizer, &valid)?;
        println!(
            "{label:<34} valid accuracy {:.3}  ROUGE-1 {:.2}  ROUGE-2 {:.2}  ROUGE-Lsum {:.2}  ({seconds:.1} s training)",
            classifier::fit(weights, &valid_examples)?.accuracy,
            100.0 * s.rouge.rouge1,
            100.0 * s.rouge.rouge2,
            100.0 * s.rouge.rouge_lsum
        );
        Ok(())
    };
    for h in &hospitals {
        println!("{}: {} labelled utterances", h.name, h.examples.len());
    }
    let epochs = rounds * local_epochs;

    let started = Instant::now();
    let pooled: Vec<Example> = hospitals.iter().flat_map(|h| h.examples.clone()).collect();
    let config = TrainConfig {
        epochs,
        ..TrainConfig::default()
    };
    let (weights, _) =
        classifier::train_local(&classifier::initial_weights(), &pooled, &config, seed)?;
    report(
        &format!("pooled ({epochs} epochs)"),
        &weights,
        started.elapsed().as_secs_f64(),
    )?;

    let started = Instant::now();
    let mut strategy = StrategyConfig::default().build()?;
    let mut global = classifier::initial_weights();
    let local = TrainConfig {
        epochs: local_epochs,
        ..TrainConfig::default()
    };
    for round in 0..rounds {
        let mut trained = Vec::new();
        for (i, h) in hospitals.iter().enumerate() {
            let round_seed = seed ^ ((round as u64) << 32) ^ i as u64;
            trained.push(classifier::train_local(&global, &h.examples, &local, round_seed)?.0);
        }
        let updates: Vec<ClientUpdate<'_>> = hospitals
            .iter()
            .zip(&trained)
            .map(|(h, w)| ClientUpdate {
                node: &h.name,
                weights: w.values(),
                num_samples: h.examples.len() as u64,
            })
            .collect();
        global = global.with_values(strategy.aggregate(global.values(), &updates)?)?;
    }
    report(
        &format!("fedavg ({rounds} rounds x {local_epochs} epochs)"),
        &global,
        started.elapsed().as_secs_f64(),
    )?;

    for h in &hospitals {
        let started = Instant::now();
        let (weights, _) =
            classifier::train_local(&classifier::initial_weights(), &h.examples, &config, seed)?;
        report(
            &format!("local only: {}", h.name),
            &weights,
            started.elapsed().as_secs_f64(),
        )?;
    }
    Ok(())
}
