//! Transcription of a whole recording: voice-activity detection first (silence and noise give no
//! text), the speech joined and cut into 30-second windows that follow Whisper's timestamps,
//! each window decoded greedily and decoded again at rising temperatures when it looks like a
//! hallucination (repetition loop: compression ratio over 2.4; low confidence: mean
//! log-probability under -1), windows that Whisper itself calls silent skipped.

use crate::align::{longest_word, token_starts};
use crate::decode::{TokenRules, WINDOW_STEPS, WindowOptions, WindowResult, decode_window, prime};
use crate::mel::{HOP, LogMel, WINDOW_FRAMES};
use crate::model::{DecoderState, Whisper};
use crate::term_check::{TermCheck, Window};
use crate::tokenizer::Tokenizer;
use crate::vad::{VadOptions, speech_regions};
use crate::vocab::{Bias, corrected_words, prompt_text};
use crate::{Error, Result, SAMPLE_RATE};
use std::ops::Range;
use std::path::Path;

/// How to transcribe.
#[derive(Debug, Clone)]
pub struct TranscribeOptions {
    /// Language code (`en`, `fr`); English-only models accept `en` only.
    pub language: String,
    /// The record's vocabulary (drug names, problems, allergies).
    pub terms: Vec<String>,
    /// The hospital's formulary: drug names that a dictation may name though the record does
    /// not (a new prescription). Used by the check on the audio only, with a smaller prior than
    /// a record term's (never by spelling alone: with a thousand names, ordinary words such as
    /// "medicine" spell like one); a formulary name written is never replaced.
    pub formulary: Vec<String>,
    /// Put the vocabulary in the prompt.
    pub prompt_terms: bool,
    /// Logit bonus for continuing a vocabulary word (0: none).
    pub bias_bonus: f32,
    /// Replace runs of words that sound and are spelled like a vocabulary term by the term.
    pub correct_terms: bool,
    /// Replace runs of words that sound like a vocabulary term, spelled further off, by the term
    /// when the decoder scores the term higher on the audio ([`crate::term_check`]).
    pub check_terms: bool,
    /// Voice-activity detection (None: decode all audio).
    pub vad: Option<VadOptions>,
    /// Give each window the previous windows' text as its prompt.
    pub condition_on_previous_text: bool,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        TranscribeOptions {
            language: "en".into(),
            terms: Vec::new(),
            formulary: Vec::new(),
            prompt_terms: true,
            bias_bonus: crate::vocab::DEFAULT_BONUS,
            correct_terms: true,
            check_terms: true,
            vad: Some(VadOptions::default()),
            condition_on_previous_text: true,
        }
    }
}

/// How the record's vocabulary is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabUse {
    /// Ignore it.
    None,
    /// Put it in the prompt.
    Prompt,
    /// Prompt, logit bonus for continuing a vocabulary word and correction of near misses (by
    /// spelling, and by the decoder's scores on the audio).
    Full,
}

impl TranscribeOptions {
    /// Default options for `language` using the record's `terms` as `vocab` says.
    pub fn with_vocabulary(language: &str, terms: Vec<String>, vocab: VocabUse) -> Self {
        let defaults = TranscribeOptions::default();
        TranscribeOptions {
            language: language.to_string(),
            terms: if vocab == VocabUse::None {
                Vec::new()
            } else {
                terms
            },
            prompt_terms: vocab != VocabUse::None,
            bias_bonus: if vocab == VocabUse::Full {
                defaults.bias_bonus
            } else {
                0.0
            },
            correct_terms: vocab == VocabUse::Full,
            check_terms: vocab == VocabUse::Full,
            ..defaults
        }
    }

    /// These options with the hospital's `formulary`, used where the record's terms are checked.
    pub fn with_formulary(self, formulary: Vec<String>) -> Self {
        TranscribeOptions { formulary, ..self }
    }
}

/// A timed piece of transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Start in seconds from the start of the recording.
    pub start: f32,
    /// End in seconds.
    pub end: f32,
    /// Text.
    pub text: String,
}

/// A recording's transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transcript {
    /// The whole text.
    pub text: String,
    /// Timed segments.
    pub segments: Vec<Segment>,
}

