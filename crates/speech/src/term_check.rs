//! A second look, with the audio, at words that sound like a record term but are spelled too far
//! from it for the text correction ("home-pursole" for omeprazole, "some to statin" for
//! simvastatin, "sur le pâtre ferreux" for sulfate ferreux). For each run of decoded words whose
//! phonetic key lies within 40% of a record term's (a run within 30% and spelled close is the
//! text correction's), the decoder scores, on the same audio and after the same preceding tokens, the heard
//! tokens and the term's tokens, each followed by the next few heard tokens; the term replaces
//! the words when its score, plus a prior for a name that is in the patient's record, is at
//! least the heard words'. Whisper thus decides from the sound whether the term was said; words
//! that only look alike on paper keep their spelling. Where no record term sounds like the
//! words, the hospital's formulary names are checked the same way, spelled close or not, with a
//! smaller prior (a drug the hospital stocks, not one the patient takes); a word that is a
//! formulary or record name as written is never replaced, by the check or by the search for
//! absent terms.

use crate::Result;
use crate::decode::{Primed, TokenRules, WindowOptions, continue_window, log_softmax};
use crate::model::{DecoderState, Whisper};
use crate::tokenizer::Tokenizer;
use crate::vocab::{Distance, Sound, closest_terms, in_case, sounds, split_elision, word_letters};
use crate::wer::terms_in;
use std::ops::Range;

/// Log-probability (nats) granted to a term because it is in the patient's record, when the
/// decoded words sound like it.
const RECORD_PRIOR: f32 = 4.0;
/// The same for a name of the hospital's formulary that the record does not hold.
const FORMULARY_PRIOR: f32 = 1.0;
/// Formulary names checked at a word (the closest sounding): with a thousand names, the
/// closest by spelling is not always the one said.
const FORMULARY_CANDIDATES: usize = 3;
/// The same for a record term forced where the decoded words do not sound like it (a term
/// skipped, or written as something else): weaker evidence, a smaller prior.
const ABSENT_PRIOR: f32 = 3.0;
/// Heard tokens after the run that both readings must also explain.
const FOLLOWING_TOKENS: usize = 3;
/// An absent term is tried where its first token's log-probability is at most this far below
/// the heard token's.
const FIRST_TOKEN_GAP: f32 = 5.0;
/// Tokens decoded after a forced term before it must read the heard tokens again.
const HORIZON: usize = 16;
/// Heard tokens read in a row that bring a forced reading back onto the heard one.
const SYNC_TOKENS: usize = 3;
/// Most forced readings tried per round, and most rounds (terms written) per window; each
/// reading costs a decoding up to the horizon, or to the end of text for a term at the end.
const MAX_TRIES: usize = 3;
/// Heard tokens a forced reading may pass over beyond those it writes itself: a reading that
/// meets the heard tokens again further on has skipped speech (Whisper jumping a sentence
/// ahead), not heard the term.
const MOST_SKIPPED: usize = 4;
/// Most heard words a forced term may replace when its reading is the heard one around it.
const MOST_REPLACED: usize = 3;

/// The record's terms and the hospital's formulary.
pub struct TermCheck {
    terms: Vec<String>,
    formulary: Vec<String>,
    /// The record's terms as the matching sees them.
    record_sounds: Vec<Sound>,
    /// The formulary's names as the matching sees them.
    formulary_sounds: Vec<Sound>,
    /// The letters of every record term and formulary name: words never replaced.
    names: std::collections::HashSet<String>,
}

/// One window's decoder: the model and its tokenizer and rules, the decoder primed on the
/// window's audio and start sequence, and the options of its greedy decoding.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    /// The model.
    pub model: &'a Whisper,
    /// Its tokenizer.
    pub tok: &'a Tokenizer,
    /// Its token rules.
    pub rules: &'a TokenRules,
    /// The decoder after the window's start sequence.
    pub primed: &'a Primed,
    /// Greedy decoding with the window's vocabulary bias.
    pub opts: &'a WindowOptions<'a>,
}

/// A decoded word: its tokens `start..end` in the window, the tokens of its trailing
/// punctuation excluded.
struct Word {
    start: usize,
    end: usize,
    text: String,
}

/// A term that may replace the heard words at a word: the run's length in words, the term,
/// and its prior.
type Alternative<'s> = (usize, &'s Sound, f32);

/// A replacement decided for one run of words.
struct Swap {
    start: usize,
    end: usize,
    tokens: Vec<u32>,
}

