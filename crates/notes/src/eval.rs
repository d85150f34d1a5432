//! Scoring drafts against reference notes: ROUGE (whole note and by section), and the fact
//! figures, by kind of fact — how many of the draft's facts the transcript does not support
//! (hallucinations, before and after the fact checker), how many of the reference note's facts
//! that the transcript supports the draft leaves out (omissions), and how many deliberately
//! corrupted sentences (a changed dose, the other side, a flipped negation, another drug) the
//! checker catches.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::Serialize;

use crate::Error;
use crate::align::note_sentences;
use crate::dialogue::Dialogue;
use crate::draft::{Draft, Summarizer};
use crate::facts::{Fact, FactChecker, FactKind, facts, is_medication, same_word};
use crate::rouge::Rouge;
use crate::section::Section;
use crate::text::words;

/// Fact counts of one kind (or of all kinds together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FactCounts {
    /// Facts in the candidate sentences, before the checker.
    pub candidate: usize,
    /// Of those, facts the transcript does not support.
    pub unsupported_candidate: usize,
    /// Facts in the final draft.
    pub draft: usize,
    /// Of those, facts the transcript does not support (the checker leaves none).
    pub unsupported_draft: usize,
    /// Facts of the reference note that the transcript supports.
    pub reference: usize,
    /// Of those, facts the draft does not state.
    pub omitted: usize,
    /// Draft sentences corrupted with a fact of this kind ([`corrupt`]).
    pub corrupted: usize,
    /// Of those, sentences the checker would remove.
    pub corrupted_caught: usize,
}

impl FactCounts {
    /// Unsupported share of the candidate facts (hallucination rate without the checker).
    pub fn hallucination_rate_before_check(&self) -> f64 {
        ratio(self.unsupported_candidate, self.candidate)
    }

    /// Unsupported share of the final draft's facts.
    pub fn hallucination_rate(&self) -> f64 {
        ratio(self.unsupported_draft, self.draft)
    }

    /// Share of the reference's supported facts the draft leaves out.
    pub fn omission_rate(&self) -> f64 {
        ratio(self.omitted, self.reference)
    }

    /// Share of corrupted sentences the checker catches.
    pub fn corruption_recall(&self) -> f64 {
        ratio(self.corrupted_caught, self.corrupted)
    }
}

impl AddAssign for FactCounts {
    fn add_assign(&mut self, o: Self) {
        self.candidate += o.candidate;
        self.unsupported_candidate += o.unsupported_candidate;
        self.draft += o.draft;
        self.unsupported_draft += o.unsupported_draft;
        self.reference += o.reference;
        self.omitted += o.omitted;
        self.corrupted += o.corrupted;
        self.corrupted_caught += o.corrupted_caught;
    }
}

/// Fact figures of one or more drafts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FactFigures {
    /// Candidate sentences the checker removed.
    pub removed_sentences: usize,
    /// Counts by kind of fact.
    pub by_kind: BTreeMap<FactKind, FactCounts>,
}

impl FactFigures {
    /// Counts of all kinds together.
    pub fn total(&self) -> FactCounts {
        self.sum(|_| true)
    }

    /// Counts of medications and doses together.
    pub fn medications_and_doses(&self) -> FactCounts {
        self.sum(|k| matches!(k, FactKind::Medication | FactKind::Dose))
    }

    fn sum(&self, keep: impl Fn(FactKind) -> bool) -> FactCounts {
        let mut total = FactCounts::default();
        for (_, c) in self.by_kind.iter().filter(|(k, _)| keep(**k)) {
            total += *c;
        }
        total
    }

    fn kind(&mut self, kind: FactKind) -> &mut FactCounts {
        self.by_kind.entry(kind).or_default()
    }
}

