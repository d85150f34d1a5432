//! `cohort speech`: transcribe an audio file with the node's Whisper model, and score
//! transcription on a manifest (WER, recall of a term list, real-time factor).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use speech::eval::{Clip, evaluate, read_manifest};
use speech::vocab::terms_from_text;
use speech::{TranscribeOptions, Transcriber, VocabUse};

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
    /// The hospital's formulary: one medication per line (a name, or a display such as
    /// `amLODIPine 2.5 MG Oral Tablet`); its names are checked on the audio like the record's
    /// (with `--vocab full`), with a smaller prior, never prompted nor corrected by spelling.
    #[arg(long)]
    pub formulary: Option<PathBuf>,
}

/// Use of the record's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Vocab {
    /// Ignore it.
    None,
    /// Put it in the prompt.
    Prompt,
    /// Prompt, logit bonus for continuing a vocabulary word, correction of near misses (by
    /// spelling, and by the decoder's scores on the audio for words that sound like a term).
    Full,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<Transcriber> {
        let cache = self.cache.clone().unwrap_or_else(speech::models::cache_dir);
        let dir = speech::models::installed(&self.model, &cache)?;
        let device = candle_core::Device::cuda_if_available(0)?;
        Transcriber::load(&dir, &device).with_context(|| format!("loading {}", dir.display()))
    }

    /// The names of `--formulary`, if given.
    fn formulary(&self) -> anyhow::Result<Vec<String>> {
        Ok(match &self.formulary {
            Some(path) => speech::vocab::formulary_from_text(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => Vec::new(),
        })
    }

    fn options(
        &self,
        language: &str,
        terms: Vec<String>,
        formulary: &[String],
    ) -> TranscribeOptions {
        let vocab = match self.vocab {
            Vocab::None => VocabUse::None,
            Vocab::Prompt => VocabUse::Prompt,
            Vocab::Full => VocabUse::Full,
        };
        let mut opts = TranscribeOptions::with_vocabulary(language, terms, vocab)
            .with_formulary(formulary.to_vec());
        if self.no_vad {
            opts.vad = None;
        }
        opts
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
    let formulary = args.model.formulary()?;
    let transcriber = args.model.load()?;
    let transcript = transcriber
        .transcribe_bytes(&bytes, &args.model.options(&args.lang, terms, &formulary))
        .with_context(|| format!("transcribing {}", args.file.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&transcript)?);
    } else {
        println!("{}", transcript.text);
    }
    Ok(())
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
    let formulary = args.model.formulary()?;
    let transcriber = args.model.load()?;
    let mut out = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let tally = evaluate(
        &transcriber,
        &clips,
        |clip| {
            args.model
                .options(&clip.lang, clip.terms.clone(), &formulary)
        },
        recall_list.as_deref(),
        |result, (e, n)| {
            eprintln!("{}\t{e}/{n}\t{}", result.file, result.hypothesis);
            match out.as_mut() {
                Some(out) => {
                    use std::io::Write as _;
                    writeln!(out, "{}", serde_json::to_string(result)?)
                }
                None => Ok(()),
            }
        },
    )?;
    let mut summary = tally.summary();
    summary["model"] = args.model.model.clone().into();
    summary["vocab"] = format!("{:?}", args.model.vocab).to_lowercase().into();
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
