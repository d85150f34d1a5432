//! Tokeniser and hashed n-gram features, each feature remembering where in the text it occurs
//! (for evidence spans).

use std::collections::BTreeMap;

use crate::corpus::Span;

/// A word of the text: normalised (lower case, Latin accents folded) and where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// Normalised form.
    pub text: String,
    /// Character range in the original text.
    pub span: Span,
}

/// Splits `text` into maximal runs of letters and digits, normalised to lower case without
/// accents (`Diagnóstico` → `diagnostico`), with their character offsets.
pub fn tokenise(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut count = 0;
    for (i, c) in text.chars().enumerate() {
        count = i + 1;
        if c.is_alphanumeric() {
            if current.is_empty() {
                start = i;
            }
            current.extend(c.to_lowercase().map(fold_accent));
        } else if !current.is_empty() {
            tokens.push(Token {
                text: std::mem::take(&mut current),
                span: Span { start, end: i },
            });
        }
    }
    if !current.is_empty() {
        tokens.push(Token {
            text: current,
            span: Span { start, end: count },
        });
    }
    tokens
}

/// The unaccented letter of a lower-case accented Latin letter (others unchanged).
fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ñ' => 'n',
        'ç' => 'c',
        other => other,
    }
}

/// How texts become feature vectors: word n-grams of length 1 to `max_n`, hashed (64-bit
/// FNV-1a of the space-joined normalised words) into `buckets` buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Featurizer {
    /// Number of hash buckets (the model's input width).
    pub buckets: u32,
    /// Longest n-gram, in words.
    pub max_n: usize,
}

/// Where one n-gram occurs: its bucket and its character range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Occurrence {
    /// Hash bucket of the n-gram.
    pub bucket: u32,
    /// First to last character of its words.
    pub span: Span,
}

/// A text as sparse features: `(bucket, value)` sorted by bucket, values `1 + ln(count)` scaled to
/// unit L2 norm, plus every n-gram occurrence.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Non-zero features, sorted by bucket.
    pub features: Vec<(u32, f32)>,
    /// Every n-gram occurrence, in text order of its first word.
    pub occurrences: Vec<Occurrence>,
}

impl Featurizer {
    /// Encodes a text.
    pub fn encode(&self, text: &str) -> Document {
        let tokens = tokenise(text);
        let mut occurrences = Vec::new();
        for (i, first) in tokens.iter().enumerate() {
            let mut key = String::new();
            for (n, token) in tokens[i..].iter().take(self.max_n).enumerate() {
                if n > 0 {
                    key.push(' ');
                }
                key.push_str(&token.text);
                occurrences.push(Occurrence {
                    bucket: self.bucket(&key),
                    span: Span {
                        start: first.span.start,
                        end: token.span.end,
                    },
                });
            }
        }
        let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
        for o in &occurrences {
            *counts.entry(o.bucket).or_default() += 1;
        }
        let mut features: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(b, c)| (b, 1.0 + (c as f32).ln()))
            .collect();
        let norm = features.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            features.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        Document {
            features,
            occurrences,
        }
    }

    /// The bucket of an n-gram key.
    fn bucket(&self, key: &str) -> u32 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (hash % u64::from(self.buckets)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_normalised_with_character_offsets() {
        let text = "Varón, 37 años: Diagnóstico—orquiepididimitis.";
        let tokens = tokenise(text);
        let words: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            words,
            ["varon", "37", "anos", "diagnostico", "orquiepididimitis"]
        );
        let chars: Vec<char> = text.chars().collect();
        for t in &tokens {
            let original: String = chars[t.span.start..t.span.end].iter().collect();
            assert_eq!(
                original
                    .to_lowercase()
                    .chars()
                    .map(fold_accent)
                    .collect::<String>(),
                t.text
            );
        }
        assert_eq!(tokens.last().unwrap().span.end, chars.len() - 1);
    }

    #[test]
    fn ngrams_hash_to_unit_norm_features() {
        let f = Featurizer {
            buckets: 1 << 12,
            max_n: 2,
        };
        let doc = f.encode("fiebre alta y fiebre");
        // 4 unigrams + 3 bigrams.
        assert_eq!(doc.occurrences.len(), 7);
        let norm: f32 = doc.features.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(doc.features.windows(2).all(|w| w[0].0 < w[1].0));
        let fever = f.bucket("fiebre");
        let fever_value = doc.features.iter().find(|(b, _)| *b == fever).unwrap().1;
        let high_value = doc
            .features
            .iter()
            .find(|(b, _)| *b == f.bucket("alta"))
            .unwrap()
            .1;
        assert!(fever_value > high_value, "a repeated word weighs more");
        let bigram = doc
            .occurrences
            .iter()
            .find(|o| o.bucket == f.bucket("fiebre alta"))
            .unwrap();
        assert_eq!(bigram.span, Span { start: 0, end: 11 });
        assert_eq!(
            f.encode(""),
            Document {
                features: vec![],
                occurrences: vec![]
            }
        );
    }
}
