//! A second look, with the audio, at words that sound like a record term but are spelled too far
//! from it for the text correction ("home-pursole" for omeprazole, "some to statin" for
//! simvastatin, "sur le pâtre ferreux" for sulfate ferreux). For each run of decoded words whose
//! phonetic key lies within 40% of a record term's (a run within 30% and spelled close is the
//! text correction's), the decoder scores, on the same audio and after the same preceding tokens, the heard
//! tokens and the term's tokens, each followed by the next few heard tokens; the term replaces
//! the words when its score, plus a prior for a name that is in the patient's record, is at
//! least the heard words'. Whisper thus decides from the sound whether the term was said; words
//! that only look alike on paper keep their spelling.

use crate::Result;
use crate::decode::{Primed, log_softmax};
use crate::model::{DecoderState, Whisper};
use crate::tokenizer::Tokenizer;
use crate::vocab::{
    Distance, Sound, capitalised, closest_term, sounds, split_elision, word_letters,
};
use std::ops::Range;

/// Log-probability (nats) granted to a term because it is in the patient's record.
pub const RECORD_PRIOR: f32 = 3.0;
/// Heard tokens after the run that both readings must also explain.
const FOLLOWING_TOKENS: usize = 3;

/// The record's terms, with their token sequences as a word (lower case and capitalised).
pub struct TermCheck {
    terms: Vec<String>,
    prior: f32,
}

/// A decoded word: its tokens `start..end` in the window, the tokens of its trailing
/// punctuation excluded.
struct Word {
    start: usize,
    end: usize,
    text: String,
}

/// A replacement decided for one run of words.
struct Swap {
    start: usize,
    end: usize,
    tokens: Vec<u32>,
}

impl TermCheck {
    /// A check of `terms` (the record's vocabulary) with `prior` nats for a record term.
    pub fn new(terms: &[String], prior: f32) -> TermCheck {
        TermCheck {
            terms: terms.to_vec(),
            prior,
        }
    }

    /// Rechecks the window's decoded `tokens` (text and timestamps) against the audio behind
    /// `primed`, and replaces the runs of words where the record term scores better.
    pub fn apply(
        &self,
        model: &Whisper,
        tok: &Tokenizer,
        primed: &Primed,
        tokens: &mut Vec<u32>,
    ) -> Result<()> {
        let sounds = sounds(&self.terms);
        if sounds.is_empty() {
            return Ok(());
        }
        let words = words(tok, tokens);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        let heard = word_letters(&texts);
        let spell = |i: usize, term: &str| {
            let (elided, first) = split_elision(texts[i]);
            let term = if first.starts_with(char::is_uppercase) {
                capitalised(term)
            } else {
                term.to_string()
            };
            tok.encode(&format!(" {elided}{term}"))
        };
        // The closest sounding term at each word, if any.
        let mut candidates: Vec<(usize, usize, &Sound)> = Vec::new();
        for i in 0..words.len() {
            let check = |d: Distance, len: usize| {
                d.sounds_alike() && !d.near(len) && contiguous(&words[i..i + len])
            };
            candidates
                .extend(closest_term(&heard, i, &sounds, check).map(|(len, term)| (i, len, term)));
        }
        let Some(last) = candidates.last().map(|c| words[c.0].start) else {
            return Ok(());
        };
        // One decoder pass over the tokens before the last candidate gives every candidate's
        // context: the state cut at its start, and the logits there.
        let mut read = primed.state.clone();
        let base = read.tokens_seen();
        let rows: Vec<usize> = candidates
            .iter()
            .filter_map(|c| words[c.0].start.checked_sub(1))
            .collect();
        let logits = if last == 0 {
            Vec::new()
        } else {
            model.decode(&mut read, &tokens[..last], &rows)?
        };
        let mut swaps: Vec<Swap> = Vec::new();
        let mut free = 0;
        let mut row = 0;
        for (i, len, term) in candidates {
            let start = words[i].start;
            let first = if start == 0 {
                &primed.logits
            } else {
                row += 1;
                &logits[row - 1]
            };
            if i < free {
                continue;
            }
            let end = words[i + len - 1].end;
            let candidate = spell(i, term.term);
            let ctx = Context {
                state: read.truncated(base + start)?,
                first: log_softmax(first),
            };
            let heard_score = ctx.score(model, &with_following(tok, tokens, start..end, &[]))?;
            let said_score =
                ctx.score(model, &with_following(tok, tokens, start..end, &candidate))?;
            if said_score + self.prior >= heard_score {
                swaps.push(Swap {
                    start,
                    end,
                    tokens: candidate,
                });
                free = i + len;
            }
        }
        for swap in swaps.into_iter().rev() {
            tokens.splice(swap.start..swap.end, swap.tokens);
        }
        Ok(())
    }
}