const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
const COMPRESSION_RATIO_MAX: f32 = 2.4;
const LOGPROB_MIN: f32 = -1.0;
const NO_SPEECH_MIN: f32 = 0.6;
/// Speech after a window's last timestamp (mel frames, 2 s) decoded again in the next window.
const UNHEARD_TAIL_FRAMES: usize = 200;
/// Timestamp steps (0.5 s) a window may be closed after the end of its audio.
const END_SLACK_STEPS: u32 = 25;
/// Seconds per timestamp step.
const TIME_STEP: f32 = 0.02;
/// A word lasting longer than this (seconds, by the cross-attention's alignment) holds speech
/// that the text passes over.
const SKIPPED_SPEECH: f32 = 1.5;

/// How a window uses the record's vocabulary beyond the prompt.
#[derive(Clone, Copy)]
struct WindowVocab<'a> {
    bias: Option<&'a Bias>,
    check: Option<&'a TermCheck>,
}

/// A loaded model ready to transcribe.
pub struct Transcriber {
    model: Whisper,
    tok: Tokenizer,
    rules: TokenRules,
}

impl Transcriber {
    /// Assembles a transcriber from its parts (and tunes the allocator for inference, see
    /// [`crate::kernels::tune_allocator`]).
    pub fn new(model: Whisper, tok: Tokenizer, rules: TokenRules) -> Transcriber {
        crate::kernels::tune_allocator();
        Transcriber { model, tok, rules }
    }

    /// Loads an installed model directory (see [`crate::models`]).
    pub fn load(dir: &Path, device: &candle_core::Device) -> Result<Transcriber> {
        let (model, tok, rules) = crate::models::load(dir, device)?;
        Ok(Transcriber::new(model, tok, rules))
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tok
    }

    /// Decodes an audio file's bytes and transcribes it.
    pub fn transcribe_bytes(&self, bytes: &[u8], opts: &TranscribeOptions) -> Result<Transcript> {
        self.transcribe(&crate::audio::decode_16k(bytes)?, opts)
    }

    /// Transcribes mono 16 kHz samples.
    pub fn transcribe(&self, samples: &[f32], opts: &TranscribeOptions) -> Result<Transcript> {
        let language =
            if self.rules.multilingual {
                Some(self.tok.language(&opts.language).ok_or_else(|| {
                    Error::Invalid(format!("unknown language {:?}", opts.language))
                })?)
            } else if opts.language == "en" {
                None
            } else {
                return Err(Error::Invalid(format!(
                    "this model is English-only; language {:?} needs a multilingual model (base)",
                    opts.language
                )));
            };
        let regions = match &opts.vad {
            Some(vad) => speech_regions(samples, vad),
            None => std::iter::once(0..samples.len()).collect(),
        };
        if regions.is_empty() {
            return Ok(Transcript {
                text: String::new(),
                segments: Vec::new(),
            });
        }
        let speech: Vec<f32> = regions
            .iter()
            .flat_map(|r| samples[r.clone()].iter().copied())
            .collect();
        let prompt = if opts.prompt_terms && !opts.terms.is_empty() {
            self.tok
                .encode(&format!(" {}", prompt_text(&opts.terms, &opts.language)))
        } else {
            Vec::new()
        };
        let bias = (opts.bias_bonus > 0.0 && !opts.terms.is_empty())
            .then(|| Bias::new(&self.tok, &opts.terms, opts.bias_bonus));
        let check = (opts.check_terms && !(opts.terms.is_empty() && opts.formulary.is_empty()))
            .then(|| TermCheck::new(&opts.terms, &opts.formulary));
        let vocab = WindowVocab {
            bias: bias.as_ref(),
            check: check.as_ref(),
        };
        let mut segments = self.windows(
            &speech,
            language,
            prompt,
            vocab,
            opts.condition_on_previous_text,
        )?;
        for s in &mut segments {
            s.start = original_time(&regions, s.start);
            s.end = original_time(&regions, s.end);
        }
        if opts.correct_terms {
            correct_segments(&mut segments, &opts.terms);
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcript { text, segments })
    }