impl AddAssign for FactFigures {
    fn add_assign(&mut self, o: Self) {
        self.removed_sentences += o.removed_sentences;
        for (kind, counts) in o.by_kind {
            *self.kind(kind) += counts;
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// How one section of the draft compares with the same section of the reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SectionScore {
    /// Words of the reference section (0 when the reference has none).
    pub reference_words: usize,
    /// Words of the draft section (0 when the draft has none).
    pub draft_words: usize,
    /// ROUGE-1 F of the draft section against the reference section (0 when either is
    /// missing).
    pub rouge1: f64,
}

/// The scores of one draft.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DraftScore {
    /// ROUGE against the reference note.
    pub rouge: Rouge,
    /// Fact counts.
    pub facts: FactFigures,
    /// Section by section.
    pub sections: BTreeMap<Section, SectionScore>,
}

/// True when `draft` states the reference fact `reference`: the same medication, dose or
/// number, the same side of a body part, or the same finding (up to word endings) with the
/// same polarity.
fn states(draft: &Fact, reference: &Fact) -> bool {
    if draft.kind != reference.kind {
        return false;
    }
    match draft.kind {
        FactKind::Medication | FactKind::Dose | FactKind::Number => draft.text == reference.text,
        FactKind::Laterality => {
            let (d, r) = (draft.text.split_once(' '), reference.text.split_once(' '));
            d.zip(r)
                .is_some_and(|((ds, dp), (rs, rp))| ds == rs && same_word(dp, rp))
        }
        FactKind::NegatedFinding | FactKind::AffirmedFinding => draft
            .text
            .split(' ')
            .any(|d| reference.text.split(' ').any(|r| same_word(d, r))),
    }
}

/// Drafts the note of `transcript` and scores it against `reference`.
pub fn score(
    summarizer: &Summarizer,
    transcript: &str,
    reference: &str,
) -> Result<(Draft, DraftScore), Error> {
    let dialogue = Dialogue::parse(transcript)?;
    let checker = FactChecker::new(&dialogue);
    let draft = summarizer.draft(transcript)?;
    let mut figures = FactFigures {
        removed_sentences: draft.flags.len(),
        ..FactFigures::default()
    };
    let kept: Vec<&str> = draft
        .sections
        .iter()
        .flat_map(|s| s.statements.iter().map(|t| t.text.as_str()))
        .collect();
    let mut draft_facts = Vec::new();
    for sentence in &kept {
        for fact in facts(sentence) {
            let unsupported = usize::from(!checker.supports(&fact));
            let counts = figures.kind(fact.kind);
            counts.candidate += 1;
            counts.draft += 1;
            counts.unsupported_candidate += unsupported;
            counts.unsupported_draft += unsupported;
            draft_facts.push(fact);
        }
        for (kind, corrupted) in corrupt(sentence, &checker) {
            let caught = usize::from(!checker.unsupported(&corrupted).is_empty());
            let counts = figures.kind(kind);
            counts.corrupted += 1;
            counts.corrupted_caught += caught;
        }
    }
    for flag in &draft.flags {
        for fact in facts(&flag.text) {
            let unsupported = usize::from(!checker.supports(&fact));
            let counts = figures.kind(fact.kind);
            counts.candidate += 1;
            counts.unsupported_candidate += unsupported;
        }
    }
    let reference_facts: Vec<Fact> = facts(reference)
        .into_iter()
        .filter(|f| checker.supports(f))
        .collect();
    for fact in &reference_facts {
        let omitted = usize::from(!draft_facts.iter().any(|d| states(d, fact)));
        let counts = figures.kind(fact.kind);
        counts.reference += 1;
        counts.omitted += omitted;
    }
    let score = DraftScore {
        rouge: Rouge::score(reference, &draft.text()),
        facts: figures,
        sections: section_scores(&draft, reference),
    };
    Ok((draft, score))
}

/// Each section's draft text against the reference's text of the same section.
fn section_scores(draft: &Draft, reference: &str) -> BTreeMap<Section, SectionScore> {
    let mut reference_text: BTreeMap<Section, String> = BTreeMap::new();
    for (section, sentence) in note_sentences(reference) {
        let text = reference_text.entry(section).or_default();
        text.push_str(&sentence);
        text.push('\n');
    }
    Section::ALL
        .iter()
        .filter_map(|&section| {
            let reference = reference_text.get(&section);
            let drafted = draft.section_text(section);
            if reference.is_none() && drafted.is_none() {
                return None;
            }
            let rouge1 = reference
                .zip(drafted.as_ref())
                .map_or(0.0, |(r, d)| Rouge::score(r, d).rouge1);
            Some((
                section,
                SectionScore {
                    reference_words: reference.map_or(0, |r| words(r).len()),
                    draft_words: drafted.as_deref().map_or(0, |d| words(d).len()),
                    rouge1,
                },
            ))
        })
        .collect()
}

/// Corrupted versions of a draft sentence, one per kind of fact it states, made the way a
/// drafting model goes wrong: a dose's number changed, the other side, a denial turned into a
/// report (or back), a medication swapped for one the transcript never names. Sentences that
/// state none of these give none.
pub fn corrupt(sentence: &str, checker: &FactChecker) -> Vec<(FactKind, String)> {
    let tokens: Vec<&str> = sentence.split_whitespace().collect();
    let kinds: Vec<FactKind> = facts(sentence).iter().map(|f| f.kind).collect();
    let replace = |at: usize, with: String| -> String {
        let mut out: Vec<String> = tokens.iter().map(|t| (*t).to_string()).collect();
        out[at] = with;
        out.join(" ")
    };
    let bare = |t: &str| -> String {
        t.trim_end_matches([',', '.', ';', ':'])
            .to_ascii_lowercase()
    };
    let tail = |t: &str| -> String {
        let trimmed = t.trim_end_matches([',', '.', ';', ':']);
        t[trimmed.len()..].to_string()
    };
    let mut out = Vec::new();
    if kinds.contains(&FactKind::Dose) {
        let dose = tokens.iter().enumerate().find_map(|(i, t)| {
            let n: u64 = t.parse().ok()?;
            let unit = bare(tokens.get(i + 1).copied()?);
            ["mg", "mcg", "ml", "g", "units", "unit", "iu"]
                .contains(&unit.as_str())
                .then_some((i, n))
        });
        if let Some((i, n)) = dose {
            out.push((FactKind::Dose, replace(i, (n * 2 + 5).to_string())));
        }
    }
    if kinds.contains(&FactKind::Laterality) {
        let side = tokens
            .iter()
            .position(|t| matches!(bare(t).as_str(), "left" | "right"));
        if let Some(i) = side {
            let other = if bare(tokens[i]) == "left" {
                "right"
            } else {
                "left"
            };
            let other = if tokens[i].starts_with(char::is_uppercase) {
                capitalised(other)
            } else {
                other.to_string()
            };
            out.push((FactKind::Laterality, replace(i, other + &tail(tokens[i]))));
        }
    }
    let flip = tokens
        .iter()
        .position(|t| matches!(bare(t).as_str(), "denies" | "reports"));
    if let Some(i) = flip {
        let (kind, other) = if bare(tokens[i]) == "denies" {
            (FactKind::NegatedFinding, "reports")
        } else {
            (FactKind::AffirmedFinding, "denies")
        };
        out.push((kind, replace(i, other.to_string())));
    }
    if kinds.contains(&FactKind::Medication) {
        let drug = tokens.iter().position(|t| is_medication(&bare(t)));
        let unsaid = crate::facts::medications().find(|m| {
            !checker.supports(&Fact {
                kind: FactKind::Medication,
                text: (*m).to_string(),
            })
        });
        if let Some((i, other)) = drug.zip(unsaid) {
            out.push((
                FactKind::Medication,
                replace(i, other.to_string() + &tail(tokens[i])),
            ));
        }
    }
    out
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_shares() {
        let mut f = FactFigures::default();
        *f.kind(FactKind::Dose) = FactCounts {
            candidate: 6,
            unsupported_candidate: 2,
            reference: 4,
            omitted: 1,
            ..FactCounts::default()
        };
        *f.kind(FactKind::Laterality) = FactCounts {
            candidate: 4,
            corrupted: 4,
            corrupted_caught: 3,
            ..FactCounts::default()
        };
        let t = f.total();
        assert_eq!(t.hallucination_rate_before_check(), 0.2);
        assert_eq!(t.omission_rate(), 0.25);
        assert_eq!(t.hallucination_rate(), 0.0);
        assert_eq!(t.corruption_recall(), 0.75);
        assert_eq!(f.medications_and_doses().candidate, 6);
    }

    #[test]
    fn reference_facts_are_stated_up_to_wording() {
        let fact = |kind, text: &str| Fact {
            kind,
            text: text.into(),
        };
        let denial = fact(FactKind::NegatedFinding, "chest pain");
        assert!(states(
            &fact(FactKind::NegatedFinding, "chest pains"),
            &denial
        ));
        assert!(!states(
            &fact(FactKind::AffirmedFinding, "chest pain"),
            &denial
        ));
        let side = fact(FactKind::Laterality, "left knee");
        assert!(states(&fact(FactKind::Laterality, "left knee"), &side));
        assert!(!states(&fact(FactKind::Laterality, "right knee"), &side));
        assert!(!states(
            &fact(FactKind::Dose, "20 mg"),
            &fact(FactKind::Dose, "40 mg")
        ));
    }

    #[test]
    fn corruptions_change_one_fact_each() {
        let checker = FactChecker::new(
            &Dialogue::parse("[doctor] start lisinopril 20 mg for the left knee .").unwrap(),
        );
        let c = corrupt("Start lisinopril 20 mg for the Left knee.", &checker);
        let kinds: Vec<FactKind> = c.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [FactKind::Dose, FactKind::Laterality, FactKind::Medication]
        );
        assert_eq!(c[0].1, "Start lisinopril 45 mg for the Left knee.");
        assert_eq!(c[1].1, "Start lisinopril 20 mg for the Right knee.");
        assert!(!c[2].1.contains("lisinopril"));
        let c = corrupt("The patient denies fever.", &checker);
        assert_eq!(
            c,
            [(
                FactKind::NegatedFinding,
                "The patient reports fever.".to_string()
            )]
        );
    }
}