impl TermCheck {
    /// A check of `terms` (the record's vocabulary) and of the hospital's `formulary`.
    pub fn new(terms: &[String], formulary: &[String]) -> TermCheck {
        let names = terms
            .iter()
            .chain(formulary)
            .filter_map(|t| name_letters(t))
            .collect();
        TermCheck {
            terms: terms.to_vec(),
            formulary: formulary.to_vec(),
            record_sounds: sounds(terms),
            formulary_sounds: sounds(formulary),
            names,
        }
    }

    /// The word is a record term or formulary name as written.
    fn is_name(&self, letters: Option<&String>) -> bool {
        letters.is_some_and(|l| self.names.contains(l))
    }

    /// The record terms and formulary names that the text of `tokens` writes, once the text
    /// correction has spelled the record's near misses.
    pub fn names_written(&self, tok: &Tokenizer, tokens: &[u32]) -> Vec<&String> {
        let text = crate::vocab::correct(&tok.decode(&tok.text_tokens(tokens)), &self.terms);
        terms_in(&text, &self.terms)
            .chain(terms_in(&text, &self.formulary))
            .collect()
    }

    /// Rechecks the window's decoded `tokens` (text and timestamps) against its audio: replaces
    /// the runs of words where the record term scores better, then searches the window for the
    /// terms it never wrote.
    pub fn apply(&self, window: &Window, tokens: &mut Vec<u32>) -> Result<()> {
        self.replace_sound_alikes(window.model, window.tok, window.primed, tokens)?;
        self.search_absent(window, tokens)
    }