    /// The seek loop over 30-second windows of `speech`.
    fn windows(
        &self,
        speech: &[f32],
        language: Option<u32>,
        initial_prompt: Vec<u32>,
        vocab: WindowVocab,
        condition: bool,
    ) -> Result<Vec<Segment>> {
        let mel = LogMel::compute(speech, self.model.config.n_mels);
        let content = speech.len() / HOP;
        let ts = self.tok.special.timestamp_begin;
        let mut history = initial_prompt;
        let mut segments = Vec::new();
        let mut seek = 0usize;
        while seek < content {
            let size = (content - seek).min(WINDOW_FRAMES);
            let offset = seek as f32 * HOP as f32 / SAMPLE_RATE as f32;
            let audio = self.model.encode(&mel.window(seek), WINDOW_FRAMES)?;
            let (result, temperature) =
                self.with_fallback(audio, &history, language, vocab, seek as u64, size)?;
            let silent = result.no_speech_prob > NO_SPEECH_MIN && result.avg_logprob < LOGPROB_MIN;
            if silent || result.compression_ratio > COMPRESSION_RATIO_MAX {
                seek += size;
                continue;
            }
            let tokens = &result.tokens;
            let is_ts = |t: u32| t >= ts;
            let single_ending = tokens.len() >= 2
                && !is_ts(tokens[tokens.len() - 2])
                && is_ts(tokens[tokens.len() - 1]);
            let cuts: Vec<usize> = (1..tokens.len())
                .filter(|&i| is_ts(tokens[i - 1]) && is_ts(tokens[i]))
                .collect();
            let time = |t: u32| offset + (t - ts) as f32 * TIME_STEP;
            // The tokens of the segments kept: a last segment without its closing timestamp is
            // decoded again from its start in the next window.
            let committed = if cuts.is_empty() {
                let end = tokens
                    .iter()
                    .rev()
                    .find(|&&t| is_ts(t) && t != ts)
                    .map_or(offset + size as f32 * 0.01, |&t| time(t));
                self.push_segment(&mut segments, offset, end, tokens);
                seek += heard_frames(tokens, ts, size);
                &tokens[..]
            } else {
                let mut last = 0;
                for &cut in &cuts {
                    let piece = &tokens[last..cut];
                    self.push_segment(
                        &mut segments,
                        time(piece[0]),
                        time(piece[piece.len() - 1]),
                        piece,
                    );
                    last = cut;
                }
                if single_ending {
                    let piece = &tokens[last..];
                    self.push_segment(
                        &mut segments,
                        time(piece[0]),
                        time(piece[piece.len() - 1]),
                        piece,
                    );
                    seek += heard_frames(tokens, ts, size);
                    &tokens[..]
                } else {
                    seek += (2 * (tokens[last - 1] - ts) as usize).max(1);
                    &tokens[..last]
                }
            };
            // Only what was kept conditions the next window: the text about to be decoded again
            // must not be in its prompt (Whisper would take it as already said).
            if condition && temperature <= 0.5 {
                history.extend(committed.iter().filter(|&&t| t < self.tok.special.eot));
            } else {
                history.clear();
            }
        }
        Ok(segments)
    }

    fn push_segment(&self, segments: &mut Vec<Segment>, start: f32, end: f32, tokens: &[u32]) {
        let text = self.tok.decode(tokens).trim().to_string();
        if !text.is_empty() {
            segments.push(Segment {
                start,
                end: end.max(start),
                text,
            });
        }
    }

    /// Greedy decoding, then sampling at rising temperatures while the result looks like a
    /// hallucination; returns the first good try (else the best one), its record terms checked
    /// against the audio, and its temperature.
    fn with_fallback(
        &self,
        audio: crate::model::DecoderState,
        prompt: &[u32],
        language: Option<u32>,
        vocab: WindowVocab,
        seed: u64,
        frames: usize,
    ) -> Result<(WindowResult, f32)> {
        // The window's audio ends after `frames` mel frames of 10 ms (timestamps are 20 ms).
        let last_timestamp = (frames.div_ceil(2) as u32 + END_SLACK_STEPS).min(WINDOW_STEPS);
        let primed = prime(
            &self.model,
            &self.tok,
            &self.rules,
            audio.clone(),
            prompt,
            language,
        )?;
        let mut tries: Vec<(WindowResult, f32)> = Vec::new();
        let mut accepted = None;
        for &temperature in &TEMPERATURES {
            let opts = WindowOptions {
                temperature,
                seed,
                bias: vocab.bias,
                last_timestamp,
            };
            let r = decode_window(&self.model, &self.tok, &self.rules, &primed, &opts)?;
            let silent = r.no_speech_prob > NO_SPEECH_MIN;
            if (r.compression_ratio <= COMPRESSION_RATIO_MAX && r.avg_logprob >= LOGPROB_MIN)
                || silent
            {
                accepted = Some((r, temperature));
                break;
            }
            tries.push((r, temperature));
        }
        // When every temperature failed, the most confident try that does not loop, else the
        // most confident try (as faster-whisper does).
        let (mut r, temperature) = match accepted {
            Some(found) => found,
            None => {
                let loops = |r: &WindowResult| r.compression_ratio > COMPRESSION_RATIO_MAX;
                let all_loop = tries.iter().all(|(r, _)| loops(r));
                tries
                    .into_iter()
                    .filter(|(r, _)| all_loop || !loops(r))
                    .max_by(|a, b| a.0.avg_logprob.total_cmp(&b.0.avg_logprob))
                    .expect("at least one temperature")
            }
        };
        if let Some(check) = vocab.check {
            let greedy = WindowOptions {
                temperature: 0.0,
                seed,
                bias: vocab.bias,
                last_timestamp,
            };
            let window = Window {
                model: &self.model,
                tok: &self.tok,
                rules: &self.rules,
                primed: &primed,
                opts: &greedy,
            };
            check.apply(&window, &mut r.tokens)?;
            if !prompt.is_empty() {
                let positions = frames.div_ceil(2);
                if let Some(tokens) =
                    self.read_without_prompt(&audio, language, check, &window, &r, positions)?
                {
                    r.tokens = tokens;
                }
            }
        }
        Ok((r, temperature))
    }

