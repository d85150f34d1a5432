//! Scoring transcription on a manifest of clips with references: word error rate, recall of
//! the record's terms and real-time factor (audio decoding and transcription time over audio
//! time; model loading excluded). Shared by `cohort speech eval` and the benchmark example.

use crate::wer::{contains_term, word_errors};
use crate::{Error, Result, TranscribeOptions, Transcriber, io_err};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One clip of an evaluation manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// The audio file (relative paths are resolved against the manifest's folder).
    pub file: PathBuf,
    /// Language code of the clip.
    pub lang: String,
    /// Reference transcript.
    pub reference: String,
    /// The clip's record vocabulary (`terms` column, `;`-separated).
    pub terms: Vec<String>,
}

/// Reads a TSV manifest with a header naming `file`, `lang`, `reference` and optionally `terms`.
pub fn read_manifest(path: &Path) -> Result<Vec<Clip>> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::Invalid(format!("{}: empty manifest", path.display())))?
        .split('\t')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(file), Some(lang), Some(reference)) = (col("file"), col("lang"), col("reference"))
    else {
        return Err(Error::Invalid(format!(
            "{}: the header needs file, lang and reference columns",
            path.display()
        )));
    };
    let terms = col("terms");
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split('\t').collect();
            let cell = |c: usize| {
                cells.get(c).copied().ok_or_else(|| {
                    Error::Invalid(format!("{} line {}: missing column", path.display(), i + 2))
                })
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

/// What one clip's transcription produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClipResult {
    /// The audio file.
    pub file: String,
    /// Language code.
    pub lang: String,
    /// Reference transcript.
    pub reference: String,
    /// The transcript.
    pub hypothesis: String,
    /// Decoding and transcription time in seconds.
    pub seconds: f64,
    /// Audio duration in seconds.
    pub audio_seconds: f64,
}

/// Decodes and transcribes one clip, timing both.
pub fn run_clip(
    transcriber: &Transcriber,
    clip: &Clip,
    opts: &TranscribeOptions,
) -> Result<ClipResult> {
    let bytes = std::fs::read(&clip.file).map_err(io_err(&clip.file))?;
    let start = Instant::now();
    let samples = crate::audio::decode_16k(&bytes)
        .map_err(|e| Error::Audio(format!("{}: {e}", clip.file.display())))?;
    let hypothesis = transcriber.transcribe(&samples, opts)?.text;
    Ok(ClipResult {
        file: clip.file.display().to_string(),
        lang: clip.lang.clone(),
        reference: clip.reference.clone(),
        hypothesis,
        seconds: start.elapsed().as_secs_f64(),
        audio_seconds: samples.len() as f64 / crate::SAMPLE_RATE as f64,
    })
}

/// Transcribes every clip with the options `options` gives it, scoring recall on `recall` (or
/// each clip's own terms) and handing each result and its (errors, words) to `each`.
pub fn evaluate(
    transcriber: &Transcriber,
    clips: &[Clip],
    options: impl Fn(&Clip) -> TranscribeOptions,
    recall: Option<&[String]>,
    mut each: impl FnMut(&ClipResult, (usize, usize)) -> std::io::Result<()>,
) -> Result<Tally> {
    let mut tally = Tally::default();
    for clip in clips {
        let result = run_clip(transcriber, clip, &options(clip))?;
        let errors = tally.add(&result, recall.unwrap_or(&clip.terms));
        each(&result, errors).map_err(|e| Error::Invalid(format!("writing results: {e}")))?;
    }
    Ok(tally)
}

/// Running totals over clips.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Clips scored.
    pub clips: usize,
    /// Word errors.
    pub errors: usize,
    /// Reference words.
    pub words: usize,
    /// Terms of the references found in the transcripts.
    pub hits: usize,
    /// Terms in the references.
    pub wanted: usize,
    /// The clips' terms that their references do not contain.
    pub unsaid: usize,
    /// Of these, the terms the transcripts contain: names written that were not said.
    pub unsaid_written: usize,
    /// Processing seconds.
    pub seconds: f64,
    /// Audio seconds.
    pub audio_seconds: f64,
}

impl Tally {
    /// Adds a clip's result; the recall is measured on `terms` that its reference contains, and
    /// the others written in the transcript are counted as unsaid names written.
    pub fn add(&mut self, result: &ClipResult, terms: &[String]) -> (usize, usize) {
        let (e, n) = word_errors(&result.reference, &result.hypothesis);
        for term in terms {
            let written = usize::from(contains_term(&result.hypothesis, term));
            if contains_term(&result.reference, term) {
                self.wanted += 1;
                self.hits += written;
            } else {
                self.unsaid += 1;
                self.unsaid_written += written;
            }
        }
        self.clips += 1;
        self.errors += e;
        self.words += n;
        self.seconds += result.seconds;
        self.audio_seconds += result.audio_seconds;
        (e, n)
    }

    /// Word error rate.
    pub fn wer(&self) -> f64 {
        self.errors as f64 / self.words.max(1) as f64
    }

    /// Term recall (NaN without terms in the references).
    pub fn recall(&self) -> f64 {
        if self.wanted == 0 {
            f64::NAN
        } else {
            self.hits as f64 / self.wanted as f64
        }
    }

    /// Real-time factor: processing time over audio time.
    pub fn rtf(&self) -> f64 {
        self.seconds / self.audio_seconds.max(1e-9)
    }

    /// The summary printed by `cohort speech eval` (same keys as the faster-whisper peer).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "clips": self.clips, "words": self.words, "errors": self.errors, "wer": self.wer(),
            "term_recall": self.recall(), "terms_found": self.hits,
            "terms_in_references": self.wanted, "terms_unsaid": self.unsaid,
            "unsaid_terms_written": self.unsaid_written, "audio_seconds": self.audio_seconds,
            "seconds": self.seconds, "rtf": self.rtf(),
        })
    }
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
        std::fs::write(&path, "file\tlang\treference\nshort.wav\n").unwrap();
        let err = read_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: missing column"), "{err}");
        std::fs::write(&path, "path\treference\n").unwrap();
        let err = read_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("header needs"), "{err}");
    }

    #[test]
    fn tally_scores_words_terms_and_time() {
        let mut tally = Tally::default();
        let result = ClipResult {
            file: "a.wav".into(),
            lang: "en".into(),
            reference: "start metformin and lisinopril".into(),
            hypothesis: "start met forming and lisinopril then aspirin".into(),
            seconds: 1.0,
            audio_seconds: 4.0,
        };
        let terms = [
            "metformin".to_string(),
            "lisinopril".into(),
            "aspirin".into(),
        ];
        assert_eq!(tally.add(&result, &terms), (4, 4));
        assert_eq!((tally.hits, tally.wanted), (1, 2));
        assert_eq!((tally.unsaid, tally.unsaid_written), (1, 1));
        assert_eq!((tally.wer(), tally.recall(), tally.rtf()), (1.0, 0.5, 0.25));
        assert!(Tally::default().recall().is_nan());
    }
}
