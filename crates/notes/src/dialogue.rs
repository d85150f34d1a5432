//! Transcripts: ACI-Bench's `[doctor] … [patient] …` form (or `Doctor: …` lines, as in
//! MTS-Dialog) parsed into turns, and turns split into utterances (sentences, or chunks of an
//! unpunctuated turn) — the units the section classifier labels.

use serde::Serialize;

use crate::Error;

/// Who speaks a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The clinician (also a second clinician).
    Doctor,
    /// The patient.
    Patient,
    /// Anyone else: a relative, an interpreter.
    Guest,
}

/// One speaker's turn, text as transcribed.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    /// Who speaks.
    pub speaker: Speaker,
    /// What was said (lower-case ASR text in ACI-Bench).
    pub text: String,
}

/// A sentence (or a chunk of an unpunctuated turn) of one turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// Index of its turn in [`Dialogue::turns`].
    pub turn: usize,
    /// Who says it.
    pub speaker: Speaker,
    /// Its text, whitespace-normalised.
    pub text: String,
}

/// A parsed transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Dialogue {
    /// Turns in order.
    pub turns: Vec<Turn>,
    /// Every turn's utterances, in order.
    pub utterances: Vec<Utterance>,
}

/// Longest unpunctuated run kept as one utterance; longer runs are cut at discourse markers.
const MAX_CHUNK_WORDS: usize = 30;
/// Shortest chunk a cut may leave.
const MIN_CHUNK_WORDS: usize = 6;
/// Words before which a long unpunctuated run may be cut.
const CUT_BEFORE: &[&str] = &["okay", "alright", "so", "now", "and", "um", "uh", "but"];