    /// The window read again without its prompt when its reading passes over speech (a word
    /// lasting over [`SKIPPED_SPEECH`]: Whisper, given names or earlier text as its prompt, may
    /// take a sentence as already said), the record's terms checked in it the same way; kept
    /// when it passes over less and writes every record and formulary name the first did.
    fn read_without_prompt(
        &self,
        audio: &DecoderState,
        language: Option<u32>,
        check: &TermCheck,
        prompted: &Window,
        first: &WindowResult,
        positions: usize,
    ) -> Result<Option<Vec<u32>>> {
        let longest = |tokens: &[u32]| -> Result<f32> {
            let text = self.tok.text_tokens(tokens);
            let starts = token_starts(
                &self.model,
                &self.tok,
                &self.rules,
                audio,
                language,
                &text,
                positions,
            )?;
            Ok(longest_word(&self.tok, &text, &starts))
        };
        let before = longest(&first.tokens)?;
        if before <= SKIPPED_SPEECH {
            return Ok(None);
        }
        let primed = prime(
            &self.model,
            &self.tok,
            &self.rules,
            audio.clone(),
            &[],
            language,
        )?;
        let mut again = decode_window(&self.model, &self.tok, &self.rules, &primed, prompted.opts)?;
        if again.compression_ratio > COMPRESSION_RATIO_MAX || again.avg_logprob < LOGPROB_MIN {
            return Ok(None);
        }
        check.apply(prompted, &mut again.tokens)?;
        let after = longest(&again.tokens)?;
        let names = check.names_written(&self.tok, &again.tokens);
        let keeps = check
            .names_written(&self.tok, &first.tokens)
            .iter()
            .all(|n| names.contains(n));
        Ok((after < before && keeps).then_some(again.tokens))
    }
}

/// Mel frames of a window of `size` frames that its `tokens` transcribed, the whole window
/// unless the text closes with a timestamp well before its end: Whisper may end a window early,
/// taking the speech left as said already, and speech the detector kept after the last
/// timestamp is decoded again from there.
fn heard_frames(tokens: &[u32], timestamp_begin: u32, size: usize) -> usize {
    let ended = match tokens {
        [.., text, closing] if *text < timestamp_begin && *closing > timestamp_begin => {
            2 * (closing - timestamp_begin) as usize
        }
        _ => size,
    };
    if size.saturating_sub(ended) > UNHEARD_TAIL_FRAMES {
        ended
    } else {
        size
    }
}

/// Corrects near misses of the record's terms over the whole transcript: a misheard term may
/// straddle two segments (`... prend à` | `spirine 500 mg`); it is written in the first, and a
/// segment left without words is dropped.
fn correct_segments(segments: &mut Vec<Segment>, terms: &[String]) {
    let owners: Vec<usize> = segments
        .iter()
        .enumerate()
        .flat_map(|(i, s)| std::iter::repeat_n(i, s.text.split_whitespace().count()))
        .collect();
    let words: Vec<&str> = segments
        .iter()
        .flat_map(|s| s.text.split_whitespace())
        .collect();
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); segments.len()];
    for (owner, word) in owners.into_iter().zip(corrected_words(&words, terms)) {
        texts[owner].extend(word);
    }
    for (segment, words) in segments.iter_mut().zip(texts) {
        segment.text = words.join(" ");
    }
    segments.retain(|s| !s.text.is_empty());
}