/// `replacement` (the heard `tokens[run]` when empty) followed by the next heard text tokens
/// after the run.
fn with_following(
    tok: &Tokenizer,
    tokens: &[u32],
    run: Range<usize>,
    replacement: &[u32],
) -> Vec<u32> {
    let read = if replacement.is_empty() {
        &tokens[run.clone()]
    } else {
        replacement
    };
    let following = tokens[run.end..]
        .iter()
        .take_while(|&&t| t < tok.special.eot)
        .take(FOLLOWING_TOKENS);
    read.iter().chain(following).copied().collect()
}

/// The decoder after the tokens before a run: its state and next-token log-probabilities.
struct Context {
    state: DecoderState,
    first: Vec<f32>,
}

impl Context {
    /// Sum of the log-probabilities of `seq` from here.
    fn score(&self, model: &Whisper, seq: &[u32]) -> Result<f32> {
        let Some((&head, rest)) = seq.split_first() else {
            return Ok(0.0);
        };
        let mut total = self.first[head as usize];
        if !rest.is_empty() {
            let fed = &seq[..seq.len() - 1];
            let rows: Vec<usize> = (0..fed.len()).collect();
            let mut state = self.state.clone();
            for (logits, &next) in model.decode(&mut state, fed, &rows)?.iter().zip(rest) {
                total += log_softmax(logits)[next as usize];
            }
        }
        Ok(total)
    }
}

/// The window's words: a text token starting with a space starts a word, timestamps end one;
/// trailing tokens with no letter or digit (punctuation) are left out of the word's tokens, those
/// inside it (`home-pursole`) are kept.
fn words(tok: &Tokenizer, tokens: &[u32]) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut open = false;
    for (i, &t) in tokens.iter().enumerate() {
        if t >= tok.special.eot {
            open = false;
            continue;
        }
        let bytes = tok.token_bytes(t);
        let piece = String::from_utf8_lossy(bytes);
        let wordy = piece.chars().any(char::is_alphanumeric);
        let starts = bytes.first() == Some(&b' ') || !open;
        if starts {
            out.push(Word {
                start: i,
                end: i + usize::from(wordy),
                text: piece.trim_start().to_string(),
            });
            open = true;
        } else if let Some(w) = out.last_mut() {
            if wordy {
                w.end = i + 1;
            }
            w.text.push_str(&piece);
        }
    }
    out.retain(|w| w.end > w.start);
    out
}

/// Words that follow each other with nothing but spaces between their tokens (no punctuation or
/// timestamp inside the run).
fn contiguous(run: &[Word]) -> bool {
    run.windows(2).all(|w| w[0].end == w[1].start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::tiny_tokenizer_json;

    #[test]
    fn words_keep_their_tokens_and_leave_trailing_punctuation_out() {
        let tok = Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
        let ts = tok.special.timestamp_begin;
        let mut tokens = vec![ts];
        tokens.extend(tok.encode(" some to statin, daily. home-pursole"));
        tokens.push(ts + 40);
        let words = words(&tok, &tokens);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["some", "to", "statin,", "daily.", "home-pursole"]);
        assert!(contiguous(&words[..3]) && !contiguous(&words[2..]));
        let statin = &words[2];
        assert_eq!(tok.decode(&tokens[statin.start..statin.end]), " statin");
        assert_eq!(words[0].start, 1);
        let last = &words[4];
        assert_eq!(tok.decode(&tokens[last.start..last.end]), " home-pursole");
    }
}
