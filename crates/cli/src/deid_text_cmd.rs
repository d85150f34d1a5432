//! `cohort deid text`: de-identify clinical notes (JSON lines in, JSON lines
//! out), `cohort deid text eval`: score the de-identifier on a gold set, and
//! `cohort deid text train`: train the statistical PHI tagger on gold sets.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use deid::text::eval::{Counts, GoldNote, Level, Report};
use deid::text::tagger::{self, Tagger};
use deid::text::{Context, Deidentifier, Label, Lang, Replacement, Span, TextOptions};
use serde::{Deserialize, Serialize};

use crate::deid_cmd::KeyArgs;

/// Arguments of `cohort deid text`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TextArgs {
    /// `eval`: score on a gold set instead.
    #[command(subcommand)]
    pub command: Option<TextCommand>,
    /// Language of the notes: fr or en.
    #[arg(long, default_value = "fr")]
    pub lang: String,
    /// Replace spans by `[LABEL]` tags instead of surrogates (no key needed).
    #[arg(long)]
    pub tags: bool,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub tagger: TaggerArgs,
    /// Input: one `{"note_id", "note_text", "context"?}` per line.
    pub input: Option<PathBuf>,
    /// Output: one `{"note_id", "text", "entities"}` per line.
    pub output: Option<PathBuf>,
}

/// Subcommands of `cohort deid text`.
#[derive(Debug, Subcommand)]
pub enum TextCommand {
    /// Precision, recall and F1 per label and overall (character, token and
    /// span level) on a gold JSON-lines file.
    Eval(EvalArgs),
    /// Train the statistical PHI tagger on gold JSON-lines files and write its
    /// weights (safetensors).
    Train(TrainArgs),
}

/// Which statistical tagger runs after the rules.
#[derive(Debug, Args)]
pub struct TaggerArgs {
    /// `shipped` (the tagger of this release), `none` (rules only), or a
    /// weights file written by `cohort deid text train` or a federated plan.
    #[arg(long, default_value = "shipped")]
    pub tagger: String,
    /// Tag a word when the tagger's probability of "no PHI" is under this.
    #[arg(long, default_value_t = tagger::DEFAULT_THRESHOLD)]
    pub tagger_threshold: f32,
}

impl TaggerArgs {
    /// `deid` with the chosen tagger.
    pub fn apply(&self, deid: Deidentifier) -> anyhow::Result<Deidentifier> {
        let lang = deid.lang();
        let tagger = match self.tagger.as_str() {
            "none" => return Ok(deid),
            "shipped" => Tagger::shipped(lang),
            path => {
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
                let weights = learn::Weights::from_safetensors(&bytes)
                    .with_context(|| format!("{path}: not a weights file"))?;
                Tagger::new(lang, &weights)
                    .with_context(|| format!("{path}: not a PHI tagger for {lang:?} notes"))?
            }
        };
        Ok(deid.with_tagger(tagger.with_threshold(self.tagger_threshold))?)
    }
}

/// Arguments of `cohort deid text train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Gold notes: `{"note_id", "note_text", "entities": [{"start", "end", "label"}]}`.
    #[arg(required = true)]
    pub gold: Vec<PathBuf>,
    /// Language of the notes: fr or en.
    #[arg(long, default_value = "fr")]
    pub lang: String,
    /// Where to write the weights.
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the words.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub learning_rate: f64,
    /// Seed of the shuffles.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `cohort deid text eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Gold notes: `{"note_id", "note_text", "entities": [{"start", "end", "label"}]}`.
    pub gold: PathBuf,
    /// Language of the notes: fr or en.
    #[arg(long, default_value = "fr")]
    pub lang: String,
    /// Score these predictions (`{"note_id", "entities"}` lines, e.g. another
    /// tool's) instead of running the de-identifier.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Write the de-identifier's predictions here.
    #[arg(long)]
    pub write_predictions: Option<PathBuf>,
    /// Ignore the patient facts (`context`) of the gold lines.
    #[arg(long)]
    pub no_context: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tagger: TaggerArgs,
}

/// One input line.
#[derive(Debug, Deserialize)]
struct InputNote {
    note_id: serde_json::Value,
    note_text: String,
    #[serde(default)]
    context: Option<Context>,
}

/// One output line.
#[derive(Debug, Serialize)]
struct OutputNote<'a> {
    note_id: &'a serde_json::Value,
    text: &'a str,
    entities: &'a [Span],
}

