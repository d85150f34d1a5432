//! Vocabulary from the patient's record (medications, problems, allergies) and the hospital's
//! formulary, used two ways: as Whisper's prompt (the decoder reads it as preceding text) and as
//! a logit bonus for the next token of a vocabulary word whose first tokens were just sampled.

use crate::tokenizer::Tokenizer;

/// Bonus added to the logit of a token that continues a vocabulary word.
pub const DEFAULT_BONUS: f32 = 4.0;

/// Terms and their token sequences.
pub struct Bias {
    sequences: Vec<Vec<u32>>,
    bonus: f32,
}

impl Bias {
    /// Tokenises each term as a word (leading space), as written and capitalised.
    pub fn new(tok: &Tokenizer, terms: &[String], bonus: f32) -> Bias {
        let mut sequences: Vec<Vec<u32>> = terms
            .iter()
            .flat_map(|t| {
                let t = t.trim();
                let mut cap = t.to_string();
                if let Some(first) = t.chars().next() {
                    cap = first.to_uppercase().chain(t.chars().skip(1)).collect();
                }
                [
                    format!(" {t}"),
                    format!(" {cap}"),
                    format!(" {}", t.to_lowercase()),
                ]
            })
            .map(|w| tok.encode(&w))
            .filter(|s| s.len() > 1)
            .collect();
        sequences.sort();
        sequences.dedup();
        Bias { sequences, bonus }
    }

    /// Adds the bonus to every token that continues a term whose first tokens end `text`.
    pub fn apply(&self, text: &[u32], logits: &mut [f32]) {
        for seq in &self.sequences {
            for k in 1..seq.len().min(text.len() + 1) {
                if text.ends_with(&seq[..k])
                    && let Some(l) = logits.get_mut(seq[k] as usize)
                {
                    *l += self.bonus;
                }
            }
        }
    }
}

/// The prompt text naming the record's terms, in the language of the dictation.
pub fn prompt_text(terms: &[String], language: &str) -> String {
    if terms.is_empty() {
        return String::new();
    }
    let head = if language == "fr" {
        "Traitements et antécédents :"
    } else {
        "Medications and history:"
    };
    format!("{head} {}.", terms.join(", "))
}

/// Terms from a text file: one per line, `#` comments and blank lines ignored.
pub fn terms_from_text(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    terms.dedup();
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::tiny_tokenizer_json;

    #[test]
    fn bonus_goes_to_the_continuation_of_a_started_term_only() {
        let tok = Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
        let bias = Bias::new(&tok, &["metformin".to_string()], 2.0);
        let seq = tok.encode(" metformin");
        let mut logits = vec![0.0f32; 400];
        bias.apply(&[], &mut logits);
        assert!(
            logits.iter().all(|&l| l == 0.0),
            "nothing before the term starts"
        );
        bias.apply(&[7, seq[0]], &mut logits);
        assert_eq!(logits[seq[1] as usize], 2.0);
        assert_eq!(logits.iter().filter(|&&l| l != 0.0).count(), 1);
    }

    #[test]
    fn prompts_and_term_files() {
        let terms = terms_from_text("# record\nmetformin\n\nlisinopril\n");
        assert_eq!(terms, ["metformin", "lisinopril"]);
        assert_eq!(
            prompt_text(&terms, "en"),
            "Medications and history: metformin, lisinopril."
        );
        assert!(prompt_text(&terms, "fr").starts_with("Traitements"));
        assert_eq!(prompt_text(&[], "en"), "");
    }
}