impl Dialogue {
    /// Parses a transcript. Speaker tags are `[doctor]`, `[patient]`, `[patient_guest]` (ACI-Bench)
    /// or `Doctor:` / `Patient:` / `Guest_…:` at the start of a line (MTS-Dialog).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut turns = if text.trim_start().starts_with('[') {
            bracketed_turns(text)
        } else {
            labelled_turns(text)
        };
        if speakers_swapped(&turns) {
            for turn in &mut turns {
                turn.speaker = match turn.speaker {
                    Speaker::Doctor => Speaker::Patient,
                    Speaker::Patient => Speaker::Doctor,
                    Speaker::Guest => Speaker::Guest,
                };
            }
        }
        Self::from_turns(turns)
    }

    /// A dialogue of turns already split by speaker (e.g. each turn de-identified on its own),
    /// cut into utterances.
    pub fn from_turns(turns: Vec<Turn>) -> Result<Self, Error> {
        if turns.is_empty() {
            return Err(Error::Dialogue(
                "no speaker turns found: expected `[doctor] …` / `[patient] …` tags".into(),
            ));
        }
        let utterances = turns
            .iter()
            .enumerate()
            .flat_map(|(i, turn)| {
                split_utterances(&turn.text)
                    .into_iter()
                    .map(move |text| Utterance {
                        turn: i,
                        speaker: turn.speaker,
                        text,
                    })
            })
            .collect();
        Ok(Self { turns, utterances })
    }

    /// All the turns' text, lower-cased, one turn per line.
    pub fn plain_text(&self) -> String {
        self.turns
            .iter()
            .map(|t| t.text.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// True when the turns tagged `patient` address the other person ("you", "your") more, for
/// their length, than those tagged `doctor` do: speech recognition swapped the tags.
fn speakers_swapped(turns: &[Turn]) -> bool {
    let address = |speaker: Speaker| {
        let (mut words, mut score) = (0usize, 0i64);
        for turn in turns.iter().filter(|t| t.speaker == speaker) {
            for w in turn.text.split_whitespace() {
                words += 1;
                match w.to_lowercase().as_str() {
                    "you" | "your" | "you're" | "you've" => score += 1,
                    "i" | "my" | "me" | "i'm" | "i've" => score -= 1,
                    _ => {}
                }
            }
        }
        score as f64 / words.max(1) as f64
    };
    address(Speaker::Patient) > address(Speaker::Doctor)
}

fn speaker_of(tag: &str) -> Speaker {
    let tag = tag.to_ascii_lowercase();
    if tag.starts_with("doctor") {
        Speaker::Doctor
    } else if tag.starts_with("patient") && !tag.contains("guest") {
        Speaker::Patient
    } else {
        Speaker::Guest
    }
}

fn push_turn(turns: &mut Vec<Turn>, speaker: Speaker, text: &str) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.is_empty() {
        turns.push(Turn { speaker, text });
    }
}

fn bracketed_turns(text: &str) -> Vec<Turn> {
    let mut turns = Vec::new();
    let mut rest = text;
    let mut current: Option<Speaker> = None;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        if let Some(speaker) = current {
            push_turn(&mut turns, speaker, &rest[..open]);
        }
        current = Some(speaker_of(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    if let Some(speaker) = current {
        push_turn(&mut turns, speaker, rest);
    }
    turns
}

fn labelled_turns(text: &str) -> Vec<Turn> {
    let mut turns = Vec::new();
    for line in text.lines() {
        let label = line.split_once(':').filter(|(tag, _)| {
            !tag.is_empty()
                && tag.len() < 24
                && tag.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        match label {
            Some((tag, said)) => push_turn(&mut turns, speaker_of(tag), said),
            None => {
                if let Some(last) = turns.last_mut() {
                    let more = line.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !more.is_empty() {
                        last.text.push(' ');
                        last.text.push_str(&more);
                    }
                }
            }
        }
    }
    turns
}

/// Splits a turn at sentence ends (`.`, `?`, `!` as separate or final tokens), then cuts runs
/// longer than [`MAX_CHUNK_WORDS`] before discourse markers.
pub(crate) fn split_utterances(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for word in text.split_whitespace() {
        current.push(word);
        let ends = matches!(word, "." | "?" | "!")
            || (word.len() > 1 && (word.ends_with('?') || word.ends_with('!')))
            || (word.len() > 2 && word.ends_with('.') && !word[..word.len() - 1].contains('.'));
        if ends {
            sentences.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        sentences.push(current);
    }
    sentences
        .into_iter()
        .flat_map(cut_long)
        .map(|words| words.join(" "))
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .collect()
}

fn cut_long(words: Vec<&str>) -> Vec<Vec<&str>> {
    if words.len() <= MAX_CHUNK_WORDS {
        return vec![words];
    }
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let remaining = words.len() - i;
        if current.len() >= MIN_CHUNK_WORDS
            && remaining >= MIN_CHUNK_WORDS
            && (current.len() >= MAX_CHUNK_WORDS
                || (current.len() >= MAX_CHUNK_WORDS / 2 && CUT_BEFORE.contains(word)))
        {
            chunks.push(std::mem::take(&mut current));
        }
        current.push(*word);
    }
    chunks.push(current);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_transcript_splits_into_turns_and_sentences() {
        let d = Dialogue::parse(
            "[doctor] hi , anna . any chest pain ?\n[patient] no .\n[patient_guest] she is fine",
        )
        .unwrap();
        assert_eq!(d.turns.len(), 3);
        assert_eq!(d.turns[2].speaker, Speaker::Guest);
        let texts: Vec<&str> = d.utterances.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(
            texts,
            ["hi , anna .", "any chest pain ?", "no .", "she is fine"]
        );
        assert_eq!(d.utterances[3].turn, 2);
    }

    #[test]
    fn labelled_lines_parse_like_mts_dialog() {
        let d =
            Dialogue::parse("Doctor: Any allergies?\nPatient: No.\nGuest_family: None.").unwrap();
        assert_eq!(
            d.turns.iter().map(|t| t.speaker).collect::<Vec<_>>(),
            [Speaker::Doctor, Speaker::Patient, Speaker::Guest]
        );
    }

    #[test]
    fn long_unpunctuated_turns_are_cut() {
        let turn = "so the pain started in march and it was bad ".repeat(6);
        let parts = split_utterances(&turn);
        assert!(parts.len() > 1);
        assert!(
            parts
                .iter()
                .all(|p| p.split_whitespace().count() < MAX_CHUNK_WORDS + MIN_CHUNK_WORDS)
        );
    }

    #[test]
    fn swapped_speaker_tags_are_put_right() {
        let d = Dialogue::parse(
            "[patient] how are you ? does your knee hurt ?\n[doctor] yes , my knee hurts when i walk .",
        )
        .unwrap();
        assert_eq!(d.turns[0].speaker, Speaker::Doctor);
        assert_eq!(d.turns[1].speaker, Speaker::Patient);
    }

    #[test]
    fn text_without_tags_is_refused() {
        assert!(Dialogue::parse("hello there").is_err());
    }
}