/// Maps a time in the joined speech back to the recording.
fn original_time(regions: &[Range<usize>], t: f32) -> f32 {
    let mut pos = (t * SAMPLE_RATE as f32).max(0.0) as usize;
    for r in regions {
        if pos <= r.len() {
            return (r.start + pos) as f32 / SAMPLE_RATE as f32;
        }
        pos -= r.len();
    }
    regions
        .last()
        .map_or(0.0, |r| r.end as f32 / SAMPLE_RATE as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::tiny_tokenizer_json;

    #[test]
    fn a_window_closed_well_before_its_end_is_decoded_again_from_its_last_timestamp() {
        let ts = 50364;
        let text = 440;
        // Text closed at 9 s in a window of 14.27 s: 5 s of speech left unheard.
        assert_eq!(heard_frames(&[ts, text, ts + 450], ts, 1427), 900);
        // Closed within 2 s of the end: the window is done.
        assert_eq!(heard_frames(&[ts, text, ts + 650], ts, 1427), 1427);
        // Not closed by a timestamp, or only timestamps.
        assert_eq!(heard_frames(&[ts, text], ts, 1427), 1427);
        assert_eq!(heard_frames(&[ts, ts], ts, 1427), 1427);
    }

    #[test]
    fn a_term_misheard_across_two_segments_is_corrected_in_the_first() {
        let segment = |start: f32, text: &str| Segment {
            start,
            end: start + 1.0,
            text: text.into(),
        };
        let mut segments = vec![
            segment(0.0, "Le patient prend à"),
            segment(1.0, "spirine 500 mg."),
            segment(2.0, "met"),
            segment(3.0, "forming."),
        ];
        correct_segments(&mut segments, &["aspirine".into(), "metformin".into()]);
        let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Le patient prend aspirine", "500 mg.", "metformin."]
        );
        assert_eq!(segments[2].start, 2.0);
    }

    fn transcriber(multilingual: bool) -> Transcriber {
        let tok = Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
        let model = Whisper::load(
            &crate::model::tests::random_model(16, 1, 272 + 1501, 4),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let rules = TokenRules {
            alignment_heads: Vec::new(),
            multilingual,
            suppress_ids: vec![],
            suppress_ids_begin: vec![],
        };
        Transcriber::new(model, tok, rules)
    }

    #[test]
    fn silence_and_noise_give_empty_transcripts_without_decoding() {
        let t = transcriber(true);
        let opts = TranscribeOptions::default();
        assert_eq!(t.transcribe(&vec![0.0; 64_000], &opts).unwrap().text, "");
        let noise = crate::vad::tests::noise(64_000, 0.2, 11);
        assert!(t.transcribe(&noise, &opts).unwrap().segments.is_empty());
    }

    #[test]
    fn segments_are_timed_within_the_recording() {
        let t = transcriber(true);
        let mut audio = crate::vad::tests::noise(6 * 16_000, 0.005, 2);
        for (x, v) in audio[40_000..70_000]
            .iter_mut()
            .zip(crate::vad::tests::vowels(30_000, 0.4))
        {
            *x += v;
        }
        let opts = TranscribeOptions {
            language: "fr".into(),
            terms: vec!["metformin".into()],
            ..Default::default()
        };
        let out = t.transcribe(&audio, &opts).unwrap();
        for s in &out.segments {
            assert!(s.start >= 2.0 && s.end <= 6.0 && s.start <= s.end, "{s:?}");
        }
        assert_eq!(
            out.text,
            out.segments
                .iter()
                .map(|s| s.text.clone())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    #[test]
    fn english_only_models_refuse_other_languages() {
        let t = transcriber(false);
        let opts = TranscribeOptions {
            language: "fr".into(),
            vad: None,
            ..Default::default()
        };
        let err = t.transcribe(&[0.0; 1600], &opts).unwrap_err().to_string();
        assert!(err.contains("English-only"), "{err}");
    }

    #[test]
    fn times_map_back_across_removed_silence() {
        let regions = [16_000..32_000, 64_000..80_000];
        assert_eq!(original_time(&regions, 0.0), 1.0);
        assert_eq!(original_time(&regions, 0.5), 1.5);
        assert_eq!(original_time(&regions, 1.5), 4.5);
        assert_eq!(original_time(&regions, 9.0), 5.0);
    }
}