/// Run `cohort deid text`.
pub fn run(args: TextArgs) -> anyhow::Result<()> {
    match args.command {
        Some(TextCommand::Eval(eval_args)) => return eval(eval_args),
        Some(TextCommand::Train(train_args)) => return train(train_args),
        None => {}
    }
    let (Some(input), Some(output)) = (&args.input, &args.output) else {
        bail!("usage: cohort deid text --lang fr|en [--key-file K] IN.jsonl OUT.jsonl");
    };
    let lang: Lang = args.lang.parse()?;
    let key = match (&args.key.key_file, &args.key.key) {
        (None, None) => None,
        _ => Some(args.key.load()?),
    };
    let replacement = if args.tags || key.is_none() {
        Replacement::Tags
    } else {
        Replacement::Surrogates
    };
    let deid = args
        .tagger
        .apply(Deidentifier::new(lang, key, TextOptions { replacement })?)?;
    let started = Instant::now();
    deid.preload();
    let loaded = started.elapsed().as_secs_f64();
    let (notes, spans, bytes) = redact_file(&deid, input, output)?;
    eprintln!(
        "{notes} notes, {spans} spans removed, {:.1} MB in {:.3} s (word lists loaded in {loaded:.2} s)",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64() - loaded
    );
    Ok(())
}

