//! Ranked code suggestions with their evidence spans.

use crate::Error;
use crate::corpus::{CodeSystem, Span};
use crate::features::Document;
use crate::model::Coder;

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
        let logits = self.logits(docs)?;
        Ok(docs
            .iter()
            .zip(logits)
            .map(|(doc, logits)| {
                let mut order: Vec<usize> = (0..logits.len()).collect();
                order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
                CodeSystem::ALL
                    .into_iter()
                    .flat_map(|system| {
                        order
                            .iter()
                            .copied()
                            .filter(move |&l| self.spec.labels[l].system == system)
                            .take(top)
                    })
                    .map(|l| Suggestion {
                        code: self.spec.labels[l].code.clone(),
                        system: Some(self.spec.labels[l].system),
                        score: 1.0 / (1.0 + (-logits[l]).exp()),
                        evidence: self.evidence(doc, l),
                    })
                    .collect()
            })
            .collect())
    }

    /// The first occurrence of each of the [`EVIDENCE_NGRAMS`] n-grams contributing most
    /// (positively) to `label` on `doc`, strongest first, overlapping spans merged.
    pub fn evidence(&self, doc: &Document, label: usize) -> Vec<Span> {
        let mut shares = self.contributions(doc, label);
        shares.retain(|&(_, c)| c > 0.0);
        shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut spans: Vec<Span> = Vec::new();
        for (bucket, _) in shares.into_iter().take(EVIDENCE_NGRAMS) {
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
}
