//! Words of a note with their byte offsets and shape.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case without accents (`Hôpital` -> `hopital`, `Œ` -> `oe`).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'œ' | 'Œ' => out.push_str("oe"),
            'æ' | 'Æ' => out.push_str("ae"),
            'ß' => out.push_str("ss"),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// How a word is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// All letters upper case (`DUPONT`), two letters or more.
    Upper,
    /// First letter upper, the rest lower (`Dupont`, `McDonald`, `Jean-Luc`).
    Title,
    /// All letters lower case.
    Lower,
    /// Digits, or letters and digits.
    Other,
}

/// A run of letters (with inner hyphens or apostrophes between letters) or of digits.
#[derive(Debug, Clone)]
pub struct Token {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset past the last character.
    pub end: usize,
    /// Lower-cased text.
    pub lower: String,
    /// Case shape.
    pub case: Case,
    /// Only letters (and inner hyphens or apostrophes).
    pub alpha: bool,
}

impl Token {
    /// Number of characters.
    pub fn chars(&self) -> usize {
        self.lower.chars().count()
    }

    /// Capitalised or all capitals.
    pub fn capitalised(&self) -> bool {
        matches!(self.case, Case::Upper | Case::Title)
    }
}

/// Split `text` into words. Hyphens join letters (`Jean-Luc`); an apostrophe
/// after a French elided word (`l'`, `d'`, `qu'`) ends it, so `l'Hôpital`
/// gives `l` and `Hôpital`; other inner apostrophes join (`O'Brien`).
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_alphanumeric() {
            continue;
        }
        let alpha = c.is_alphabetic();
        let mut end = start + c.len_utf8();
        while let Some(&(i, d)) = chars.peek() {
            let same = if alpha {
                d.is_alphabetic()
            } else {
                d.is_ascii_digit()
            };
            if same {
                end = i + d.len_utf8();
                chars.next();
                continue;
            }
            if alpha && matches!(d, '-' | '\'' | '’') {
                let next = text[i + d.len_utf8()..].chars().next();
                let elision = d != '-' && is_elided(&text[start..i]);
                if next.is_some_and(char::is_alphabetic) && !elision {
                    end = i + d.len_utf8();
                    chars.next();
                    continue;
                }
            }
            break;
        }
        let word = &text[start..end];
        tokens.push(Token {
            start,
            end,
            lower: word.to_lowercase(),
            case: case_of(word),
            alpha,
        });
    }
    tokens
}

/// French elided words (`l'`, `qu'`...), lower case.
fn is_elided(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "l" | "d" | "j" | "n" | "s" | "m" | "t" | "c" | "qu" | "jusqu" | "lorsqu" | "puisqu"
    )
}

/// How `word` is written.
pub(super) fn case_of(word: &str) -> Case {
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() || letters.len() != word.chars().filter(|c| c.is_alphanumeric()).count() {
        return Case::Other;
    }
    if letters.iter().all(|c| c.is_uppercase()) {
        return if letters.len() > 1 {
            Case::Upper
        } else {
            Case::Title
        };
    }
    // `Dupont`, `Jean-Luc`, `O'Brien`, `McDonald`, `Mccormick`; not `MyO`, `AZFa`, `ANCA's`.
    let capital_then_lower = |part: &str| {
        let mut cs = part.chars();
        cs.next().is_some_and(char::is_uppercase) && cs.all(char::is_lowercase)
    };
    let title = word.split(['-', '\'', '’']).all(|part| {
        capital_then_lower(part)
            || ["Mc", "Mac"]
                .iter()
                .any(|p| part.strip_prefix(p).is_some_and(capital_then_lower))
    });
    if title {
        return Case::Title;
    }
    if letters.iter().all(|c| c.is_lowercase()) {
        Case::Lower
    } else {
        Case::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_elision_and_keep_hyphenated_names() {
        let t = tokenize("l'Hôpital Jean-Luc O'Brien 12/03");
        let words: Vec<&str> = t.iter().map(|t| t.lower.as_str()).collect();
        assert_eq!(words, ["l", "hôpital", "jean-luc", "o'brien", "12", "03"]);
        assert_eq!(t[1].case, Case::Title);
        for name in ["McDonald", "Mccormick", "Macron", "MacLeod"] {
            assert_eq!(case_of(name), Case::Title, "{name}");
        }
        assert_eq!(case_of("ANCA's"), Case::Other);
    }

    #[test]
    fn folding_drops_accents_and_ligatures() {
        assert_eq!(fold("ŒDÈME Hôpital"), "oedeme hopital");
    }
}
