//! `cohort speech`: transcribe an audio file with the node's Whisper model, and score
//! transcription on a manifest (WER, recall of a term list, real-time factor).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use speech::vocab::terms_from_text;
use speech::wer::{contains_term, word_errors};
use speech::{TranscribeOptions, Transcriber};

/// Subcommands of `cohort speech`.
#[derive(Debug, Subcommand)]
pub enum SpeechCommand {
    /// Transcribe one audio file (WAV, FLAC, MP3, Ogg Vorbis, AIFF).
    Transcribe(TranscribeArgs),
    /// WER, term recall and real-time factor on a manifest of clips with references.
    Eval(EvalArgs),
}

/// Model and decoding options shared by the subcommands.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model: tiny.en or base (installed with `cohort models install`).
    #[arg(long, default_value = "tiny.en")]
    pub model: String,
    /// Model cache (default: $COHORT_MODELS or ~/.cache/cohort/models).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Decode all audio, without voice-activity detection.
    #[arg(long)]
    pub no_vad: bool,
    /// How the record's vocabulary is used.
    #[arg(long, value_enum, default_value_t = Vocab::Full)]
    pub vocab: Vocab,
}

/// Use of the record's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Vocab {
    /// Ignore it.
    None,
    /// Put it in the prompt.
    Prompt,
    /// Prompt and logit bonus for continuing a vocabulary word.
    Full,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<Transcriber> {
        let cache = self.cache.clone().unwrap_or_else(speech::models::cache_dir);
        let dir = speech::models::installed(&self.model, &cache)?;
        let device = candle_core::Device::cuda_if_available(0)?;
        Transcriber::load(&dir, &device).with_context(|| format!("loading {}", dir.display()))
    }

    fn options(&self, language: &str, terms: Vec<String>) -> TranscribeOptions {
        let defaults = TranscribeOptions::default();
        TranscribeOptions {
            language: language.to_string(),
            terms: if self.vocab == Vocab::None {
                Vec::new()
            } else {
                terms
            },
            prompt_terms: self.vocab != Vocab::None,
            bias_bonus: if self.vocab == Vocab::Full {
                defaults.bias_bonus
            } else {
                0.0
            },
            vad: if self.no_vad { None } else { defaults.vad },
            ..defaults
        }
    }
}

/// Arguments of `cohort speech transcribe`.
#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// The audio file.
    pub file: PathBuf,
    /// Language: en or fr (fr needs the multilingual base model).
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// The record's vocabulary: one term per line (drug names, problems, allergies).
    #[arg(long)]
    pub terms: Option<PathBuf>,
    /// Print `{"text", "segments": [{"start", "end", "text"}]}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Arguments of `cohort speech eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// TSV with a header: `file`, `lang`, `reference`, optionally `terms` (the clip's record
    /// vocabulary, `;`-separated); files relative to the manifest.
    pub manifest: PathBuf,
    /// Measure the recall of these terms (one per line); default: each clip's `terms`.
    #[arg(long)]
    pub recall_terms: Option<PathBuf>,
    /// Only clips in this language.
    #[arg(long)]
    pub lang: Option<String>,
    /// Write one `{"file", "reference", "hypothesis", "seconds", "audio_seconds"}` line per clip.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Runs a `cohort speech` command.
pub fn run(command: SpeechCommand) -> anyhow::Result<()> {
    match command {
        SpeechCommand::Transcribe(args) => transcribe(args),
        SpeechCommand::Eval(args) => eval(args),
    }
}

fn transcribe(args: TranscribeArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let terms = match &args.terms {
        Some(path) => terms_from_text(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => Vec::new(),
    };
    let transcriber = args.model.load()?;
    let transcript = transcriber
        .transcribe_bytes(&bytes, &args.model.options(&args.lang, terms))
        .with_context(|| format!("transcribing {}", args.file.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&transcript)?);
    } else {
        println!("{}", transcript.text);
    }
    Ok(())
}

/// One clip of an evaluation manifest.
#[derive(Debug)]
struct Clip {
    file: PathBuf,
    lang: String,
    reference: String,
    terms: Vec<String>,
}