    /// Replaces the runs of words that sound like a record term where the term scores better.
    fn replace_sound_alikes(
        &self,
        model: &Whisper,
        tok: &Tokenizer,
        primed: &Primed,
        tokens: &mut Vec<u32>,
    ) -> Result<()> {
        if self.record_sounds.is_empty() && self.formulary_sounds.is_empty() {
            return Ok(());
        }
        let words = words(tok, tokens);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        let heard = word_letters(&texts);
        let named: Vec<bool> = heard.iter().map(|w| self.is_name(w.as_ref())).collect();
        let spell = |i: usize, term: &str| {
            let (elided, first) = split_elision(texts[i]);
            let term = in_case(term, first.starts_with(char::is_uppercase));
            tok.encode(&format!(" {elided}{term}"))
        };
        // At each word, the closest sounding record term and formulary names, with their
        // priors; runs holding a name as written are left alone.
        let mut candidates: Vec<(usize, Vec<Alternative>)> = Vec::new();
        for i in 0..words.len() {
            let checkable = |d: Distance, len: usize| {
                d.sounds_alike()
                    && contiguous(&words[i..i + len])
                    && !named[i..i + len].contains(&true)
            };
            // Record terms spelled close are the text correction's; formulary names never are.
            let record = closest_terms(
                &heard,
                i,
                &self.record_sounds,
                |d, len| checkable(d, len) && !d.near(len),
                1,
            );
            let formulary = closest_terms(
                &heard,
                i,
                &self.formulary_sounds,
                checkable,
                FORMULARY_CANDIDATES,
            );
            let options: Vec<Alternative> = record
                .into_iter()
                .map(|(len, term)| (len, term, RECORD_PRIOR))
                .chain(
                    formulary
                        .into_iter()
                        .map(|(len, term)| (len, term, FORMULARY_PRIOR)),
                )
                .collect();
            if !options.is_empty() {
                candidates.push((i, options));
            }
        }
        if candidates.is_empty() {
            return Ok(());
        }
        // One decoder pass over the window gives every candidate's context (the state cut at
        // its start), the log-probabilities of the heard tokens, and of each term's first token.
        let Read {
            state: read,
            base,
            at,
        } = Read::window(model, primed, tokens)?;
        let mut swaps: Vec<Swap> = Vec::new();
        let mut free = 0;
        for (i, options) in candidates {
            if i < free {
                continue;
            }
            let start = words[i].start;
            let context = read.truncated(base + start)?;
            // The term whose reading beats the heard words by most, with its prior.
            let mut best: Option<(f32, usize, Vec<u32>)> = None;
            for (len, term, prior) in options {
                let end = words[i + len - 1].end;
                let heard: f32 = (start..end + following(tok, tokens, end))
                    .map(|p| at[p][tokens[p] as usize])
                    .sum();
                let candidate = spell(i, &term.term);
                // The term's reading scores at most its first token's log-probability: most
                // words that merely sound like a formulary name are settled without decoding.
                if at[start][candidate[0] as usize] + prior < heard {
                    continue;
                }
                let ctx = Context {
                    state: context.clone(),
                    first: at[start].clone(),
                };
                let said =
                    ctx.score(model, &with_following(tok, tokens, start..end, &candidate))?;
                let margin = said + prior - heard;
                if margin >= 0.0 && best.as_ref().is_none_or(|b| margin > b.0) {
                    best = Some((margin, len, candidate));
                }
            }
            if let Some((_, len, candidate)) = best {
                swaps.push(Swap {
                    start,
                    end: words[i + len - 1].end,
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

    /// Tries the record terms the window never wrote where the decoder finds their first token
    /// plausible: the term is forced there and the decoder reads on until it meets the heard
    /// tokens again (or, at the end, to the end of text), not further on than it has read
    /// itself; the term is also read in place of the next one to three heard words, the heard
    /// tokens after them kept. A new reading replaces the old when its log-probability (the
    /// model's own), plus the prior for each record term it writes more, is at least the heard
    /// tokens'. A term the decoder skipped (Whisper may take a prompted name as already said)
    /// or wrote as other words is thus heard again, even where Whisper, made to read the name,
    /// then jumps a sentence ahead.
    fn search_absent(&self, window: &Window, tokens: &mut Vec<u32>) -> Result<()> {
        let Window {
            model,
            tok,
            rules,
            primed,
            opts,
        } = *window;
        let eot = tok.special.eot;
        for _ in 0..MAX_TRIES {
            let written = names_in(tok, tokens, &self.terms);
            let absent: Vec<&String> = self.terms.iter().filter(|t| !written.contains(t)).collect();
            // Formulary names heard: every reading keeps them.
            let heard_names = names_in(tok, tokens, &self.formulary);
            let words = words(tok, tokens);
            if absent.is_empty() || words.is_empty() {
                return Ok(());
            }
            // One pass over the window: the log-probabilities at each position.
            let Read {
                state: read,
                base,
                mut at,
            } = Read::window(model, primed, tokens)?;
            let end = tokens.len();
            // Log-probability of the heard tokens from each position to the end of text.
            let mut rest = vec![at[end][eot as usize]; end + 1];
            for i in (0..end).rev() {
                rest[i] = rest[i + 1] + at[i][tokens[i] as usize];
            }
            let starts = term_starts(model, tok, tokens, &words, &read, &mut at)?;
            // Each absent term where its first token comes closest to the heard one.
            let mut tries: Vec<(f32, &Start, Vec<u32>)> = Vec::new();
            for term in absent {
                // The term's tokens as a word, as written and capitalised.
                let spelled =
                    [false, true].map(|upper| tok.encode(&format!(" {}", in_case(term, upper))));
                let best = starts
                    .iter()
                    .map(|start| {
                        let seq = &spelled[usize::from(start.upper)];
                        let heard = tokens.get(start.pos).copied().unwrap_or(eot);
                        let gap = start.lead_logprob + at[start.row][seq[0] as usize]
                            - at[start.pos][heard as usize];
                        (gap, start, seq)
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                tries.extend(
                    best.filter(|b| b.0 >= -FIRST_TOKEN_GAP)
                        .map(|(gap, start, seq)| (gap, start, seq.clone())),
                );
            }
            tries.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut best: Option<(f32, Vec<u32>)> = None;
            // A reading of `said` nats (the model's own) in place of heard tokens of `heard`
            // nats: kept when it writes more record terms and scores best with their prior.
            let mut consider = |reading: Vec<u32>, said: f32, heard: f32| {
                let gain = names_in(tok, &reading, &self.terms).len() as f32 - written.len() as f32;
                let margin = said + ABSENT_PRIOR * gain - heard;
                let keeps_names =
                    || names_in(tok, &reading, &heard_names).len() == heard_names.len();
                if gain > 0.0
                    && margin >= 0.0
                    && best.as_ref().is_none_or(|b| margin > b.0)
                    && keeps_names()
                {
                    best = Some((margin, reading));
                }
            };
            for (_, start, seq) in tries.into_iter().take(MAX_TRIES) {
                let forced: Vec<u32> = start.lead.iter().chain(&seq).copied().collect();
                let mut state = read.truncated(base + start.pos)?;
                let rows: Vec<usize> = (0..forced.len()).collect();
                let mut logits = model.decode(&mut state, &forced, &rows)?;
                let mut said = start.lead_logprob + at[start.row][seq[0] as usize];
                for (l, &next) in logits[usize::from(start.lead.is_some())..]
                    .iter()
                    .zip(&seq[1..])
                {
                    said += log_softmax(l)[next as usize];
                }
                if start.lead.is_none() {
                    // The term in place of the next few heard words, the heard tokens after them
                    // unchanged.
                    let first = words.iter().position(|w| w.start == start.pos).unwrap_or(0);
                    let ctx = Context {
                        state: read.truncated(base + start.pos)?,
                        first: at[start.row].clone(),
                    };
                    for len in 1..=MOST_REPLACED.min(words.len() - first) {
                        let run = &words[first..first + len];
                        if !contiguous(run) {
                            break;
                        }
                        let run = start.pos..run[len - 1].end;
                        let follow = with_following(tok, tokens, run.clone(), &seq);
                        let resumed = run.end + follow.len() - seq.len();
                        let reading: Vec<u32> = tokens[..start.pos]
                            .iter()
                            .chain(&seq)
                            .chain(&tokens[run.end..])
                            .copied()
                            .collect();
                        consider(
                            reading,
                            ctx.score(model, &follow)?,
                            rest[start.pos] - rest[resumed],
                        );
                    }
                }
                let current = logits.pop().unwrap_or_default();
                let prefix: Vec<u32> = tokens[..start.pos].iter().chain(&forced).copied().collect();
                // Decoded on until it reads the heard tokens again (the rest is then taken as
                // heard) or, for a term at the end, to the end of text.
                let from = prefix.len();
                let at_end = start.pos == end;
                let synced = |new: &[u32]| {
                    resync(tokens, start.pos, &new[from..], forced.len() + MOST_SKIPPED)
                };
                let run = continue_window(
                    model,
                    tok,
                    rules,
                    state,
                    current,
                    prefix,
                    opts,
                    primed.budget(model),
                    &|new| synced(new).is_some() || (!at_end && new.len() - from >= HORIZON),
                )?;
                let (reading, heard) = match synced(&run.tokens) {
                    Some(j) => {
                        let mut reading = run.tokens;
                        reading.extend_from_slice(&tokens[j..]);
                        (reading, rest[start.pos] - rest[j])
                    }
                    None if at_end && run.ended => (run.tokens, rest[start.pos]),
                    None => continue,
                };
                consider(reading, said + run.raw_logprob, heard);
            }
            match best {
                Some((_, better)) => *tokens = better,
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

/// The `names` that the text of `tokens` contains.
fn names_in<'n, N: AsRef<str>>(tok: &Tokenizer, tokens: &[u32], names: &'n [N]) -> Vec<&'n N> {
    terms_in(&tok.decode(&tok.text_tokens(tokens)), names).collect()
}

/// A name's letters as one heard word would have them (None for a name with a digit).
fn name_letters(name: &str) -> Option<String> {
    let words: Vec<&str> = name.split_whitespace().collect();
    word_letters(&words).into_iter().collect()
}

/// How many heard text tokens after `end` both readings of a run must explain (at most
/// [`FOLLOWING_TOKENS`]).
fn following(tok: &Tokenizer, tokens: &[u32], end: usize) -> usize {
    tokens[end..]
        .iter()
        .take_while(|&&t| t < tok.special.eot)
        .take(FOLLOWING_TOKENS)
        .count()
}

/// `replacement` followed by the next heard text tokens after the run.
fn with_following(
    tok: &Tokenizer,
    tokens: &[u32],
    run: Range<usize>,
    replacement: &[u32],
) -> Vec<u32> {
    let after = &tokens[run.end..run.end + following(tok, tokens, run.end)];
    replacement.iter().chain(after).copied().collect()
}

/// One decoder pass over a window's tokens.
struct Read {
    /// The decoder after every token.
    state: DecoderState,
    /// Tokens it had seen before the window's (the start sequence and prompt).
    base: usize,
    /// Log-probabilities of each position's token (`at[i]` for `tokens[i]`), and after the last.
    at: Vec<Vec<f32>>,
}

impl Read {
    fn window(model: &Whisper, primed: &Primed, tokens: &[u32]) -> Result<Read> {
        let mut state = primed.state.clone();
        let base = state.tokens_seen();
        let rows: Vec<usize> = (0..tokens.len()).collect();
        let mut at = vec![log_softmax(&primed.logits)];
        at.extend(
            model
                .decode(&mut state, tokens, &rows)?
                .iter()
                .map(|l| log_softmax(l)),
        );
        Ok(Read { state, base, at })
    }
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

/// A place where a term the window never wrote may be forced.
struct Start {
    /// Tokens of the window kept before it.
    pos: usize,
    /// Token forced before the term: the opening timestamp of a new segment after a closed one.
    lead: Option<u32>,
    /// Log-probability of `lead` at `pos` (0 without one).
    lead_logprob: f32,
    /// Row of the log-probabilities of the term's first token.
    row: usize,
    /// The term is capitalised (it starts a sentence).
    upper: bool,
}

/// Each word start of the window, and its end of text after the last word: a window may end
/// early (Whisper takes the rest as said already). After a closed segment the term opens a new
/// one at the same time, and its row of log-probabilities is appended to `at`.
fn term_starts(
    model: &Whisper,
    tok: &Tokenizer,
    tokens: &[u32],
    words: &[Word],
    read: &DecoderState,
    at: &mut Vec<Vec<f32>>,
) -> Result<Vec<Start>> {
    let mut starts: Vec<Start> = words
        .iter()
        .map(|w| Start {
            pos: w.start,
            lead: None,
            lead_logprob: 0.0,
            row: w.start,
            upper: w.text.starts_with(char::is_uppercase),
        })
        .collect();
    let end = tokens.len();
    let ts = tok.special.timestamp_begin;
    // A term after the last word starts a sentence when that word ends one.
    let upper = tokens
        .iter()
        .rev()
        .find(|&&t| t < tok.special.eot)
        .is_some_and(|&t| tok.token_bytes(t).ends_with(b"."));
    match tokens {
        [.., last] if *last < tok.special.eot => starts.push(Start {
            pos: end,
            lead: None,
            lead_logprob: 0.0,
            row: end,
            upper,
        }),
        [.., text, closing] if *text < tok.special.eot && *closing >= ts => {
            let mut state = read.clone();
            let after = model.decode(&mut state, &[*closing], &[0])?;
            starts.push(Start {
                pos: end,
                lead: Some(*closing),
                lead_logprob: at[end][*closing as usize],
                row: at.len(),
                upper,
            });
            at.extend(after.iter().map(|l| log_softmax(l)));
        }
        _ => {}
    }
    Ok(starts)
}

/// Where a reading decoded after a forced term (`new`) meets the heard `tokens` again: the end
/// of the first run of [`SYNC_TOKENS`] heard tokens after `from` that `new` ends with, having
/// passed over at most `new.len() + skip` heard tokens.
fn resync(tokens: &[u32], from: usize, new: &[u32], skip: usize) -> Option<usize> {
    let tail = new.get(new.len().checked_sub(SYNC_TOKENS)?..)?;
    let last = tokens.len().min(from + new.len() + skip);
    (from + SYNC_TOKENS..=last).find(|&j| &tokens[j - SYNC_TOKENS..j] == tail)
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

    #[test]
    fn words_that_are_record_or_formulary_names_as_written_are_protected() {
        let check = TermCheck::new(
            &["penicillin v".into(), "azithromycin".into()],
            &["acetaminophen".into(), "insulin lispro".into()],
        );
        let heard = word_letters(&[
            "Acetaminophen,",
            "azithromycin",
            "l'acetaminophen",
            "insulin",
        ]);
        assert!(heard[..3].iter().all(|w| check.is_name(w.as_ref())));
        // A word of a longer name, a near miss and a dose are not names.
        let other = word_letters(&["insulin", "penicillin", "acetaminofen", "500mg"]);
        assert!(!other.iter().any(|w| check.is_name(w.as_ref())));
    }

    #[test]
    fn a_forced_reading_meets_the_heard_tokens_again_after_its_start() {
        let heard = [10, 11, 12, 13, 14, 15, 16];
        // After a term forced at 2, the decoder read 90, then 13 14 15 as heard.
        assert_eq!(resync(&heard, 2, &[90, 13, 14, 15], 0), Some(6));
        // Not yet three heard tokens in a row.
        assert_eq!(resync(&heard, 2, &[90, 13, 14], 0), None);
        assert_eq!(resync(&heard, 2, &[90, 14, 13, 15], 0), None);
        // Heard tokens before the forced term do not count.
        assert_eq!(resync(&heard, 4, &[10, 11, 12], 0), None);
        let repeated = [10, 11, 12, 20, 10, 11, 12];
        assert_eq!(resync(&repeated, 1, &[10, 11, 12], 3), Some(7));
        assert_eq!(resync(&repeated, 0, &[10, 11, 12], 0), Some(3));
        // Meeting them again further on than the reading's length (and the slack) skipped speech.
        assert_eq!(resync(&heard, 0, &[14, 15, 16], 3), None);
        assert_eq!(resync(&heard, 0, &[14, 15, 16], 4), Some(7));
    }
}
