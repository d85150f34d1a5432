//! The summariser: classify each utterance, keep those the classifier places in a section,
//! rewrite them as note sentences (yes/no answers become "reports"/"denies" statements), and
//! pass every sentence through the fact checker before it reaches the draft.

use serde::Serialize;

use crate::classifier::{CLASSES, SectionClassifier};
use crate::dialogue::{Dialogue, Speaker};
use crate::facts::{Fact, FactChecker};
use crate::rewrite::{Pronouns, Voice, as_sentence, rewrite};
use crate::section::{Label, Section};
use crate::{Error, text};

/// Summariser settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DraftConfig {
    /// Smallest probability of being in some section for an utterance to be kept.
    pub keep_threshold: f32,
    /// Fewest words a kept sentence may have after rewriting.
    pub min_words: usize,
}

impl Default for DraftConfig {
    fn default() -> Self {
        Self {
            keep_threshold: 0.4,
            min_words: 4,
        }
    }
}

/// One sentence of the draft and the utterances it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statement {
    /// The note sentence.
    pub text: String,
    /// Indices of its source utterances in the dialogue.
    pub sources: Vec<usize>,
}

/// A section of the draft.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DraftSection {
    /// Which section.
    pub section: Section,
    /// Its heading.
    pub title: &'static str,
    /// Its sentences in transcript order.
    pub statements: Vec<Statement>,
}

/// A sentence the fact checker kept out of the draft, for the clinician to look at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flag {
    /// The section it would have gone to.
    pub section: Section,
    /// The sentence.
    pub text: String,
    /// Its facts that the transcript does not support.
    pub unsupported: Vec<Fact>,
}

/// A drafted note: sections in note order (empty ones left out) and what was removed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Draft {
    /// Sections with at least one sentence.
    pub sections: Vec<DraftSection>,
    /// Sentences removed by the fact checker.
    pub flags: Vec<Flag>,
}

