//! What the EHR knows of the patient: every occurrence of the record's
//! names (also misspelt by one or two letters, abbreviated to an initial or
//! a prefix, in capitals, without accents), identifiers, phone numbers,
//! e-mail and street addresses.

use super::lexicon;
use super::token::{Case, Token, fold, tokenize};
use super::{Context, Found, Label, Lang};

/// Spans of `text` that repeat a value of `context`.
pub fn detect(text: &str, tokens: &[Token], context: &Context) -> Vec<Found> {
    let mut found = Vec::new();
    let names: Vec<String> = context
        .names
        .iter()
        .flat_map(|n| tokenize(n))
        .filter(|t| t.alpha && t.chars() >= 2)
        .map(|t| fold(&t.lower))
        .collect();
    let places: Vec<String> = context
        .addresses
        .iter()
        .flat_map(|a| tokenize(a))
        .filter(|t| t.alpha && t.chars() >= 4 && !is_ordinary(&t.lower))
        .map(|t| fold(&t.lower))
        .collect();
    let mut matched = vec![false; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        if !t.alpha {
            continue;
        }
        let word = fold(&t.lower);
        let abbreviated = text[t.end..].starts_with('.');
        if names.iter().any(|n| similar(&word, n, abbreviated)) {
            matched[i] = true;
            found.push(Found::new(t.start, t.end, Label::Name));
        } else if places.iter().any(|p| similar(&word, p, false)) {
            found.push(Found::new(t.start, t.end, Label::Address));
        }
    }
    // Initials next to a matched name (`J. Dupont`, `Dupont J`).
    for (i, t) in tokens.iter().enumerate() {
        // A capital letter, not an elided article (`l'accompagne`).
        let initial = t.alpha
            && t.chars() == 1
            && t.case == Case::Title
            && !text[t.end..].starts_with(['\'', '’']);
        let next_to = (i > 0 && matched[i - 1]) || matched.get(i + 1).copied().unwrap_or(false);
        if initial && next_to && names.iter().any(|n| n.starts_with(&fold(&t.lower))) {
            found.push(Found::new(t.start, t.end, Label::Name));
        }
    }
    let values = context
        .identifiers
        .iter()
        .map(|v| (v, Label::Id))
        .chain(context.telecom.iter().map(|v| {
            (
                v,
                if v.contains('@') {
                    Label::Email
                } else {
                    Label::Phone
                },
            )
        }))
        .chain(context.addresses.iter().map(|v| (v, Label::Address)))
        .chain(context.birth_date.iter().map(|v| (v, Label::Date)));
    let index = Normalised::new(text);
    for (value, label) in values {
        index.find_all(value, label, &mut found);
        if label == Label::Address {
            for part in value
                .split([',', ' '])
                .filter(|p| p.len() >= 4 && p.chars().all(|c| c.is_ascii_digit()))
            {
                index.find_all(part, Label::Zip, &mut found);
            }
        }
    }
    found
}

fn is_ordinary(lower: &str) -> bool {
    lexicon::words(Lang::Fr).contains(lower) || lexicon::words(Lang::En).contains(lower)
}

/// Same word, a misspelling of it, or (when `abbreviated`, i.e. followed by
/// a full stop) a prefix of at least three letters.
fn similar(word: &str, name: &str, abbreviated: bool) -> bool {
    if word == name {
        return true;
    }
    let (w, n) = (word.chars().count(), name.chars().count());
    if abbreviated && w >= 3 && name.starts_with(word) {
        return true;
    }
    let allowed = match n.min(w) {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    allowed > 0 && w.abs_diff(n) <= allowed && edit_distance(word, name, allowed) <= allowed
}

/// Levenshtein distance with adjacent transpositions, cut off above `max`.
fn edit_distance(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut best = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
            best = best.min(d);
        }
        if best > max {
            return max + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The letters and digits of a text, upper case, with their byte offsets,
/// so that `06 12-34` is found as `061234`.
struct Normalised {
    chars: String,
    offsets: Vec<(usize, usize)>,
}

impl Normalised {
    fn new(text: &str) -> Self {
        let mut chars = String::new();
        let mut offsets = Vec::new();
        for (at, c) in text.char_indices() {
            if c.is_alphanumeric() {
                for f in fold(&c.to_string()).to_uppercase().chars() {
                    chars.push(f);
                    offsets.push((at, at + c.len_utf8()));
                }
            }
        }
        Self { chars, offsets }
    }

    fn find_all(&self, value: &str, label: Label, found: &mut Vec<Found>) {
        let needle: String = fold(value)
            .to_uppercase()
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
        if needle.chars().count() < 4 {
            return;
        }
        // `chars` holds one entry of `offsets` per char: map byte offsets of
        // the needle's matches to char indices.
        let starts: Vec<usize> = self.chars.char_indices().map(|(b, _)| b).collect();
        let mut from = 0;
        while let Some(pos) = self.chars[from..].find(&needle) {
            let byte = from + pos;
            let first = starts.partition_point(|&b| b < byte);
            let last = starts.partition_point(|&b| b < byte + needle.len()) - 1;
            found.push(Found::new(
                self.offsets[first].0,
                self.offsets[last].1,
                label,
            ));
            from = byte + needle.chars().next().map_or(1, char::len_utf8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str, context: &Context) -> Vec<String> {
        detect(text, &tokenize(text), context)
            .into_iter()
            .map(|f| text[f.start..f.end].to_string())
            .collect()
    }

    #[test]
    fn record_names_are_found_misspelt_abbreviated_and_without_accents() {
        let context = Context {
            names: vec!["Hélène Lefèvre-Dubois".into()],
            ..Context::default()
        };
        let found = spans(
            "HELENE LEFEVRE-DUBOIS vue, puis Mme Lefevre-Dubios et H. Lefèvre-Dubois, Lef. ",
            &context,
        );
        assert!(found.contains(&"HELENE".into()), "{found:?}");
        assert!(found.contains(&"LEFEVRE-DUBOIS".into()), "{found:?}");
        assert!(found.contains(&"Lefevre-Dubios".into()), "{found:?}");
        assert!(found.contains(&"H".into()), "{found:?}");
        assert!(found.contains(&"Lef".into()), "{found:?}");
    }

    #[test]
    fn identifiers_are_found_whatever_their_separators() {
        let context = Context {
            identifiers: vec!["8000123456".into()],
            telecom: vec!["06 12 34 56 78".into()],
            ..Context::default()
        };
        let found = spans("IPP 8000 123 456, tel 0612345678", &context);
        assert_eq!(found, ["8000 123 456", "0612345678"]);
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("dubios", "dubois", 2), 1);
        assert_eq!(edit_distance("martin", "martine", 2), 1);
        assert_eq!(edit_distance("abc", "xyz", 1), 2);
    }
}
