//! The fact checker: the checkable facts of a note sentence (medications, doses, numbers,
//! laterality, negated findings) and whether the transcript supports each of them.
//!
//! Support is looked for in windows of consecutive turns, so that a dose must be said near the
//! medication it is given for and a denial near the finding it denies.

use serde::Serialize;

use crate::dialogue::Dialogue;
use crate::rewrite::normalise;
use crate::text::is_stopword;

/// Turns that count as saying something together (a question, its answer, a follow-up).
const WINDOW_TURNS: usize = 4;

/// Medication names, one a line (`data/medications.txt`).
const MEDICATIONS: &str = include_str!("../data/medications.txt");
/// Endings of generic drug names.
const DRUG_SUFFIXES: &[&str] = &[
    "pril",
    "sartan",
    "olol",
    "dipine",
    "statin",
    "prazole",
    "tidine",
    "cillin",
    "mycin",
    "floxacin",
    "cycline",
    "azole",
    "gliptin",
    "gliflozin",
    "glutide",
    "mab",
    "vir",
    "oxetine",
    "triptan",
    "zepam",
    "zolam",
    "afil",
    "semide",
    "thiazide",
    "parin",
    "xaban",
    "profen",
];
/// Dose units, as the rewriting writes them.
const UNITS: &[&str] = &[
    "mg", "mcg", "ml", "g", "units", "unit", "iu", "%", "puffs", "tablets",
];
/// Words that negate what follows.
const NEGATIONS: &[&str] = &[
    "no", "not", "denies", "denied", "deny", "negative", "without", "never", "none",
];
/// Words after which a note states a finding as present ("reports chest pain").
const AFFIRMATIONS: &[&str] = &[
    "reports",
    "reported",
    "endorses",
    "endorsed",
    "complains",
    "experiencing",
    "positive",
];
/// Words before a finding, in a turn, within which a negation denies it.
const NEGATION_REACH: usize = 4;
/// Words that, spoken, say no.
const SPOKEN_NEGATIONS: &[&str] = &[
    "no", "not", "nope", "never", "none", "denies", "deny", "negative", "without", "nothing",
    "don't", "doesn't", "didn't", "haven't", "hasn't", "isn't", "wasn't", "aren't", "can't", "nah",
];
/// Words after which "right" is not a side ("right now", "right away").
const NOT_A_SIDE_AFTER: &[&str] = &[
    "now", "away", "here", "there", "then", "after", "before", "back", "around", "about", "off",
];
/// Laterality words.
const SIDES: &[&str] = &["left", "right", "bilateral", "bilaterally", "both"];

/// What kind of fact a sentence states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A medication name.
    Medication,
    /// A number with a dose unit ("600 mg").
    Dose,
    /// Any other number.
    Number,
    /// Left, right or both sides, with the body part it qualifies.
    Laterality,
    /// A finding stated as absent ("denies chest pain").
    NegatedFinding,
    /// A finding stated as present ("reports chest pain", "endorses fatigue").
    AffirmedFinding,
}

/// One checkable fact of a sentence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Fact {
    /// Its kind.
    pub kind: FactKind,
    /// Its normalised words ("lisinopril", "20 mg", "left knee", "chest pain").
    pub text: String,
}

/// The listed medication names.
pub fn medications() -> impl Iterator<Item = &'static str> {
    MEDICATIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// True for a listed medication name or a word with a generic drug name's ending.
pub fn is_medication(word: &str) -> bool {
    medications().any(|m| m == word)
        || (word.len() > 6 && DRUG_SUFFIXES.iter().any(|s| word.ends_with(s)))
}

fn is_number(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// The facts a sentence states, from its normalised words.
pub fn facts(sentence: &str) -> Vec<Fact> {
    let words = normalise(sentence);
    let mut found = Vec::new();
    let mut push = |kind, text: String| {
        let fact = Fact { kind, text };
        if !found.contains(&fact) {
            found.push(fact);
        }
    };
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        if is_medication(w) {
            push(FactKind::Medication, w.clone());
        } else if is_number(w) {
            match next.filter(|n| UNITS.contains(n)) {
                Some(unit) => push(FactKind::Dose, format!("{w} {unit}")),
                None => push(FactKind::Number, w.clone()),
            }
        } else if SIDES.contains(&w.as_str())
            && !next.is_some_and(|n| NOT_A_SIDE_AFTER.contains(&n))
        {
            if let Some(part) = words[i + 1..].iter().take(3).find(|n| is_content(n)) {
                push(FactKind::Laterality, format!("{w} {part}"));
            }
        } else if let Some(kind) = finding_kind(w)
            && let Some(finding) = finding_after(&words[i + 1..])
        {
            push(kind, finding);
        }
    }
    found
}

/// The kind of finding a word introduces: a denial ("no", "denies") or a report ("reports").
fn finding_kind(word: &str) -> Option<FactKind> {
    if NEGATIONS.contains(&word) {
        Some(FactKind::NegatedFinding)
    } else if AFFIRMATIONS.contains(&word) {
        Some(FactKind::AffirmedFinding)
    } else {
        None
    }
}

/// Up to three content words of the clause that starts `words` (to a stop, "and", "or",
/// "but").
fn finding_after(words: &[String]) -> Option<String> {
    let finding: Vec<&str> = words
        .iter()
        .take_while(|n| !matches!(n.as_str(), "." | ";" | "," | "but" | "and" | "or"))
        .filter(|n| is_content(n))
        .take(3)
        .map(String::as_str)
        .collect();
    (!finding.is_empty()).then(|| finding.join(" "))
}

fn is_content(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
        && word.len() > 2
        && !is_stopword(word)
        && !SIDES.contains(&word)
        && !NEGATIONS.contains(&word)
        && !AFFIRMATIONS.contains(&word)
}

