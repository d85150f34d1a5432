//! The Porter (1980) suffix-stripping stemmer, as ROUGE's `use_stemmer` applies it.

/// The stem of a lower-case ASCII word (other words come back unchanged).
pub fn stem(word: &str) -> String {
    if word.len() <= 2
        || !word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return word.to_string();
    }
    let mut w = Word(word.as_bytes().to_vec());
    w.step1a();
    w.step1b();
    w.step1c();
    w.replace_first(STEP2);
    w.replace_first(STEP3);
    w.step4();
    w.step5();
    String::from_utf8(w.0).unwrap_or_else(|_| word.to_string())
}

const STEP2: &[(&str, &str)] = &[
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("abli", "able"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
];

const STEP3: &[(&str, &str)] = &[
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
];

const STEP4: &[&str] = &[
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
    "ism", "ate", "iti", "ous", "ive", "ize",
];

struct Word(Vec<u8>);

impl Word {
    fn is_consonant(&self, i: usize) -> bool {
        match self.0[i] {
            b'a' | b'e' | b'i' | b'o' | b'u' => false,
            b'y' => i == 0 || !self.is_consonant(i - 1),
            _ => true,
        }
    }

    /// Number of vowel-consonant sequences in the first `len` letters.
    fn measure(&self, len: usize) -> usize {
        let mut m = 0;
        let mut i = 0;
        while i < len && self.is_consonant(i) {
            i += 1;
        }
        while i < len {
            while i < len && !self.is_consonant(i) {
                i += 1;
            }
            if i >= len {
                break;
            }
            while i < len && self.is_consonant(i) {
                i += 1;
            }
            m += 1;
        }
        m
    }

    fn has_vowel(&self, len: usize) -> bool {
        (0..len).any(|i| !self.is_consonant(i))
    }

    fn ends_double_consonant(&self, len: usize) -> bool {
        len >= 2 && self.0[len - 1] == self.0[len - 2] && self.is_consonant(len - 1)
    }

    /// Consonant-vowel-consonant ending (the last consonant not w, x or y).
    fn ends_cvc(&self, len: usize) -> bool {
        len >= 3
            && self.is_consonant(len - 1)
            && !self.is_consonant(len - 2)
            && self.is_consonant(len - 3)
            && !matches!(self.0[len - 1], b'w' | b'x' | b'y')
    }

    fn ends_with(&self, suffix: &str) -> bool {
        self.0.ends_with(suffix.as_bytes())
    }

    fn set_suffix(&mut self, strip: usize, add: &str) {
        let keep = self.0.len() - strip;
        self.0.truncate(keep);
        self.0.extend_from_slice(add.as_bytes());
    }

    fn step1a(&mut self) {
        if self.ends_with("sses") || self.ends_with("ies") {
            self.set_suffix(2, "");
        } else if self.ends_with("s") && !self.ends_with("ss") {
            self.set_suffix(1, "");
        }
    }

    fn step1b(&mut self) {
        if self.ends_with("eed") {
            if self.measure(self.0.len() - 3) > 0 {
                self.set_suffix(1, "");
            }
            return;
        }
        let strip = if self.ends_with("ed") {
            2
        } else if self.ends_with("ing") {
            3
        } else {
            return;
        };
        if !self.has_vowel(self.0.len() - strip) {
            return;
        }
        self.set_suffix(strip, "");
        let len = self.0.len();
        if self.ends_with("at") || self.ends_with("bl") || self.ends_with("iz") {
            self.0.push(b'e');
        } else if self.ends_double_consonant(len) && !matches!(self.0[len - 1], b'l' | b's' | b'z')
        {
            self.0.pop();
        } else if self.measure(len) == 1 && self.ends_cvc(len) {
            self.0.push(b'e');
        }
    }

    fn step1c(&mut self) {
        if self.ends_with("y") && self.has_vowel(self.0.len() - 1) {
            self.set_suffix(1, "i");
        }
    }

    /// Replaces the first listed suffix the word ends with when the stem left has a vowel-
    /// consonant sequence; a matching suffix whose stem has none stops the step.
    fn replace_first(&mut self, rules: &[(&str, &str)]) {
        if let Some((suffix, replacement)) = rules.iter().find(|(s, _)| self.ends_with(s))
            && self.measure(self.0.len() - suffix.len()) > 0
        {
            self.set_suffix(suffix.len(), replacement);
        }
    }

    fn step4(&mut self) {
        let Some(suffix) = STEP4
            .iter()
            .filter(|s| self.ends_with(s))
            .max_by_key(|s| s.len())
        else {
            return;
        };
        let stem_len = self.0.len() - suffix.len();
        if *suffix == "ion" && !(stem_len > 0 && matches!(self.0[stem_len - 1], b's' | b't')) {
            return;
        }
        if self.measure(stem_len) > 1 {
            self.0.truncate(stem_len);
        }
    }

    fn step5(&mut self) {
        let len = self.0.len();
        if self.ends_with("e") {
            let m = self.measure(len - 1);
            if m > 1 || (m == 1 && !self.ends_cvc(len - 1)) {
                self.0.pop();
            }
        }
        let len = self.0.len();
        if self.ends_with("l") && self.ends_double_consonant(len) && self.measure(len) > 1 {
            self.0.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn stems_match_porters_examples() {
        for (word, expected) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("hopping", "hop"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("hopefulness", "hope"),
            ("adjustment", "adjust"),
            ("adoption", "adopt"),
            ("controll", "control"),
            ("generalization", "gener"),
            ("denies", "deni"),
            ("reports", "report"),
        ] {
            assert_eq!(stem(word), expected, "{word}");
        }
    }
}
