//! Evaluation: CodiEsp's official MAP of ranked codes, micro-F1 at a probability threshold, and
//! evidence-span precision/recall (CodiEsp-X).

use std::collections::{BTreeMap, HashSet};

use crate::corpus::{CodeLists, CodeSystem, Evidence, Span};
use crate::suggest::Suggestion;

/// Predictions per case, best first.
pub type Predictions = BTreeMap<String, Vec<Suggestion>>;

/// Mean over the gold cases of the average precision of each case's ranked list, exactly as
/// CodiEsp's scorer computes it: a hit at rank `k` adds (hits so far) / `k`, the sum is divided by
/// the number of gold codes, and a case without predictions scores 0. Codes compare
/// case-insensitively. Returns `(cases, MAP)`.
pub fn mean_average_precision(
    ranked: &BTreeMap<String, Vec<String>>,
    gold: &CodeLists,
) -> (usize, f64) {
    let mut total = 0.0;
    for (case, codes) in gold {
        let codes: HashSet<String> = codes.iter().map(|c| c.to_uppercase()).collect();
        let mut hits = 0usize;
        let mut sum = 0.0;
        for (k, code) in ranked.get(case).into_iter().flatten().enumerate() {
            if codes.contains(&code.to_uppercase()) {
                hits += 1;
                sum += hits as f64 / (k + 1) as f64;
            }
        }
        total += sum / codes.len() as f64;
    }
    (
        gold.len(),
        if gold.is_empty() {
            0.0
        } else {
            total / gold.len() as f64
        },
    )
}

/// The ranked codes of one system (predictions without a system count for every system).
pub fn ranked_codes(pred: &Predictions, system: CodeSystem) -> BTreeMap<String, Vec<String>> {
    pred.iter()
        .map(|(case, list)| {
            let codes = list
                .iter()
                .filter(|s| s.system.is_none_or(|s| s == system))
                .map(|s| s.code.to_uppercase())
                .collect();
            (case.clone(), codes)
        })
        .collect()
}

/// Precision, recall and F1 of a set of predictions.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Prf {
    /// Correct predictions over predictions.
    pub precision: f64,
    /// Gold items found over gold items.
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
}

impl Prf {
    /// From counts of correct predictions, predictions and gold items.
    pub fn from_counts(correct: usize, predicted: usize, gold: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(correct, predicted), ratio(correct, gold));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            precision,
            recall,
            f1,
        }
    }
}

/// Micro-averaged precision/recall/F1 over the gold cases of the codes of `system` scored at
/// least `threshold`.
pub fn micro_f1(pred: &Predictions, gold: &CodeLists, system: CodeSystem, threshold: f32) -> Prf {
    let (mut correct, mut predicted, mut total) = (0, 0, 0);
    for (case, codes) in gold {
        let codes: HashSet<String> = codes.iter().map(|c| c.to_uppercase()).collect();
        let chosen: HashSet<String> = pred
            .get(case)
            .into_iter()
            .flatten()
            .filter(|s| s.system.is_none_or(|s| s == system) && s.score >= threshold)
            .map(|s| s.code.to_uppercase())
            .collect();
        correct += chosen.intersection(&codes).count();
        predicted += chosen.len();
        total += codes.len();
    }
    Prf::from_counts(correct, predicted, total)
}

/// The threshold among 0.001, 0.002, ..., 0.999 with the best micro-F1 (the lowest of equals),
/// and that F1.
pub fn tune_threshold(pred: &Predictions, gold: &CodeLists, system: CodeSystem) -> (f32, Prf) {
    (1..1000)
        .map(|t| {
            let threshold = t as f32 / 1000.0;
            (threshold, micro_f1(pred, gold, system, threshold))
        })
        .fold(None, |best: Option<(f32, Prf)>, (t, prf)| match best {
            Some((_, b)) if b.f1 >= prf.f1 => best,
            _ => Some((t, prf)),
        })
        .expect("999 thresholds")
}

/// How far, in characters, a predicted evidence span may reach beyond each end of the gold
/// span it contains and still match in the official CodiEsp-X metric.
pub const CODIESP_X_TOLERANCE: usize = 10;

