//! Cleaning free text (action `C` on descriptors and comments): words that
//! are identifiers found elsewhere in the same file (names, IDs, institution,
//! dates) and anything shaped like a record number or a year are masked.

use std::collections::HashSet;

/// Masks identifying words in free text.
#[derive(Debug, Default, Clone)]
pub struct Scrubber {
    identifiers: HashSet<String>,
}

impl Scrubber {
    /// Learn the identifying words from attribute values (person names,
    /// IDs, addresses, institution...). Words shorter than 2 characters are
    /// ignored.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let identifiers = values
            .into_iter()
            .flat_map(words)
            .filter(|w| w.chars().count() >= 2)
            .map(|w| w.to_uppercase())
            .collect();
        Self { identifiers }
    }

    /// The identifying words learnt, upper-case.
    pub fn identifiers(&self) -> impl Iterator<Item = &str> {
        self.identifiers.iter().map(String::as_str)
    }

    /// `text` with every identifying word replaced by `*`; `None` when
    /// nothing needed masking.
    pub fn clean(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let mut rest = text;
        while !rest.is_empty() {
            let start = rest
                .find(|c: char| c.is_alphanumeric())
                .unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if !word.is_empty() && self.is_identifying(word) {
                out.push('*');
                changed = true;
            } else {
                out.push_str(word);
            }
            rest = &rest[end..];
        }
        changed.then_some(out)
    }

    fn is_identifying(&self, word: &str) -> bool {
        let digits = word.chars().filter(char::is_ascii_digit).count();
        let looks_like_year = word.len() == 4
            && digits == 4
            && word
                .parse::<u32>()
                .is_ok_and(|y| (1900..=2100).contains(&y));
        digits >= 5 || looks_like_year || self.identifiers.contains(&word.to_uppercase())
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_years_are_masked_other_words_kept() {
        let scrubber = Scrubber::from_values(["DOE^JANE", "MRN12345"]);
        assert_eq!(
            scrubber
                .clean("Breast US Jane Doe 2017 ref 00079241539")
                .as_deref(),
            Some("Breast US * * * ref *")
        );
    }

    #[test]
    fn clean_text_is_left_alone() {
        let scrubber = Scrubber::from_values(["DOE^JANE"]);
        assert_eq!(scrubber.clean("Adult Echo 2D"), None);
    }
}
