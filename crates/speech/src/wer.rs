//! Word error rate with the normalisation of the project's evaluation script
//! (`shared/eval/wer.py`): lower case, every character outside `[a-z0-9' ]` becomes a space,
//! `ok` -> `okay`, `alright` -> `all right`, `mm` and `hmm` dropped. Also term recall.

/// Normalised words of a transcript.
pub fn normalise(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '\'' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mapped: Vec<&str> = cleaned
        .split_whitespace()
        .map(|w| match w {
            "ok" => "okay",
            "alright" => "all right",
            "mm" | "hmm" => "",
            w => w,
        })
        .collect();
    mapped
        .join(" ")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Word errors (substitutions + deletions + insertions) and reference words.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut diag = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let next = (row[j] + 1)
                .min(row[j - 1] + 1)
                .min(diag + usize::from(r[i - 1] != h[j - 1]));
            diag = row[j];
            row[j] = next;
        }
    }
    (row[h.len()], r.len())
}

/// Whether a term (normalised, possibly several words) occurs in a transcript.
pub fn contains_term(transcript: &str, term: &str) -> bool {
    terms_in(transcript, &[term]).next().is_some()
}

/// The `terms` (normalised, possibly several words) that occur in a transcript, in order; the
/// transcript is normalised once.
pub fn terms_in<'t, T: AsRef<str>>(
    transcript: &str,
    terms: &'t [T],
) -> impl Iterator<Item = &'t T> + 't {
    let words = folded_words(transcript);
    terms.iter().filter(move |term| {
        let term = folded_words(term.as_ref());
        !term.is_empty() && words.windows(term.len()).any(|w| w == term.as_slice())
    })
}

/// Normalised words, accents and elisions (`l'oméprazole`) folded so they do not hide a term.
fn folded_words(text: &str) -> Vec<String> {
    let folded: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c == '\'' { ' ' } else { unaccented(c) })
        .collect();
    normalise(&folded)
}

/// The lower-case letter without its accent (`é` -> `e`, `ç` -> `c`); any other character
/// unchanged.
pub fn unaccented(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' => 'i',
        'ô' | 'ö' => 'o',
        'ù' | 'û' | 'ü' => 'u',
        'ÿ' => 'y',
        'ç' => 'c',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_evaluation_script() {
        assert_eq!(
            normalise("OK, it's Alright!"),
            ["okay", "it's", "all", "right"]
        );
        assert_eq!(normalise("Hmm... la dictée"), ["la", "dict", "e"]);
        assert_eq!(word_errors("one two three", "one two three"), (0, 3));
        assert_eq!(word_errors("one two three", "one too three four"), (2, 3));
        assert_eq!(word_errors("a b c", ""), (3, 3));
        assert_eq!(word_errors("", "a"), (1, 0));
    }

    #[test]
    fn terms_match_whole_normalised_words() {
        assert!(contains_term("Start Metformin, 500 mg.", "metformin"));
        assert!(contains_term(
            "insulin glargine at night",
            "Insulin Glargine"
        ));
        assert!(!contains_term("metformine", "metformin"));
        assert!(contains_term("Poursuivre l'oméprazole.", "omeprazole"));
    }
}