/// Checks facts against one transcript.
#[derive(Clone, Debug)]
pub struct FactChecker {
    /// Normalised words of each turn.
    turns: Vec<Vec<String>>,
    /// Normalised words of each window of turns.
    windows: Vec<Vec<String>>,
}

impl FactChecker {
    /// Indexes the transcript's turns.
    pub fn new(dialogue: &Dialogue) -> Self {
        let turns: Vec<Vec<String>> = dialogue.turns.iter().map(|t| normalise(&t.text)).collect();
        let windows = (0..turns.len().max(1))
            .map(|start| {
                turns[start.min(turns.len())..(start + WINDOW_TURNS).min(turns.len())].concat()
            })
            .collect();
        Self { turns, windows }
    }

    /// True when the transcript supports `fact`: a denial where a turn names the finding and
    /// negates it, or the next turn answers no; a finding stated as present where a turn names
    /// it without a negation just before it, and, if that turn asks, the answer is not no; any
    /// other fact where one window of turns says it (a dose as the same number and unit, a side
    /// with the body part).
    pub fn supports(&self, fact: &Fact) -> bool {
        let parts: Vec<&str> = fact.text.split(' ').collect();
        let negated =
            |words: &[String]| words.iter().any(|x| SPOKEN_NEGATIONS.contains(&x.as_str()));
        let answer_negated = |t: usize| {
            self.turns
                .get(t + 1)
                .is_some_and(|next| negated(&next[..next.len().min(3)]))
        };
        let named = |turn: &[String]| {
            let present = parts
                .iter()
                .filter(|p| turn.iter().any(|x| same_word(x, p)))
                .count();
            2 * present >= parts.len()
        };
        match fact.kind {
            FactKind::NegatedFinding => {
                return self
                    .turns
                    .iter()
                    .enumerate()
                    .any(|(t, turn)| named(turn) && (negated(turn) || answer_negated(t)));
            }
            FactKind::AffirmedFinding => {
                return self.turns.iter().enumerate().any(|(t, turn)| {
                    let Some(at) = turn
                        .iter()
                        .position(|x| parts.iter().any(|p| same_word(x, p)))
                    else {
                        return false;
                    };
                    let asks = turn.iter().any(|x| x == "?");
                    named(turn)
                        && !negated(&turn[at.saturating_sub(NEGATION_REACH)..at])
                        && !(asks && answer_negated(t))
                });
            }
            _ => {}
        }
        self.windows.iter().any(|w| match fact.kind {
            FactKind::Medication | FactKind::Number => w.iter().any(|x| x == parts[0]),
            FactKind::Dose => w
                .windows(2)
                .any(|pair| pair[0] == parts[0] && unit_matches(&pair[1], parts[1])),
            FactKind::Laterality => {
                let side_said = w.iter().any(|x| same_side(x, parts[0]));
                side_said && w.iter().any(|x| same_word(x, parts[1]))
            }
            FactKind::NegatedFinding | FactKind::AffirmedFinding => false,
        })
    }

    /// The facts of `sentence` the transcript does not support.
    pub fn unsupported(&self, sentence: &str) -> Vec<Fact> {
        facts(sentence)
            .into_iter()
            .filter(|f| !self.supports(f))
            .collect()
    }
}

fn unit_matches(said: &str, written: &str) -> bool {
    said == written
        || (written == "unit" && said == "units")
        || (written == "units" && said == "unit")
}

fn same_side(said: &str, written: &str) -> bool {
    said == written
        || (matches!(written, "bilateral" | "bilaterally" | "both")
            && matches!(said, "bilateral" | "bilaterally" | "both"))
}

/// Same word up to a plural or verb ending ("pains" / "pain", "swelling" / "swollen").
pub fn same_word(said: &str, written: &str) -> bool {
    let root = |w: &str| -> String { w.chars().take(5.max(w.len().saturating_sub(3))).collect() };
    said == written || (written.len() > 4 && said.len() > 4 && root(said) == root(written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> FactChecker {
        FactChecker::new(
            &Dialogue::parse(
                "[doctor] any chest pain ?\n[patient] no .\n[doctor] how is the left knee ?\n\
                 [patient] it hurts .\n[doctor] let's start lisinopril twenty milligrams daily .",
            )
            .unwrap(),
        )
    }

    #[test]
    fn facts_of_a_sentence_are_found() {
        let f = facts("Denies chest pain. Start lisinopril 20 mg for the left knee on day 3.");
        let kinds: Vec<FactKind> = f.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FactKind::NegatedFinding,
                FactKind::Medication,
                FactKind::Dose,
                FactKind::Laterality,
                FactKind::Number
            ]
        );
        assert_eq!(f[2].text, "20 mg");
        assert_eq!(f[3].text, "left knee");
        assert!(
            facts("He is on day 6 right now.")
                .iter()
                .all(|f| f.kind != FactKind::Laterality)
        );
    }

    #[test]
    fn said_facts_are_supported() {
        let c = checker();
        assert!(c.unsupported("The patient denies chest pain.").is_empty());
        assert!(
            c.unsupported("Start lisinopril 20 mg daily for the left knee.")
                .is_empty()
        );
    }

    #[test]
    fn invented_facts_are_not_supported() {
        let c = checker();
        let kinds = |s: &str| {
            c.unsupported(s)
                .into_iter()
                .map(|f| f.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds("Start lisinopril 40 mg daily."), [FactKind::Dose]);
        assert_eq!(kinds("Start metformin."), [FactKind::Medication]);
        assert_eq!(kinds("Pain in the right knee."), [FactKind::Laterality]);
        assert_eq!(kinds("Denies fever."), [FactKind::NegatedFinding]);
    }
}
