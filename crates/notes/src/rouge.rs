//! ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures computed the way the `rouge-score` package does
//! with `use_stemmer=True` (Lsum: lines are sentences, union LCS per reference sentence).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::text::stemmed;

/// F-measures (0–1) of one candidate against one reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rouge {
    /// Unigram overlap.
    pub rouge1: f64,
    /// Bigram overlap.
    pub rouge2: f64,
    /// Summary-level longest common subsequence over lines.
    pub rouge_lsum: f64,
}

impl Rouge {
    /// Scores `candidate` against `reference`.
    pub fn score(reference: &str, candidate: &str) -> Self {
        let r = stemmed(reference);
        let c = stemmed(candidate);
        Self {
            rouge1: ngram_f(&r, &c, 1),
            rouge2: ngram_f(&r, &c, 2),
            rouge_lsum: lsum_f(&lines(reference), &lines(candidate)),
        }
    }
}

fn f_measure(hits: usize, reference: usize, candidate: usize) -> f64 {
    if hits == 0 || reference == 0 || candidate == 0 {
        return 0.0;
    }
    let p = hits as f64 / candidate as f64;
    let r = hits as f64 / reference as f64;
    2.0 * p * r / (p + r)
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

fn ngram_f(reference: &[String], candidate: &[String], n: usize) -> f64 {
    let r = ngram_counts(reference, n);
    let c = ngram_counts(candidate, n);
    let hits = c
        .iter()
        .map(|(gram, &count)| count.min(r.get(gram).copied().unwrap_or(0)))
        .sum();
    f_measure(hits, r.values().sum(), c.values().sum())
}

fn lines(text: &str) -> Vec<Vec<String>> {
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(stemmed)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Indices in `a` of one longest common subsequence of `a` and `b`.
fn lcs_indices(a: &[String], b: &[String]) -> Vec<usize> {
    let (n, m) = (a.len(), b.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 1..=n {
        for j in 1..=m {
            table[at(i, j)] = if a[i - 1] == b[j - 1] {
                table[at(i - 1, j - 1)] + 1
            } else {
                table[at(i - 1, j)].max(table[at(i, j - 1)])
            };
        }
    }
    let (mut i, mut j) = (n, m);
    let mut indices = Vec::new();
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            indices.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[at(i - 1, j)] > table[at(i, j - 1)] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    indices.reverse();
    indices
}

fn lsum_f(reference: &[Vec<String>], candidate: &[Vec<String>]) -> f64 {
    let total = |sentences: &[Vec<String>]| -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for token in sentences.iter().flatten() {
            *counts.entry(token.clone()).or_insert(0) += 1;
        }
        counts
    };
    let mut left_r = total(reference);
    let mut left_c = total(candidate);
    let mut hits = 0;
    for r in reference {
        let union: BTreeSet<usize> = candidate.iter().flat_map(|c| lcs_indices(r, c)).collect();
        for token in union.into_iter().map(|i| &r[i]) {
            let (Some(cr), Some(cc)) = (left_r.get_mut(token), left_c.get_mut(token)) else {
                continue;
            };
            if *cr > 0 && *cc > 0 {
                *cr -= 1;
                *cc -= 1;
                hits += 1;
            }
        }
    }
    let count = |s: &[Vec<String>]| s.iter().map(Vec::len).sum();
    f_measure(hits, count(reference), count(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_score_one() {
        let s = Rouge::score(
            "The patient denies chest pain.\nPlan: rest.",
            "The patient denies chest pain.\nPlan: rest.",
        );
        assert!((s.rouge1 - 1.0).abs() < 1e-9);
        assert!((s.rouge2 - 1.0).abs() < 1e-9);
        assert!((s.rouge_lsum - 1.0).abs() < 1e-9);
    }

    #[test]
    fn partial_overlap_scores_between() {
        let s = Rouge::score("the cat sat on the mat", "the cat lay on a mat");
        // 4 of 6 unigrams in common both ways.
        assert!((s.rouge1 - 4.0 / 6.0).abs() < 1e-9);
        // "the cat" is the only shared bigram of 5.
        assert!((s.rouge2 - 1.0 / 5.0).abs() < 1e-9);
        assert!(s.rouge_lsum > 0.0 && s.rouge_lsum < 1.0);
    }
}
