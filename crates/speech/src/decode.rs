//! Decoding one 30-second window: the start-of-transcript sequence after an optional prompt,
//! Whisper's logit rules (suppressed tokens, blank at the start, timestamp pairing, monotonic
//! timestamps, initial timestamp at most 1 s, timestamps win when their total probability beats
//! any text token), vocabulary bias, and greedy or temperature sampling.

use crate::Result;
use crate::model::{DecoderState, Whisper};
use crate::tokenizer::Tokenizer;
use crate::vocab::Bias;

/// Token rules of an installed model (from its package's `config.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenRules {
    /// English-only models have no language or task token.
    pub multilingual: bool,
    /// Tokens never sampled (non-speech symbols and control tokens).
    pub suppress_ids: Vec<u32>,
    /// Tokens not sampled first (space, end of text).
    pub suppress_ids_begin: Vec<u32>,
    /// The cross-attention heads (decoder layer, head) that follow the audio token by token
    /// (the package's `alignment_heads`); empty: every head of the decoder's second half.
    #[serde(default)]
    pub alignment_heads: Vec<(usize, usize)>,
}

/// Options of one window's decoding.
pub struct WindowOptions<'a> {
    /// 0 for greedy decoding; above 0, sampling at this temperature.
    pub temperature: f32,
    /// Seed of the sampler.
    pub seed: u64,
    /// Bias towards the record's vocabulary.
    pub bias: Option<&'a Bias>,
    /// Latest timestamp (in 20 ms steps from the window's start) that may be sampled: the end
    /// of the window's audio, so that a window shorter than 30 s is not closed past its speech.
    pub last_timestamp: u32,
}

/// What one window's decoding produced.
#[derive(Debug, Clone)]
pub struct WindowResult {
    /// Sampled tokens (text and timestamps), end of text excluded.
    pub tokens: Vec<u32>,
    /// Mean log-probability of the sampled tokens.
    pub avg_logprob: f32,
    /// Probability of `<|nospeech|>` at the start.
    pub no_speech_prob: f32,
    /// Bytes of the text over bytes of its zlib compression (repetition loops compress well).
    pub compression_ratio: f32,
}

/// Maximum tokens sampled per window (half the text context, as Whisper).
const SAMPLE_LEN: usize = 224;
/// Timestamp steps of 20 ms in a 30 s window.
pub const WINDOW_STEPS: u32 = 1500;
/// Latest first timestamp, in timestamp steps of 20 ms (1 s).
const MAX_INITIAL_TIMESTAMP: u32 = 50;

/// The decoder of one window after its start sequence (previous text, start of transcript,
/// language and task): computed once and shared by every temperature of the fallback.
pub struct Primed {
    pub(crate) state: DecoderState,
    pub(crate) logits: Vec<f32>,
    prefix_len: usize,
    /// Probability of `<|nospeech|>` at the start of the transcript.
    pub no_speech_prob: f32,
}

impl Primed {
    /// Most tokens a window may hold after this start sequence.
    pub(crate) fn budget(&self, model: &Whisper) -> usize {
        SAMPLE_LEN.min(model.config.n_text_ctx - self.prefix_len)
    }
}

/// Feeds the start sequence of a window whose encoder state is `audio`: the end of `prompt`
/// after `<|startofprev|>`, then `<|startoftranscript|>` and, for multilingual models, the
/// `language` and `<|transcribe|>`.
pub fn prime(
    model: &Whisper,
    tok: &Tokenizer,
    rules: &TokenRules,
    mut audio: DecoderState,
    prompt: &[u32],
    language: Option<u32>,
) -> Result<Primed> {
    let sp = &tok.special;
    let mut prefix = Vec::new();
    if !prompt.is_empty() {
        let keep = model.config.n_text_ctx / 2 - 1;
        prefix.push(sp.sot_prev);
        prefix.extend_from_slice(&prompt[prompt.len().saturating_sub(keep)..]);
    }
    let sot_index = prefix.len();
    prefix.push(sp.sot);
    if rules.multilingual {
        prefix.extend(language);
        prefix.push(sp.transcribe);
    }
    let mut rows = model.decode(&mut audio, &prefix, &[sot_index, prefix.len() - 1])?;
    let logits = rows.pop().unwrap_or_default();
    let no_speech_prob = rows
        .pop()
        .map_or(0.0, |l| log_softmax(&l)[sp.no_speech as usize].exp());
    Ok(Primed {
        state: audio,
        logits,
        prefix_len: prefix.len(),
        no_speech_prob,
    })
}

/// Decodes one window from its primed decoder (left untouched).
pub fn decode_window(
    model: &Whisper,
    tok: &Tokenizer,
    rules: &TokenRules,
    primed: &Primed,
    opts: &WindowOptions,
) -> Result<WindowResult> {
    let run = continue_window(
        model,
        tok,
        rules,
        primed.state.clone(),
        primed.logits.clone(),
        Vec::new(),
        opts,
        primed.budget(model),
        &|_| false,
    )?;
    let text = tok.decode(&run.tokens);
    Ok(WindowResult {
        avg_logprob: run.sum_logprob / (run.tokens.len() + 1) as f32,
        no_speech_prob: primed.no_speech_prob,
        compression_ratio: compression_ratio(&text),
        tokens: run.tokens,
    })
}

