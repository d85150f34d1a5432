//! Tokens as ROUGE sees them (lower-case letters and digits, Porter stems of words longer than
//! three letters) and the content words used to align dialogue with notes.

use crate::stem::stem;

/// Lower-case alphanumeric tokens, non-alphanumerics as separators.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// [`words`] with words longer than three letters stemmed (rouge-score's tokeniser).
pub fn stemmed(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(|w| if w.len() > 3 { stem(&w) } else { w })
        .collect()
}

/// Stemmed tokens that carry content (not function words or conversational fillers).
pub fn content(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| !is_stopword(w))
        .map(|w| if w.len() > 3 { stem(&w) } else { w })
        .collect()
}

/// Function words and fillers that say nothing about a note's content.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

/// Sorted for binary search.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "actually",
    "after",
    "again",
    "all",
    "alright",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "for",
    "from",
    "get",
    "go",
    "going",
    "gon",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "hmm",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "kind",
    "know",
    "let",
    "like",
    "ll",
    "m",
    "me",
    "mean",
    "mhm",
    "mm",
    "my",
    "n",
    "na",
    "no",
    "not",
    "now",
    "of",
    "off",
    "oh",
    "ok",
    "okay",
    "on",
    "one",
    "or",
    "our",
    "out",
    "over",
    "pretty",
    "re",
    "really",
    "right",
    "s",
    "said",
    "say",
    "see",
    "she",
    "so",
    "some",
    "something",
    "sort",
    "sure",
    "t",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "to",
    "too",
    "uh",
    "um",
    "up",
    "us",
    "ve",
    "very",
    "wan",
    "want",
    "was",
    "we",
    "well",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "would",
    "yeah",
    "yes",
    "you",
    "your",
    "yours",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokens_follow_rouge() {
        assert_eq!(
            stemmed("Denies chest pains, 20 mg."),
            ["deni", "chest", "pain", "20", "mg"]
        );
        assert_eq!(content("and I have knee pains"), ["knee", "pain"]);
    }
}
