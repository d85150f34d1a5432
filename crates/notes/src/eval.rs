//! Scoring drafts against reference notes: ROUGE, and the fact figures — how many of the
//! draft's facts the transcript does not support (before and after the fact checker) and how
//! many of the reference note's facts that the transcript supports the draft leaves out.

use std::collections::HashSet;
use std::ops::AddAssign;

use serde::Serialize;

use crate::Error;
use crate::dialogue::Dialogue;
use crate::draft::{Draft, Summarizer};
use crate::facts::{Fact, FactChecker, FactKind, facts};
use crate::rouge::Rouge;

/// Fact counts of one or more drafts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FactFigures {
    /// Facts in the candidate sentences, before the checker.
    pub candidate_facts: usize,
    /// Of those, facts the transcript does not support.
    pub unsupported_candidate_facts: usize,
    /// Of those, medications and doses.
    pub unsupported_candidate_medications_doses: usize,
    /// Sentences the checker removed.
    pub removed_sentences: usize,
    /// Facts in the final draft.
    pub draft_facts: usize,
    /// Of those, facts the transcript does not support (the checker leaves none).
    pub unsupported_draft_facts: usize,
    /// Of those, medications and doses.
    pub unsupported_draft_medications_doses: usize,
    /// Medications, doses, numbers and laterality in the reference note that the transcript
    /// supports.
    pub reference_facts: usize,
    /// Of those, facts missing from the draft.
    pub omitted_reference_facts: usize,
}

impl FactFigures {
    /// Unsupported share of the candidate facts (hallucination rate without the checker).
    pub fn hallucination_rate_before_check(&self) -> f64 {
        ratio(self.unsupported_candidate_facts, self.candidate_facts)
    }

    /// Unsupported share of the final draft's facts.
    pub fn hallucination_rate(&self) -> f64 {
        ratio(self.unsupported_draft_facts, self.draft_facts)
    }

    /// Share of the reference's supported facts the draft leaves out.
    pub fn omission_rate(&self) -> f64 {
        ratio(self.omitted_reference_facts, self.reference_facts)
    }
}

impl AddAssign for FactFigures {
    fn add_assign(&mut self, o: Self) {
        self.candidate_facts += o.candidate_facts;
        self.unsupported_candidate_facts += o.unsupported_candidate_facts;
        self.unsupported_candidate_medications_doses += o.unsupported_candidate_medications_doses;
        self.removed_sentences += o.removed_sentences;
        self.draft_facts += o.draft_facts;
        self.unsupported_draft_facts += o.unsupported_draft_facts;
        self.unsupported_draft_medications_doses += o.unsupported_draft_medications_doses;
        self.reference_facts += o.reference_facts;
        self.omitted_reference_facts += o.omitted_reference_facts;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn is_medication_or_dose(f: &Fact) -> bool {
    matches!(f.kind, FactKind::Medication | FactKind::Dose)
}

/// The scores of one draft.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DraftScore {
    /// ROUGE against the reference note.
    pub rouge: Rouge,
    /// Fact counts.
    pub facts: FactFigures,
}

/// Drafts the note of `transcript` and scores it against `reference`.
pub fn score(
    summarizer: &Summarizer,
    transcript: &str,
    reference: &str,
) -> Result<(Draft, DraftScore), Error> {
    let draft = summarizer.draft(transcript)?;
    let checker = FactChecker::new(&Dialogue::parse(transcript)?);
    let mut figures = FactFigures {
        removed_sentences: draft.flags.len(),
        ..FactFigures::default()
    };
    let kept: Vec<&str> = draft
        .sections
        .iter()
        .flat_map(|s| s.statements.iter().map(|t| t.text.as_str()))
        .collect();
    let mut draft_facts = HashSet::new();
    for sentence in &kept {
        for fact in facts(sentence) {
            let supported = checker.supports(&fact);
            figures.candidate_facts += 1;
            figures.draft_facts += 1;
            if !supported {
                figures.unsupported_candidate_facts += 1;
                figures.unsupported_draft_facts += 1;
                if is_medication_or_dose(&fact) {
                    figures.unsupported_candidate_medications_doses += 1;
                    figures.unsupported_draft_medications_doses += 1;
                }
            }
            draft_facts.insert(fact);
        }
    }
    for flag in &draft.flags {
        for fact in facts(&flag.text) {
            figures.candidate_facts += 1;
            if !checker.supports(&fact) {
                figures.unsupported_candidate_facts += 1;
                if is_medication_or_dose(&fact) {
                    figures.unsupported_candidate_medications_doses += 1;
                }
            }
        }
    }
    let reference_facts: HashSet<Fact> = facts(reference)
        .into_iter()
        .filter(|f| f.kind != FactKind::NegatedFinding && checker.supports(f))
        .collect();
    figures.reference_facts = reference_facts.len();
    figures.omitted_reference_facts = reference_facts.difference(&draft_facts).count();
    let rouge = Rouge::score(reference, &draft.text());
    Ok((
        draft,
        DraftScore {
            rouge,
            facts: figures,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_shares() {
        let f = FactFigures {
            candidate_facts: 10,
            unsupported_candidate_facts: 2,
            reference_facts: 4,
            omitted_reference_facts: 1,
            ..FactFigures::default()
        };
        assert_eq!(f.hallucination_rate_before_check(), 0.2);
        assert_eq!(f.omission_rate(), 0.25);
        assert_eq!(f.hallucination_rate(), 0.0);
    }
}