/// A window's tokens decoded after some already read.
pub(crate) struct Continued {
    /// All the window's tokens, those given first included; end of text excluded.
    pub tokens: Vec<u32>,
    /// Log-probabilities of the tokens added and the end of text, after the rules.
    pub sum_logprob: f32,
    /// The same without the rules and bias: the model's own log-probabilities.
    pub raw_logprob: f32,
    /// The end of text was decoded (not the budget or `stop` reached).
    pub ended: bool,
}

/// Decodes a window on from `tokens` (already read into `state`, `current` the logits after
/// them) until the end of text, `budget` tokens in all, or `stop` holds of the tokens.
#[allow(clippy::too_many_arguments)]
pub(crate) fn continue_window(
    model: &Whisper,
    tok: &Tokenizer,
    rules: &TokenRules,
    mut state: DecoderState,
    mut current: Vec<f32>,
    mut tokens: Vec<u32>,
    opts: &WindowOptions,
    budget: usize,
    stop: &dyn Fn(&[u32]) -> bool,
) -> Result<Continued> {
    let sp = &tok.special;
    let mut sum_logprob = 0.0f32;
    let mut raw_logprob = 0.0f32;
    let mut rng = opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut ended = false;
    while tokens.len() < budget {
        let raw = log_softmax(&current);
        apply_rules(&mut current, &tokens, tok, rules, opts);
        let lp = log_softmax(&current);
        let next = if opts.temperature > 0.0 {
            sample(&current, opts.temperature, &mut rng)
        } else {
            argmax(&current)
        };
        sum_logprob += lp[next as usize];
        raw_logprob += raw[next as usize];
        if next == sp.eot {
            ended = true;
            break;
        }
        tokens.push(next);
        if stop(&tokens) {
            break;
        }
        current = model
            .decode(&mut state, &[next], &[0])?
            .pop()
            .unwrap_or_default();
    }
    Ok(Continued {
        tokens,
        sum_logprob,
        raw_logprob,
        ended,
    })
}

/// Applies the suppression, timestamp and bias rules to one step's logits.
fn apply_rules(
    logits: &mut [f32],
    sampled: &[u32],
    tok: &Tokenizer,
    rules: &TokenRules,
    opts: &WindowOptions,
) {
    let sp = &tok.special;
    let ts = sp.timestamp_begin as usize;
    let n = logits.len();
    let ban = |logits: &mut [f32], range: std::ops::Range<usize>| {
        logits[range.start.min(n)..range.end.min(n)]
            .iter_mut()
            .for_each(|l| *l = f32::NEG_INFINITY)
    };
    for &id in &rules.suppress_ids {
        ban(logits, id as usize..id as usize + 1);
    }
    // Between text and timestamps only the end of text is ever sampled.
    ban(logits, sp.eot as usize + 1..ts);
    if sampled.is_empty() {
        for &id in &rules.suppress_ids_begin {
            ban(logits, id as usize..id as usize + 1);
        }
    }
    if let Some(bias) = opts.bias {
        let text: Vec<u32> = sampled
            .iter()
            .rev()
            .take_while(|&&t| t < sp.eot)
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bias.apply(&text, logits);
    }
    let is_ts = |t: &u32| *t >= sp.timestamp_begin;
    let last_ts = sampled.last().is_some_and(is_ts);
    let penultimate_ts = sampled.len() < 2 || is_ts(&sampled[sampled.len() - 2]);
    if last_ts {
        if penultimate_ts {
            ban(logits, ts..n);
        } else {
            ban(logits, 0..sp.eot as usize);
        }
    }
    if let Some(&latest) = sampled.iter().rev().find(|t| is_ts(t)) {
        // Timestamps never go back; a closing timestamp may equal the opening one.
        let floor = if last_ts && !penultimate_ts {
            latest
        } else {
            latest + 1
        };
        ban(logits, ts..floor as usize);
    }
    ban(logits, ts + opts.last_timestamp as usize + 1..n);
    if sampled.is_empty() {
        ban(logits, 0..ts);
        ban(logits, ts + MAX_INITIAL_TIMESTAMP as usize + 1..n);
    }
    let lp = log_softmax(logits);
    let ts_mass = log_sum_exp(&lp[ts.min(n)..]);
    let best_text = lp[..ts.min(n)]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if ts_mass > best_text {
        ban(logits, 0..ts);
    }
}

fn log_sum_exp(x: &[f32]) -> f32 {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f32>().ln()
}

pub(crate) fn log_softmax(x: &[f32]) -> Vec<f32> {
    let z = log_sum_exp(x);
    x.iter().map(|v| v - z).collect()
}

fn argmax(x: &[f32]) -> u32 {
    x.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0 as u32
}