/// De-identify the notes of `input` into `output` (written to a temporary
/// file first, so a bad line leaves no partial output). Returns notes,
/// spans and input bytes.
pub fn redact_file(
    deid: &Deidentifier,
    input: &Path,
    output: &Path,
) -> anyhow::Result<(usize, usize, usize)> {
    let reader = BufReader::new(
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?,
    );
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut out = BufWriter::new(temp);
    let (mut notes, mut spans, mut bytes) = (0, 0, 0);
    for_each_line(reader, input, |line_no, note: InputNote| {
        let context = note.context.unwrap_or_default();
        let redaction = deid.redact(&note.note_text, &context);
        bytes += note.note_text.len();
        notes += 1;
        spans += redaction.spans.len();
        serde_json::to_writer(
            &mut out,
            &OutputNote {
                note_id: &note.note_id,
                text: &redaction.text,
                entities: &redaction.spans,
            },
        )
        .with_context(|| format!("line {line_no}: cannot write the output"))?;
        out.write_all(b"\n")?;
        Ok(())
    })?;
    let temp = out.into_inner().map_err(|e| e.into_error())?;
    temp.persist(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok((notes, spans, bytes))
}

/// Parse each non-blank line of a JSON-lines file; invalid UTF-8 or JSON is
/// an error naming the line.
fn for_each_line<T: for<'de> Deserialize<'de>>(
    mut reader: impl BufRead,
    path: &Path,
    mut f: impl FnMut(usize, T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    let mut line_no = 0;
    loop {
        buffer.clear();
        if reader
            .read_until(b'\n', &mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?
            == 0
        {
            return Ok(());
        }
        line_no += 1;
        let line = std::str::from_utf8(&buffer)
            .map_err(|e| anyhow::anyhow!("{}:{line_no}: not UTF-8 ({e})", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: T = serde_json::from_str(line)
            .with_context(|| format!("{}:{line_no}: not a valid note line", path.display()))?;
        f(line_no, value)?;
    }
}

/// A gold line may carry the patient facts too.
#[derive(Debug, Deserialize)]
struct GoldLine {
    #[serde(flatten)]
    gold: GoldNote,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Debug, Deserialize)]
struct PredictionLine {
    note_id: serde_json::Value,
    #[serde(default)]
    entities: Vec<PredictedSpan>,
}

#[derive(Debug, Deserialize)]
struct PredictedSpan {
    start: usize,
    end: usize,
    #[serde(default)]
    label: Option<String>,
}

fn id_string(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Run `cohort deid text eval`.
pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let lang: Lang = args.lang.parse()?;
    let mut gold = read_gold(&args.gold)?;
    if args.no_context {
        for line in &mut gold {
            line.context = None;
        }
    }
    let predictions: Vec<Vec<Span>> = match &args.predictions {
        Some(path) => read_predictions(path, &gold)?,
        None => {
            let deid = args.tagger.apply(Deidentifier::new(
                lang,
                None,
                TextOptions {
                    replacement: Replacement::Tags,
                },
            )?)?;
            gold.iter()
                .map(|g| deid.detect(&g.gold.note_text, &g.context.clone().unwrap_or_default()))
                .collect()
        }
    };
    if let Some(path) = &args.write_predictions {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        for (g, spans) in gold.iter().zip(&predictions) {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"note_id": g.gold.note_id, "entities": spans}),
            )?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let mut report = Report::default();
    for (g, spans) in gold.iter().zip(&predictions) {
        report.add(&g.gold, spans);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn read_gold(path: &Path) -> anyhow::Result<Vec<GoldLine>> {
    let mut gold = Vec::new();
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    for_each_line(BufReader::new(file), path, |_, line: GoldLine| {
        gold.push(line);
        Ok(())
    })?;
    Ok(gold)
}

/// The gold spans of a note with this crate's labels (a corpus label unknown here counts as
/// an identifier).
fn gold_spans(gold: &GoldNote) -> Vec<Span> {
    gold.entities
        .iter()
        .map(|e| Span {
            start: e.start,
            end: e.end,
            label: deid::text::eval::canonical(&e.label).unwrap_or(Label::Id),
        })
        .collect()
}

/// Run `cohort deid text train`.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    let lang: Lang = args.lang.parse()?;
    let rules = Deidentifier::new(
        lang,
        None,
        TextOptions {
            replacement: Replacement::Tags,
        },
    )?;
    let mut examples = Vec::new();
    let mut notes = 0;
    for path in &args.gold {
        for line in read_gold(path)? {
            let context = line.context.unwrap_or_default();
            let spans = gold_spans(&line.gold);
            examples.extend(rules.tagger_examples(&line.gold.note_text, &context, &spans));
            notes += 1;
        }
    }
    let positives = examples.iter().filter(|e| e.label != 0).count();
    let model = tagger::model(lang);
    let config = learn::sparse::Config {
        epochs: args.epochs,
        learning_rate: args.learning_rate,
        ..learn::sparse::Config::default()
    };
    let initial = model.initial_weights();
    let (weights, report) = model.train(&initial, &examples, &config, args.seed)?;
    let fit = model.fit(&weights, &examples)?;
    std::fs::write(&args.out, weights.to_safetensors())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "{notes} notes, {} words ({positives} PHI), {} steps: loss {:.4}, accuracy {:.4}; wrote {} (sha256 {})",
        examples.len(),
        report.steps,
        fit.loss,
        fit.accuracy,
        args.out.display(),
        weights.sha256_hex()
    );
    Ok(())
}

fn read_predictions(path: &Path, gold: &[GoldLine]) -> anyhow::Result<Vec<Vec<Span>>> {
    let mut by_id = std::collections::HashMap::new();
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    for_each_line(BufReader::new(file), path, |_, line: PredictionLine| {
        let spans = line
            .entities
            .iter()
            .map(|e| Span {
                start: e.start,
                end: e.end,
                label: e
                    .label
                    .as_deref()
                    .and_then(deid::text::eval::canonical)
                    .unwrap_or(Label::Id),
            })
            .collect::<Vec<_>>();
        by_id.insert(id_string(&line.note_id), spans);
        Ok(())
    })?;
    Ok(gold
        .iter()
        .map(|g| by_id.remove(&g.gold.note_id).unwrap_or_default())
        .collect())
}

/// The report as a table: one row per label, then overall.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} notes", report.notes);
    let _ = writeln!(
        s,
        "{:<10} {:>7} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6}",
        "label", "chars", "P", "R", "F1", "tok P", "tok R", "tok F1", "spanP", "spanR", "spanF1"
    );
    let row = |s: &mut String,
               name: &str,
               c: Option<&Counts>,
               t: Option<&Counts>,
               p: Option<&Counts>| {
        let c = c.copied().unwrap_or_default();
        let t = t.copied().unwrap_or_default();
        let p = p.copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<10} {:>7} {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>6.3}",
            name,
            c.tp + c.fn_,
            c.precision(),
            c.recall(),
            c.f1(),
            t.precision(),
            t.recall(),
            t.f1(),
            p.precision(),
            p.recall(),
            p.f1()
        );
    };
    let labels = |l: &Level| l.per_label.keys().copied().collect::<Vec<_>>();
    let mut all = labels(&report.chars);
    all.extend(labels(&report.spans));
    all.sort();
    all.dedup();
    for label in all {
        row(
            &mut s,
            label.as_str(),
            report.chars.per_label.get(&label),
            report.tokens.per_label.get(&label),
            report.spans.per_label.get(&label),
        );
    }
    row(
        &mut s,
        "overall",
        Some(&report.chars.overall),
        Some(&report.tokens.overall),
        Some(&report.spans.overall),
    );
    let _ = writeln!(
        s,
        "recall on name/identifier characters: {:.4}",
        report.name_id_chars.recall()
    );
    for (label, n) in &report.unknown_labels {
        let _ = writeln!(
            s,
            "gold label {label} not known here: {n} spans (counted overall only)"
        );
    }
    s
}
