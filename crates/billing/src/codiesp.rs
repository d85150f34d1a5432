//! CodiEsp end to end: a model's label space from a split, coding a folder of cases, and the
//! evaluation report of predictions against a split's gold files.

use crate::corpus::{Case, CodeSystem, Lang, Split};
use crate::features::{Document, Featurizer};
use crate::metrics::{
    Predictions, Prf, SpanMatch, codiesp_x, mean_average_precision, ranked_codes, tune_threshold,
};
use crate::{Coder, CoderSpec, Error, label_space};

/// A model spec whose label space is every code of `split` (a public code list).
pub fn spec_for(split: &Split, lang: Lang, featurizer: Featurizer, dim: usize) -> CoderSpec {
    let codes = CodeSystem::ALL.into_iter().flat_map(|system| {
        split
            .codes(system)
            .values()
            .flatten()
            .map(move |c| (system, c.clone()))
    });
    CoderSpec {
        lang,
        featurizer,
        dim,
        labels: label_space(codes),
    }
}

/// Codes every case: case id -> the `top` best codes of each system, with evidence.
pub fn code_cases(coder: &Coder, cases: &[Case], top: usize) -> Result<Predictions, Error> {
    let docs: Vec<Document> = cases.iter().map(|c| coder.encode(&c.text)).collect();
    let refs: Vec<&Document> = docs.iter().collect();
    let suggestions = coder.suggest(&refs, top)?;
    Ok(cases
        .iter()
        .map(|c| c.id.clone())
        .zip(suggestions)
        .collect())
}

/// The scores of one code system.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SystemScores {
    /// Gold cases scored.
    pub cases: usize,
    /// CodiEsp MAP.
    pub map: f64,
    /// The probability threshold with the best micro-F1.
    pub threshold: f32,
    /// Micro-F1 (with precision and recall) at that threshold.
    pub micro: Prf,
}

/// Scores of predictions against a split's gold files.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// CodiEsp-D (absent without gold diagnoses).
    pub diagnosis: Option<SystemScores>,
    /// CodiEsp-P (absent without gold procedures).
    pub procedure: Option<SystemScores>,
    /// CodiEsp-X as the official scorer counts it (code + evidence span containing the gold
    /// span within 10 characters), each system's codes at its tuned threshold (absent without
    /// gold evidence).
    pub evidence: Option<Prf>,
    /// The same with any overlap of the spans accepted.
    pub evidence_overlap: Option<Prf>,
}

/// Scores `pred` against `gold`'s code lists and evidence.
pub fn evaluate(pred: &Predictions, gold: &Split) -> Report {
    let scores = |system| {
        let codes = gold.codes(system);
        (!codes.is_empty()).then(|| {
            let (cases, map) = mean_average_precision(&ranked_codes(pred, system), codes);
            let (threshold, micro) = tune_threshold(pred, codes, system);
            SystemScores {
                cases,
                map,
                threshold,
                micro,
            }
        })
    };
    let diagnosis = scores(CodeSystem::Diagnosis);
    let procedure = scores(CodeSystem::Procedure);
    let thresholds = |system| {
        let tuned = match system {
            CodeSystem::Diagnosis => &diagnosis,
            CodeSystem::Procedure => &procedure,
        };
        tuned.as_ref().map_or(0.5, |s| s.threshold)
    };
    let x = |rule| {
        (!gold.evidence.is_empty()).then(|| codiesp_x(pred, &gold.evidence, thresholds, rule))
    };
    Report {
        evidence: x(SpanMatch::Official),
        evidence_overlap: x(SpanMatch::Overlap),
        diagnosis,
        procedure,
    }
}
