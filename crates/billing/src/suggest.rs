//! Ranked code suggestions with their evidence spans.

use crate::Error;
use crate::corpus::{CodeSystem, Span};
use crate::features::Document;
use crate::model::{Coder, Params};

/// One suggested code: its probability and the text spans that support it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Suggestion {
    /// The code, upper case.
    pub code: String,
    /// Its code system (absent in prediction files of other tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<CodeSystem>,
    /// Probability (sigmoid of the logit).
    pub score: f32,
    /// Character spans of the n-grams that contribute most to the code, strongest first.
    #[serde(default)]
    pub evidence: Vec<Span>,
}

/// N-grams (hash buckets) whose spans make up a suggestion's evidence.
const EVIDENCE_NGRAMS: usize = 3;

impl Coder {
    /// The `top` most probable codes of each system for `docs`, best first, with evidence.
    pub fn suggest(&self, docs: &[&Document], top: usize) -> Result<Vec<Vec<Suggestion>>, Error> {
        let params = Params::new(&self.spec, &self.weights)?;
        let logits = self.logits(docs)?;
        docs.iter()
            .zip(logits)
            .map(|(doc, logits)| {
                let mut order: Vec<usize> = (0..logits.len()).collect();
                order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
                let chosen: Vec<usize> = CodeSystem::ALL
                    .into_iter()
                    .flat_map(|system| {
                        order
                            .iter()
                            .copied()
                            .filter(move |&l| self.spec.labels[l].system == system)
                            .take(top)
                    })
                    .collect();
                let shares = params.contributions(doc, &chosen)?;
                Ok(chosen
                    .into_iter()
                    .zip(shares)
                    .map(|(l, shares)| Suggestion {
                        code: self.spec.labels[l].code.clone(),
                        system: Some(self.spec.labels[l].system),
                        score: 1.0 / (1.0 + (-logits[l]).exp()),
                        evidence: evidence(doc, &shares),
                    })
                    .collect())
            })
            .collect()
    }
}

/// The first occurrence of each of the [`EVIDENCE_NGRAMS`] features with the largest positive
/// `shares` (one per entry of `doc.features`) of a code's logit, strongest first, overlapping
/// spans merged.
pub(crate) fn evidence(doc: &Document, shares: &[f32]) -> Vec<Span> {
    let mut ranked: Vec<(u32, f32)> = doc
        .features
        .iter()
        .zip(shares)
        .filter(|&(_, &c)| c > 0.0)
        .map(|(&(bucket, _), &c)| (bucket, c))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut spans: Vec<Span> = Vec::new();
    for (bucket, _) in ranked.into_iter().take(EVIDENCE_NGRAMS) {
        let Some(found) = doc.occurrences.iter().find(|o| o.bucket == bucket) else {
            continue;
        };
        let mut span = found.span;
        let mut at = spans.len();
        let mut i = 0;
        while i < spans.len() {
            if spans[i].overlaps(&span) {
                let merged = spans.remove(i);
                span = Span {
                    start: merged.start.min(span.start),
                    end: merged.end.max(span.end),
                };
                at = at.min(i);
            } else {
                i += 1;
            }
        }
        spans.insert(at.min(spans.len()), span);
    }
    spans
}