/// Samples from softmax(logits / temperature) with a xorshift generator.
fn sample(logits: &[f32], temperature: f32, rng: &mut u64) -> u32 {
    let scaled: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
    let probs: Vec<f32> = log_softmax(&scaled).iter().map(|l| l.exp()).collect();
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let mut u = (*rng >> 40) as f32 / (1u64 << 24) as f32;
    for (i, p) in probs.iter().enumerate() {
        if u < *p {
            return i as u32;
        }
        u -= p;
    }
    argmax(logits)
}

/// Whisper's repetition measure: text bytes over zlib-compressed bytes.
pub fn compression_ratio(text: &str) -> f32 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = enc
        .write_all(text.as_bytes())
        .and_then(|_| enc.finish())
        .map_or(1, |c| c.len());
    text.len() as f32 / compressed as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::tiny_tokenizer_json;

    fn setup() -> (Whisper, Tokenizer, TokenRules) {
        let tok = Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
        // Vocabulary: 272 text/special tokens + 1501 timestamps.
        let model = Whisper::load(
            &crate::model::tests::random_model(16, 1, 272 + 1501, 9),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let rules = TokenRules {
            alignment_heads: Vec::new(),
            multilingual: true,
            suppress_ids: vec![tok.special.sot, tok.special.sot_prev],
            suppress_ids_begin: vec![b' ' as u32, tok.special.eot],
        };
        (model, tok, rules)
    }

    #[test]
    fn timestamps_come_first_in_pairs_and_never_go_back() {
        let (model, tok, rules) = setup();
        let mel: Vec<f32> = (0..8 * 3000)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let audio = model.encode(&mel, 3000).unwrap();
        let primed = prime(&model, &tok, &rules, audio, &[40, 41], tok.language("fr")).unwrap();
        let ts = tok.special.timestamp_begin;
        for seed in 0..4 {
            let opts = WindowOptions {
                temperature: if seed == 0 { 0.0 } else { 1.0 },
                seed,
                bias: None,
                last_timestamp: WINDOW_STEPS,
            };
            let r = decode_window(&model, &tok, &rules, &primed, &opts).unwrap();
            assert!(
                r.tokens[0] >= ts && r.tokens[0] <= ts + MAX_INITIAL_TIMESTAMP,
                "{:?}",
                r.tokens
            );
            let stamps: Vec<u32> = r.tokens.iter().copied().filter(|&t| t >= ts).collect();
            assert!(stamps.windows(2).all(|w| w[1] >= w[0]), "{stamps:?}");
            // Never three timestamps in a row, never a control token.
            assert!(
                r.tokens.windows(3).all(|w| !w.iter().all(|&t| t >= ts)),
                "{:?}",
                r.tokens
            );
            assert!(r.tokens.iter().all(|&t| t >= ts || t < tok.special.eot));
            assert!(r.avg_logprob <= 0.0 && (0.0..=1.0).contains(&r.no_speech_prob));
        }
    }

    #[test]
    fn repetition_loops_have_a_high_compression_ratio() {
        let loop_text = "the patient is taking the medication. ".repeat(8);
        assert!(compression_ratio(&loop_text) > 2.4);
        assert!(
            compression_ratio(
                "Patient reports chest pain radiating to the left arm since yesterday."
            ) < 2.0
        );
        assert_eq!(compression_ratio(""), 0.0);
    }

    /// Greedy decoding without bias, timestamps up to `last_timestamp`.
    fn greedy(last_timestamp: u32) -> WindowOptions<'static> {
        WindowOptions {
            temperature: 0.0,
            seed: 0,
            bias: None,
            last_timestamp,
        }
    }

    #[test]
    fn rules_ban_text_first_and_after_a_lone_timestamp() {
        let (_, tok, rules) = setup();
        let n = 272 + 1501;
        let ts = tok.special.timestamp_begin as usize;
        let opts = greedy(WINDOW_STEPS);
        let mut logits = vec![0.0f32; n];
        logits[70] = 30.0;
        apply_rules(&mut logits, &[], &tok, &rules, &opts);
        assert!(
            logits[70].is_infinite() && logits[ts].is_finite() && logits[ts + 51].is_infinite()
        );
        // After <|0.00|> text: text allowed; after "<|0.00|> a <|1.00|>": only a timestamp >= 1.00 or end.
        let mut logits = vec![0.0f32; n];
        apply_rules(
            &mut logits,
            &[ts as u32, 97, ts as u32 + 50],
            &tok,
            &rules,
            &opts,
        );
        assert!(
            logits[97].is_infinite()
                && logits[ts + 49].is_infinite()
                && logits[ts + 50].is_finite()
        );
    }

    #[test]
    fn a_window_is_never_closed_past_the_end_of_its_audio() {
        let (_, tok, rules) = setup();
        let n = 272 + 1501;
        let ts = tok.special.timestamp_begin as usize;
        // Ten seconds of audio: the last timestamp allowed is 10.00 s.
        let opts = greedy(500);
        let mut logits = vec![0.0f32; n];
        logits[ts + 1480] = 30.0;
        logits[97] = 10.0;
        apply_rules(&mut logits, &[ts as u32, 97], &tok, &rules, &opts);
        assert!(logits[ts + 1480].is_infinite() && logits[ts + 501].is_infinite());
        assert!(logits[ts + 500].is_finite() && logits[97].is_finite());
    }
}