fn read_manifest(path: &Path) -> anyhow::Result<Vec<Clip>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty manifest")?
        .split('\t')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(file), Some(lang), Some(reference)) = (col("file"), col("lang"), col("reference"))
    else {
        bail!(
            "{}: the header needs file, lang and reference columns",
            path.display()
        );
    };
    let terms = col("terms");
    lines
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split('\t').collect();
            let cell = |c: usize| {
                cells
                    .get(c)
                    .copied()
                    .with_context(|| format!("{} line {}: missing column", path.display(), i + 2))
            };
            Ok(Clip {
                file: base.join(cell(file)?),
                lang: cell(lang)?.to_string(),
                reference: cell(reference)?.to_string(),
                terms: terms
                    .and_then(|c| cells.get(c))
                    .map(|t| {
                        t.split(';')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[derive(Serialize)]
struct ClipResult<'a> {
    file: String,
    lang: &'a str,
    reference: &'a str,
    hypothesis: String,
    seconds: f64,
    audio_seconds: f64,
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let clips: Vec<Clip> = read_manifest(&args.manifest)?
        .into_iter()
        .filter(|c| args.lang.as_ref().is_none_or(|l| *l == c.lang))
        .collect();
    let recall_list = match &args.recall_terms {
        Some(path) => Some(terms_from_text(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )),
        None => None,
    };
    let transcriber = args.model.load()?;
    let mut out = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let (mut errors, mut words, mut hits, mut wanted, mut seconds, mut audio_seconds) =
        (0usize, 0usize, 0usize, 0usize, 0f64, 0f64);
    for clip in &clips {
        let bytes = std::fs::read(&clip.file)
            .with_context(|| format!("reading {}", clip.file.display()))?;
        let start = Instant::now();
        let samples =
            speech::audio::decode_16k(&bytes).with_context(|| clip.file.display().to_string())?;
        let hypothesis = transcriber
            .transcribe(
                &samples,
                &args.model.options(&clip.lang, clip.terms.clone()),
            )?
            .text;
        let took = start.elapsed().as_secs_f64();
        let duration = samples.len() as f64 / speech::SAMPLE_RATE as f64;
        let (e, n) = word_errors(&clip.reference, &hypothesis);
        let scored = recall_list.as_ref().unwrap_or(&clip.terms);
        for term in scored.iter().filter(|t| contains_term(&clip.reference, t)) {
            wanted += 1;
            hits += usize::from(contains_term(&hypothesis, term));
        }
        (errors, words, seconds, audio_seconds) = (
            errors + e,
            words + n,
            seconds + took,
            audio_seconds + duration,
        );
        eprintln!("{}\t{e}/{n}\t{hypothesis}", clip.file.display());
        if let Some(out) = out.as_mut() {
            use std::io::Write as _;
            let row = ClipResult {
                file: clip.file.display().to_string(),
                lang: &clip.lang,
                reference: &clip.reference,
                hypothesis,
                seconds: took,
                audio_seconds: duration,
            };
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        }
    }
    let wer = errors as f64 / words.max(1) as f64;
    let recall = if wanted == 0 {
        f64::NAN
    } else {
        hits as f64 / wanted as f64
    };
    let summary = serde_json::json!({
        "clips": clips.len(), "words": words, "errors": errors, "wer": wer,
        "term_recall": recall, "terms_found": hits, "terms_in_references": wanted,
        "audio_seconds": audio_seconds, "seconds": seconds, "rtf": seconds / audio_seconds.max(1e-9),
        "model": args.model.model, "vocab": format!("{:?}", args.model.vocab).to_lowercase(),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_columns_by_name_and_terms_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tsv");
        std::fs::write(&path, "file\tlang\treference\tterms\na.wav\ten\tstart metformin\tmetformin; lisinopril\nb.wav\tfr\tbonjour\t\n").unwrap();
        let clips = read_manifest(&path).unwrap();
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[0].terms, ["metformin", "lisinopril"]);
        assert_eq!(clips[0].file, dir.path().join("a.wav"));
        assert!(clips[1].terms.is_empty());
        std::fs::write(&path, "path\treference\n").unwrap();
        assert!(
            read_manifest(&path)
                .unwrap_err()
                .to_string()
                .contains("header needs")
        );
    }
}
