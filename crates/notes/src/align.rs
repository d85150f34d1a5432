//! Training labels from a hospital's own signed notes: each utterance of a visit takes the
//! section of the note sentence it shares the most content words with, or `Other` when no
//! sentence of the note says what it says.

use std::collections::HashSet;

use crate::Error;
use crate::classifier::{Example, utterance_features};
use crate::corpus::{Encounter, SectionPair};
use crate::dialogue::Dialogue;
use crate::section::{Label, Section};
use crate::text::content;

/// Smallest cosine similarity (over content-word sets) for an utterance to count as the source
/// of a note sentence.
const MIN_SIMILARITY: f64 = 0.3;
/// Smallest number of shared content words for the same.
const MIN_SHARED: usize = 2;

/// A note's sentences with their sections, found by the note's headings (lines such as
/// `HISTORY OF PRESENT ILLNESS` or `PLAN:`); text before the first heading is left out.
pub fn note_sentences(note: &str) -> Vec<(Section, String)> {
    let mut current = None;
    let mut sentences = Vec::new();
    for line in note.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(section) = Section::from_heading(line) {
            current = Some(section);
            continue;
        }
        let Some(section) = current else { continue };
        sentences.extend(
            line.split_inclusive(['.', '?', '!'])
                .map(str::trim)
                .filter(|s| s.chars().any(char::is_alphanumeric))
                .map(|s| (section, s.to_string())),
        );
    }
    sentences
}

/// The label of every utterance of `dialogue` given the sentences it was summarised into.
pub fn label_utterances(dialogue: &Dialogue, sentences: &[(Section, String)]) -> Vec<Label> {
    let targets: Vec<(Section, HashSet<String>)> = sentences
        .iter()
        .map(|(section, text)| (*section, content(text).into_iter().collect()))
        .filter(|(_, words): &(Section, HashSet<String>)| !words.is_empty())
        .collect();
    dialogue
        .utterances
        .iter()
        .map(|u| {
            let words: HashSet<String> = content(&u.text).into_iter().collect();
            targets
                .iter()
                .filter_map(|(section, target)| {
                    let shared = words.intersection(target).count();
                    let cosine = shared as f64 / ((words.len() * target.len()) as f64).sqrt();
                    (shared >= MIN_SHARED && cosine >= MIN_SIMILARITY).then_some((cosine, *section))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map_or(Label::Other, |(_, section)| Label::In(section))
        })
        .collect()
}

/// The sentences of one section's text (MTS-Dialog form: the section without a heading).
pub fn section_sentences(section: Section, section_text: &str) -> Vec<(Section, String)> {
    section_text
        .split_inclusive(['.', '?', '!', '\n'])
        .map(|s| (section, s.trim().to_string()))
        .collect()
}

/// Training examples from one visit and its note (ACI-Bench form: headings on their own lines).
pub fn examples_from_note(dialogue: &str, note: &str) -> Result<Vec<Example>, Error> {
    let dialogue = Dialogue::parse(dialogue)?;
    Ok(examples(&dialogue, &note_sentences(note)))
}

/// Training examples from an MTS-Dialog pair: a short dialogue and the one section it became.
pub fn examples_from_section(
    dialogue: &str,
    section: Section,
    section_text: &str,
) -> Result<Vec<Example>, Error> {
    let dialogue = Dialogue::parse(dialogue)?;
    Ok(examples(
        &dialogue,
        &section_sentences(section, section_text),
    ))
}

/// Training examples from ACI-Bench visits and MTS-Dialog pairs (pairs whose header is no
/// section of the note are left out).
pub fn corpus_examples(visits: &[Encounter], pairs: &[SectionPair]) -> Result<Vec<Example>, Error> {
    let mut examples = Vec::new();
    for visit in visits {
        examples.extend(examples_from_note(&visit.dialogue, &visit.note)?);
    }
    for pair in pairs {
        if let Some(section) = Section::from_mts_header(&pair.header) {
            examples.extend(examples_from_section(
                &pair.dialogue,
                section,
                &pair.section_text,
            )?);
        }
    }
    Ok(examples)
}

/// Every utterance of `dialogue` as a training example, labelled by the note sentences it
/// was summarised into ([`label_utterances`]).
pub fn examples(dialogue: &Dialogue, sentences: &[(Section, String)]) -> Vec<Example> {
    label_utterances(dialogue, sentences)
        .iter()
        .enumerate()
        .map(|(i, label)| Example {
            features: utterance_features(dialogue, i),
            label: label.index(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "CHIEF COMPLAINT\n\nKnee pain.\n\nREVIEW OF SYSTEMS\n\n\
        Cardiovascular: Denies chest pain or palpitations.\n\nPLAN\n\n\
        I prescribed meloxicam 15 mg daily for the knee pain.";

    #[test]
    fn note_sentences_follow_headings() {
        let s = note_sentences(NOTE);
        assert_eq!(s[0], (Section::ChiefComplaint, "Knee pain.".to_string()));
        assert_eq!(s[1].0, Section::ReviewOfSystems);
        assert_eq!(s.last().unwrap().0, Section::AssessmentAndPlan);
    }

    #[test]
    fn utterances_take_the_section_of_the_sentence_they_became() {
        let dialogue = Dialogue::parse(
            "[doctor] hi there . any chest pain or palpitations ?\n[patient] no .\n\
             [doctor] i'll prescribe meloxicam fifteen mg daily for your knee pain .",
        )
        .unwrap();
        let labels = label_utterances(&dialogue, &note_sentences(NOTE));
        assert_eq!(
            labels,
            [
                Label::Other,
                Label::In(Section::ReviewOfSystems),
                Label::Other,
                Label::In(Section::AssessmentAndPlan)
            ]
        );
    }
}
