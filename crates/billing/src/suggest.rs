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

/// Longest evidence phrase, in words.
const PHRASE_WORDS: usize = 8;

/// The first occurrence of each of the [`EVIDENCE_NGRAMS`] features with the largest positive
/// `shares` (one per entry of `doc.features`) of a code's logit, strongest first, each widened
/// to its phrase (see [`phrase`]), overlapping spans merged.
pub(crate) fn evidence(doc: &Document, shares: &[f32]) -> Vec<Span> {
    let mut ranked: Vec<(u32, f32)> = doc
        .features
        .iter()
        .zip(shares)
        .filter(|&(_, &c)| c > 0.0)
        .map(|(&(bucket, _), &c)| (bucket, c))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let words = words(doc, shares);
    let mut spans: Vec<Span> = Vec::new();
    for (bucket, _) in ranked.into_iter().take(EVIDENCE_NGRAMS) {
        let Some(found) = doc.occurrences.iter().find(|o| o.bucket == bucket) else {
            continue;
        };
        let mut span = phrase(&words, found.span);
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

/// The words of `doc` in text order (the first occurrence at each start is the word itself),
/// each with its own share of the code's logit.
fn words(doc: &Document, shares: &[f32]) -> Vec<(Span, f32)> {
    let mut words: Vec<(Span, f32)> = Vec::new();
    for o in &doc.occurrences {
        if words.last().is_none_or(|(w, _)| w.start != o.span.start) {
            let share = doc
                .features
                .binary_search_by_key(&o.bucket, |&(b, _)| b)
                .map_or(0.0, |i| shares[i]);
            words.push((o.span, share));
        }
    }
    words
}

/// `span` widened over the neighbouring words that also support the code: a word joins when
/// its own share is positive, or when it is short (a preposition or article, at most 3
/// characters) and the word after it joins; words join only across a single space (never across
/// punctuation), up to [`PHRASE_WORDS`] words in all.
fn phrase(words: &[(Span, f32)], span: Span) -> Span {
    let (Some(first), Some(last)) = (
        words.iter().position(|(w, _)| w.start == span.start),
        words.iter().rposition(|(w, _)| w.end == span.end),
    ) else {
        return span;
    };
    let adjacent = |a: usize, b: usize| words[b].0.start == words[a].0.end + 1;
    let supports = |i: usize| words[i].1 > 0.0;
    let short = |i: usize| words[i].0.end - words[i].0.start <= 3;
    let (mut first, mut last) = (first, last);
    while last + 1 - first < PHRASE_WORDS {
        let next = last + 1;
        if next < words.len() && adjacent(last, next) && supports(next) {
            last = next;
        } else if next + 1 < words.len()
            && last + 2 - first < PHRASE_WORDS
            && adjacent(last, next)
            && adjacent(next, next + 1)
            && short(next)
            && supports(next + 1)
        {
            last = next + 1;
        } else {
            break;
        }
    }
    while last + 1 - first < PHRASE_WORDS {
        if first > 0 && adjacent(first - 1, first) && supports(first - 1) {
            first -= 1;
        } else if first > 1
            && last + 2 - first < PHRASE_WORDS
            && adjacent(first - 1, first)
            && adjacent(first - 2, first - 1)
            && short(first - 1)
            && supports(first - 2)
        {
            first -= 2;
        } else {
            break;
        }
    }
    Span {
        start: words[first].0.start,
        end: words[last].0.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Featurizer, tokenise};

    /// The document of `text` and the shares of `good` unigrams, -0.1 for every other feature.
    fn scored(text: &str, good: &[(&str, f32)]) -> (Document, Vec<f32>) {
        let doc = Featurizer {
            buckets: 1 << 16,
            max_n: 2,
        }
        .encode(text);
        let bucket_of = |word: &str| {
            let token = tokenise(text).into_iter().find(|t| t.text == word).unwrap();
            doc.occurrences
                .iter()
                .find(|o| o.span == token.span)
                .unwrap()
                .bucket
        };
        let shares = doc
            .features
            .iter()
            .map(|&(b, _)| {
                good.iter()
                    .find(|(w, _)| bucket_of(w) == b)
                    .map_or(-0.1, |&(_, share)| share)
            })
            .collect();
        (doc, shares)
    }

    fn text_of(text: &str, span: Span) -> String {
        text.chars()
            .skip(span.start)
            .take(span.end - span.start)
            .collect()
    }

    #[test]
    fn evidence_widens_to_the_supporting_phrase_within_punctuation() {
        let text = "Radiografía: fractura del cuello del fémur. Fiebre alta.";
        let good = [
            ("fractura", 2.0),
            ("radiografia", 1.0),
            ("cuello", 0.5),
            ("femur", 0.5),
        ];
        let (doc, shares) = scored(text, &good);
        let spans = evidence(&doc, &shares);
        // "fractura" widens over "del" to "cuello", over "del" to "fémur", and stops at the
        // full stop and at the colon; "radiografía" stays alone.
        assert_eq!(text_of(text, spans[0]), "fractura del cuello del fémur");
        assert_eq!(
            spans.iter().map(|&s| text_of(text, s)).collect::<Vec<_>>(),
            ["fractura del cuello del fémur", "Radiografía"]
        );
        // A short word is bridged only when a supporting word follows it.
        let text = "fractura de la pierna";
        let (doc, shares) = scored(text, &[("fractura", 1.0)]);
        assert_eq!(text_of(text, evidence(&doc, &shares)[0]), "fractura");
    }
}