impl Draft {
    /// The note as plain text: each heading, then one sentence a line, a blank line between
    /// sections.
    pub fn text(&self) -> String {
        self.sections
            .iter()
            .map(|s| {
                let body: Vec<&str> = s.statements.iter().map(|t| t.text.as_str()).collect();
                format!("{}\n\n{}", s.title, body.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// One section's sentences joined into a paragraph, if the draft has that section.
    pub fn section_text(&self, section: Section) -> Option<String> {
        self.sections
            .iter()
            .find(|s| s.section == section)
            .map(|s| {
                s.statements
                    .iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
    }
}

/// Drafts notes from transcripts.
#[derive(Clone, Debug)]
pub struct Summarizer {
    classifier: SectionClassifier,
    config: DraftConfig,
}

/// Spoken answers that mean no, and yes.
const NO: &[&str] = &["no", "nope", "nah", "never", "not", "none", "denies"];
const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sometimes",
    "definitely",
    "correct",
    "uh-huh",
];
/// Words of a yes/no answer that add nothing.
const ANSWER_FILLER: &[&str] = &[
    "okay", "um", "uh", "i", "don't", "do", "have", "not", "really", "that", "noticed", "any",
    "no", "yes", "yeah", "nope", "sir", "ma'am",
];
/// Phrases after which a doctor's question names what it asks about.
const QUESTION_LEADS: &[&str] = &[
    "any ",
    "do you have ",
    "did you have ",
    "have you had ",
    "have you been having ",
    "are you having ",
    "are you experiencing ",
    "have you noticed ",
    "have you experienced ",
    "did you notice ",
    "do you get ",
    "do you feel ",
    "did you get ",
];
/// Phrases that introduce the reason for the visit.
const VISIT_REASON_LEADS: &[&str] = &[
    "here today for ",
    "here for ",
    "in today for ",
    "in for ",
    "presents for ",
    "presents today for ",
    "coming in for ",
    "here to follow up on ",
    "here for a follow up on ",
    "follow up on ",
    "evaluation of ",
];

impl Summarizer {
    /// A summariser with the given classifier and settings.
    pub fn new(classifier: SectionClassifier, config: DraftConfig) -> Self {
        Self { classifier, config }
    }

    /// The summariser with the shipped classifier and default settings.
    pub fn shipped() -> Result<Self, Error> {
        Ok(Self::new(
            SectionClassifier::shipped()?,
            DraftConfig::default(),
        ))
    }

    /// Drafts the note of one transcript; unsupported sentences go to [`Draft::flags`].
    pub fn draft(&self, transcript: &str) -> Result<Draft, Error> {
        let dialogue = Dialogue::parse(transcript)?;
        let checker = FactChecker::new(&dialogue);
        let candidates = self.candidates(&dialogue)?;
        Ok(checked_draft(candidates, &checker))
    }

    /// Every candidate sentence with its section, before fact checking.
    pub fn candidates(&self, dialogue: &Dialogue) -> Result<Vec<(Section, Statement)>, Error> {
        let doctor_text: String = dialogue
            .turns
            .iter()
            .filter(|t| t.speaker == Speaker::Doctor)
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let pronouns = Pronouns::guess(&doctor_text);
        let probabilities = self.classifier.predict(dialogue);
        let mut out = Vec::new();
        if let Some(reason) = visit_reason(dialogue) {
            out.push((Section::ChiefComplaint, reason));
        }
        let utterances = &dialogue.utterances;
        for (i, u) in utterances.iter().enumerate() {
            let Some(section) = self.section_of(&probabilities[i]) else {
                continue;
            };
            let statement = if is_question(&u.text) {
                if u.speaker != Speaker::Doctor {
                    continue;
                }
                match answered(dialogue, i, pronouns) {
                    Some(statement) => statement,
                    None => continue,
                }
            } else {
                let voice = match u.speaker {
                    Speaker::Patient => Voice::Patient,
                    Speaker::Doctor | Speaker::Guest => Voice::Doctor,
                };
                Statement {
                    text: as_sentence(&rewrite(&u.text, voice, pronouns)),
                    sources: vec![i],
                }
            };
            if text::words(&statement.text).len() >= self.config.min_words {
                out.push((section, statement));
            }
        }
        Ok(out)
    }

    fn section_of(&self, p: &[f32; CLASSES]) -> Option<Section> {
        if 1.0 - p[0] < self.config.keep_threshold {
            return None;
        }
        let best = (1..CLASSES).max_by(|&a, &b| p[a].total_cmp(&p[b]))?;
        match Label::CLASSES[best] {
            Label::In(section) => Some(section),
            Label::Other => None,
        }
    }
}

/// Puts candidate sentences (from the summariser, or any other drafting model) into sections in
/// note order, dropping repeats and moving sentences with facts the transcript does not support
/// to [`Draft::flags`].
pub fn checked_draft(candidates: Vec<(Section, Statement)>, checker: &FactChecker) -> Draft {
    let mut sections: Vec<DraftSection> = Vec::new();
    let mut flags = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (section, statement) in candidates {
        if !seen.insert(statement.text.to_lowercase()) {
            continue;
        }
        let unsupported = checker.unsupported(&statement.text);
        if !unsupported.is_empty() {
            flags.push(Flag {
                section,
                text: statement.text,
                unsupported,
            });
            continue;
        }
        match sections.iter_mut().find(|s| s.section == section) {
            Some(s) => s.statements.push(statement),
            None => sections.push(DraftSection {
                section,
                title: section.heading(),
                statements: vec![statement],
            }),
        }
    }
    sections.sort_by_key(|s| s.section);
    Draft { sections, flags }
}

fn is_question(text: &str) -> bool {
    text.trim_end().ends_with('?')
}

/// A doctor's yes/no question and the patient's short answer as one statement:
/// "The patient denies chest pain." / "The patient reports chest pain."
fn answered(dialogue: &Dialogue, i: usize, pronouns: Pronouns) -> Option<Statement> {
    let utterances = &dialogue.utterances;
    let question = &utterances[i];
    let (j, answer) = utterances
        .iter()
        .enumerate()
        .skip(i + 1)
        .find(|(_, u)| u.turn != question.turn)?;
    if answer.speaker != Speaker::Patient {
        return None;
    }
    let words = text::words(&answer.text);
    let first = words.first()?;
    let verb = if NO.contains(&first.as_str()) {
        "denies"
    } else if YES.contains(&first.as_str()) {
        "reports"
    } else {
        return None;
    };
    // A longer answer says more than yes or no: it is summarised on its own.
    if words
        .iter()
        .filter(|w| !ANSWER_FILLER.contains(&w.as_str()))
        .count()
        > 2
    {
        return None;
    }
    let topic = question_topic(&question.text)?;
    let topic = rewrite(&topic, Voice::Doctor, pronouns);
    Some(Statement {
        text: as_sentence(&format!("the patient {verb} {topic}")),
        sources: vec![i, j],
    })
}

/// What a yes/no question asks about: the words after "any" / "do you have" …, up to the
/// question mark; `None` when the question is not of that form.
fn question_topic(question: &str) -> Option<String> {
    let q = question.to_lowercase();
    let start = QUESTION_LEADS
        .iter()
        .filter_map(|lead| q.find(lead).map(|at| at + lead.len()))
        .min()?;
    let topic = q[start..].trim_end_matches(['?', ' ', '.']).trim();
    let n = topic.split_whitespace().count();
    (1..=12)
        .contains(&n)
        .then(|| topic.replace(" ?", "").replace(" ,", ","))
}

/// The reason for the visit, when the doctor names it ("here today for …").
fn visit_reason(dialogue: &Dialogue) -> Option<Statement> {
    let early = dialogue.utterances.len() / 3 + 1;
    dialogue
        .utterances
        .iter()
        .enumerate()
        .take(early)
        .filter(|(_, u)| u.speaker == Speaker::Doctor)
        .find_map(|(i, u)| {
            let lower = u.text.to_lowercase();
            let start = VISIT_REASON_LEADS
                .iter()
                .filter_map(|lead| lower.find(lead).map(|at| at + lead.len()))
                .min()?;
            let reason: Vec<&str> = lower[start..]
                .split_whitespace()
                .take_while(|w| !matches!(*w, "." | "?" | "," | "and" | "so" | "today" | "okay"))
                .take(8)
                .collect();
            (!reason.is_empty()).then(|| Statement {
                text: as_sentence(&rewrite(
                    &reason.join(" "),
                    Voice::Doctor,
                    Pronouns::Unknown,
                )),
                sources: vec![i],
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_name_their_topic() {
        assert_eq!(
            question_topic("and any chest pain or shortness of breath ?").as_deref(),
            Some("chest pain or shortness of breath")
        );
        assert_eq!(question_topic("how are you ?"), None);
    }

    #[test]
    fn a_denial_becomes_a_statement() {
        let d = Dialogue::parse("[doctor] any fever or chills ?\n[patient] no .").unwrap();
        let s = answered(&d, 0, Pronouns::Female).unwrap();
        assert_eq!(s.text, "The patient denies fever or chills.");
        assert_eq!(s.sources, [0, 1]);
    }

    #[test]
    fn a_long_answer_is_not_a_denial() {
        let d = Dialogue::parse(
            "[doctor] any pain ?\n[patient] no but my knee has been swelling since monday .",
        )
        .unwrap();
        assert!(answered(&d, 0, Pronouns::Female).is_none());
    }

    #[test]
    fn the_visit_reason_is_the_chief_complaint() {
        let d = Dialogue::parse(
            "[doctor] hi , you're here today for left knee pain .\n[patient] yes .",
        )
        .unwrap();
        assert_eq!(visit_reason(&d).unwrap().text, "Left knee pain.");
    }
}