/// How a predicted evidence span must sit against a gold span of the same code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanMatch {
    /// The official CodiEsp-X rule: the predicted span contains the gold span (a
    /// discontinuous gold reference read as its first start to its last end) and goes at most
    /// [`CODIESP_X_TOLERANCE`] characters beyond it at each end.
    Official,
    /// Lenient: the two spans share at least one character (any part of a discontinuous gold
    /// reference).
    Overlap,
}

impl SpanMatch {
    fn matches(self, predicted: &Span, gold: &[Span]) -> bool {
        match self {
            Self::Official => {
                let (Some(first), Some(last)) = (gold.first(), gold.last()) else {
                    return false;
                };
                let (start, end) = (first.start, last.end);
                predicted.start <= start
                    && start - predicted.start <= CODIESP_X_TOLERANCE
                    && predicted.end >= end
                    && predicted.end - end <= CODIESP_X_TOLERANCE
            }
            Self::Overlap => gold.iter().any(|g| g.overlaps(predicted)),
        }
    }
}

/// CodiEsp-X: precision and recall of codes with their evidence, as the official scorer counts
/// them. Every evidence span of a suggestion scored at least its system's threshold
/// (`thresholds(system)`) is one predicted `(case, code, span)` row. Predictions are the
/// distinct `(case, code)` pairs with at least one row, gold the distinct `(case, code)` pairs
/// of `gold`; a gold pair is found when one of its spans matches (`rule`) one of the predicted
/// rows of that pair. Codes compare case-insensitively; the code system is not compared (as in
/// the official scorer).
pub fn codiesp_x(
    pred: &Predictions,
    gold: &BTreeMap<String, Vec<Evidence>>,
    thresholds: impl Fn(CodeSystem) -> f32,
    rule: SpanMatch,
) -> Prf {
    let mut predicted: BTreeMap<(&str, String), Vec<Span>> = BTreeMap::new();
    for (case, list) in pred {
        for s in list {
            let threshold = s.system.map_or(0.0, &thresholds);
            if s.score >= threshold && !s.evidence.is_empty() {
                predicted
                    .entry((case.as_str(), s.code.to_uppercase()))
                    .or_default()
                    .extend(&s.evidence);
            }
        }
    }
    let mut pairs: BTreeMap<(&str, String), bool> = BTreeMap::new();
    for (case, rows) in gold {
        for row in rows {
            let key = (case.as_str(), row.code.to_uppercase());
            let found = predicted
                .get(&key)
                .is_some_and(|spans| spans.iter().any(|p| rule.matches(p, &row.spans)));
            *pairs.entry(key).or_default() |= found;
        }
    }
    let correct = pairs.values().filter(|&&f| f).count();
    Prf::from_counts(correct, predicted.len(), pairs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Span;

    fn gold(rows: &[(&str, &[&str])]) -> CodeLists {
        rows.iter()
            .map(|(c, codes)| (c.to_string(), codes.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn ranked(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        gold(rows)
    }

    #[test]
    fn map_matches_the_official_definition() {
        // Case a: hits at ranks 1 and 3 of 3 gold codes: (1/1 + 2/3) / 3.
        // Case b: no predictions: 0. Case c is not gold and does not count.
        let g = gold(&[("a", &["X1", "X2", "X3"]), ("b", &["Y"])]);
        let r = ranked(&[("a", &["x1", "z", "X3"]), ("c", &["Q"])]);
        let (cases, map) = mean_average_precision(&r, &g);
        assert_eq!(cases, 2);
        let expected = ((1.0 + 2.0 / 3.0) / 3.0 + 0.0) / 2.0;
        assert!((map - expected).abs() < 1e-12, "{map} vs {expected}");
        let perfect = ranked(&[("a", &["X3", "X2", "X1"]), ("b", &["Y", "Z"])]);
        assert_eq!(mean_average_precision(&perfect, &g).1, 1.0);
    }

    fn suggestion(
        code: &str,
        system: CodeSystem,
        score: f32,
        evidence: &[(usize, usize)],
    ) -> Suggestion {
        Suggestion {
            code: code.into(),
            system: Some(system),
            score,
            evidence: evidence
                .iter()
                .map(|&(start, end)| Span { start, end })
                .collect(),
        }
    }

    #[test]
    fn micro_f1_counts_codes_above_the_threshold() {
        let d = CodeSystem::Diagnosis;
        let p = CodeSystem::Procedure;
        let pred: Predictions = [(
            "a".to_string(),
            vec![
                suggestion("R50.9", d, 0.9, &[]),
                suggestion("BW03ZZZ", p, 0.8, &[]),
                suggestion("N45", d, 0.4, &[]),
                suggestion("A23.9", d, 0.1, &[]),
            ],
        )]
        .into();
        let g = gold(&[("a", &["r50.9", "a23.9"])]);
        // At 0.3: R50.9 right, N45 wrong; A23.9 missed. The procedure is not a diagnosis.
        assert_eq!(micro_f1(&pred, &g, d, 0.3), Prf::from_counts(1, 2, 2));
        let (threshold, best) = tune_threshold(&pred, &g, d);
        // Every code from 0.001 to 0.100 (the lowest of equals wins): 2 right of 3, all found.
        assert_eq!((threshold, best), (0.001, Prf::from_counts(2, 3, 2)));
        let codes = ranked_codes(&pred, d);
        assert_eq!(codes["a"], ["R50.9", "N45", "A23.9"]);
    }

    #[test]
    fn codiesp_x_counts_code_and_span_pairs_as_the_official_scorer() {
        let d = CodeSystem::Diagnosis;
        let p = CodeSystem::Procedure;
        let pred: Predictions = [
            (
                "a".to_string(),
                vec![
                    // Contains the gold 12-20 with 2 and 0 characters to spare: found.
                    suggestion("r50.9", d, 0.9, &[(10, 20)]),
                    // Overlaps gold 0-5 without containing it; a second span misses.
                    suggestion("N45", d, 0.8, &[(3, 8), (40, 50)]),
                    // Below its threshold: not predicted.
                    suggestion("A23.9", d, 0.2, &[(60, 70)]),
                    // Contains the discontinuous gold 30-34;38-41 (as 30-41), 11 characters too
                    // far on the right.
                    suggestion("BW03ZZZ", p, 0.5, &[(30, 52)]),
                ],
            ),
            // A predicted case without gold still counts as predictions.
            (
                "z".to_string(),
                vec![suggestion("R50.9", d, 0.9, &[(0, 3)])],
            ),
        ]
        .into();
        let evidence = |system, code: &str, spans: &[(usize, usize)]| Evidence {
            system,
            code: code.into(),
            spans: spans
                .iter()
                .map(|&(start, end)| Span { start, end })
                .collect(),
        };
        let gold = [(
            "a".to_string(),
            vec![
                evidence(d, "R50.9", &[(12, 20)]),
                // A second reference of the same code: one pair, found once is enough.
                evidence(d, "R50.9", &[(80, 90)]),
                evidence(d, "N45", &[(0, 5)]),
                evidence(d, "A23.9", &[(60, 70)]),
                evidence(p, "BW03ZZZ", &[(30, 34), (38, 41)]),
            ],
        )]
        .into();
        let thresholds = |system| match system {
            CodeSystem::Diagnosis => 0.5,
            CodeSystem::Procedure => 0.4,
        };
        // Predicted pairs: a/R50.9, a/N45, a/BW03ZZZ, z/R50.9; gold pairs: 4; found: a/R50.9.
        assert_eq!(
            codiesp_x(&pred, &gold, thresholds, SpanMatch::Official),
            Prf::from_counts(1, 4, 4)
        );
        // Overlap also accepts N45 and BW03ZZZ.
        assert_eq!(
            codiesp_x(&pred, &gold, thresholds, SpanMatch::Overlap),
            Prf::from_counts(3, 4, 4)
        );
        // At a lower threshold A23.9 comes in, with an exact span.
        assert_eq!(
            codiesp_x(&pred, &gold, |_| 0.1, SpanMatch::Official),
            Prf::from_counts(2, 5, 4)
        );
    }
}
