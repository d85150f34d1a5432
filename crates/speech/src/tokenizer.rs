//! Whisper's byte-level BPE: decoding through the id -> bytes map, encoding (for prompts) by
//! GPT-2 pre-tokenisation and merges applied in rank order, read from the `tokenizer.json` the
//! model packages ship. Special token ids come from the same file.

use crate::{Error, Result};
use std::collections::HashMap;

/// GPT-2's reversible byte <-> printable character map.
fn byte_chars() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        map[b as usize] = if printable {
            b as char
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("valid code point")
        };
    }
    map
}

/// Special token ids of a Whisper vocabulary.
#[derive(Debug, Clone)]
pub struct Special {
    /// `<|endoftext|>`.
    pub eot: u32,
    /// `<|startoftranscript|>`.
    pub sot: u32,
    /// `<|startofprev|>`, which opens a prompt.
    pub sot_prev: u32,
    /// `<|nospeech|>` (or `<|nocaptions|>`), whose probability flags silence.
    pub no_speech: u32,
    /// `<|notimestamps|>`; the timestamp tokens follow it.
    pub no_timestamps: u32,
    /// `<|transcribe|>`.
    pub transcribe: u32,
    /// `<|0.00|>`, the first timestamp token.
    pub timestamp_begin: u32,
}

/// Byte-level BPE tokenizer.
pub struct Tokenizer {
    tokens: Vec<Vec<u8>>,
    ids: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    added: HashMap<String, u32>,
    chars: [char; 256],
    /// The special tokens.
    pub special: Special,
}

#[derive(serde::Deserialize)]
struct TokenizerJson {
    model: BpeJson,
    added_tokens: Vec<AddedToken>,
}

#[derive(serde::Deserialize)]
struct BpeJson {
    vocab: HashMap<String, u32>,
    merges: Vec<Merge>,
}

/// Merges are "a b" strings in older files, ["a", "b"] pairs in newer ones.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Merge {
    Joined(String),
    Pair(String, String),
}

#[derive(serde::Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
}

impl Tokenizer {
    /// The text tokens of `tokens` (timestamps and other special tokens left out).
    pub fn text_tokens(&self, tokens: &[u32]) -> Vec<u32> {
        tokens
            .iter()
            .copied()
            .filter(|&t| t < self.special.eot)
            .collect()
    }

    /// Reads a Hugging Face `tokenizer.json` of a Whisper model.
    pub fn from_json(json: &str) -> Result<Tokenizer> {
        let file: TokenizerJson =
            serde_json::from_str(json).map_err(|e| Error::Model(format!("tokenizer.json: {e}")))?;
        let chars = byte_chars();
        let unchar: HashMap<char, u8> = chars
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let added: HashMap<String, u32> = file
            .added_tokens
            .iter()
            .map(|t| (t.content.clone(), t.id))
            .collect();
        let size = file
            .model
            .vocab
            .values()
            .chain(added.values())
            .max()
            .map_or(0, |&m| m as usize + 1);
        let mut tokens = vec![Vec::new(); size];
        for (text, &id) in &file.model.vocab {
            tokens[id as usize] = text
                .chars()
                .map(|c| unchar.get(&c).copied().unwrap_or(b'?'))
                .collect();
        }
        let ranks = file
            .model
            .merges
            .into_iter()
            .enumerate()
            .filter_map(|(rank, m)| match m {
                Merge::Pair(a, b) => Some(((a, b), rank)),
                Merge::Joined(s) => s
                    .split_once(' ')
                    .map(|(a, b)| ((a.to_string(), b.to_string()), rank)),
            })
            .collect();
        let find = |names: &[&str]| -> Result<u32> {
            names
                .iter()
                .find_map(|n| added.get(*n).copied())
                .ok_or_else(|| {
                    Error::Model(format!(
                        "tokenizer.json: special token {} missing",
                        names[0]
                    ))
                })
        };
        let no_timestamps = find(&["<|notimestamps|>"])?;
        let special = Special {
            eot: find(&["<|endoftext|>"])?,
            sot: find(&["<|startoftranscript|>"])?,
            sot_prev: find(&["<|startofprev|>"])?,
            no_speech: find(&["<|nospeech|>", "<|nocaptions|>"])?,
            transcribe: find(&["<|transcribe|>"])?,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
        };
        Ok(Tokenizer {
            tokens,
            ids: file.model.vocab,
            ranks,
            added,
            chars,
            special,
        })
    }

    /// The id of a language token such as `<|fr|>`, if the model knows the language.
    pub fn language(&self, code: &str) -> Option<u32> {
        self.added.get(&format!("<|{code}|>")).copied()
    }

    /// Decodes text tokens (special and timestamp tokens are skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&id| id < self.special.eot)
            .flat_map(|&id| self.tokens.get(id as usize).cloned().unwrap_or_default())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The bytes of one token (empty for special tokens).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.tokens.get(id as usize).map_or(&[], |t| t.as_slice())
    }

    /// Encodes text (no special tokens) with GPT-2 pre-tokenisation and the BPE merges.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        pretokenize(text)
            .into_iter()
            .flat_map(|word| self.bpe(word))
            .collect()
    }

    fn bpe(&self, word: &str) -> Vec<u32> {
        let mut parts: Vec<String> = word
            .bytes()
            .map(|b| self.chars[b as usize].to_string())
            .collect();
        loop {
            let best = parts
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| {
                    self.ranks
                        .get(&(w[0].clone(), w[1].clone()))
                        .map(|&r| (r, i))
                })
                .min();
            let Some((_, i)) = best else { break };
            let merged = format!("{}{}", parts[i], parts[i + 1]);
            parts.splice(i..i + 2, [merged]);
        }
        parts
            .iter()
            .flat_map(|p| match self.ids.get(p) {
                Some(&id) => vec![id],
                // Unreachable with a complete byte vocabulary; fall back to single bytes.
                None => p
                    .chars()
                    .filter_map(|c| self.ids.get(&c.to_string()).copied())
                    .collect(),
            })
            .collect()
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Letter,
    Digit,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Digit
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// GPT-2 pre-tokenisation: contractions, ` ?letters`, ` ?digits`, ` ?other`, whitespace runs
/// (the last space of a run goes with the following word).
fn pretokenize(text: &str) -> Vec<&str> {
    let idx: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| idx.get(i).map_or(text.len(), |&(b, _)| b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let rest = &text[at(i)..];
        if let Some(c) = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
            .iter()
            .find(|c| rest.starts_with(**c))
        {
            out.push(&rest[..c.len()]);
            i += c.chars().count();
            continue;
        }
        let start = i;
        let (c, next) = (idx[i].1, idx.get(i + 1).map(|p| p.1));
        if c == ' ' && next.is_some_and(|n| class(n) != Class::Space) {
            i += 1;
        }
        let k = class(idx[i].1);
        if k == Class::Space {
            let mut j = i;
            while j < idx.len() && class(idx[j].1) == Class::Space {
                j += 1;
            }
            // Leave the run's last whitespace to the following word.
            if j < idx.len() && j - i > 1 {
                j -= 1;
            }
            out.push(&text[at(i)..at(j)]);
            i = j;
            continue;
        }
        i += 1;
        while i < idx.len() && class(idx[i].1) == k {
            i += 1;
        }
        out.push(&text[at(start)..at(i)]);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small tokenizer.json: bytes as base tokens, a few merges, Whisper's special tokens.
    pub(crate) fn tiny_tokenizer_json() -> String {
        let chars = byte_chars();
        let mut vocab: Vec<(String, u32)> = chars
            .iter()
            .enumerate()
            .map(|(b, c)| (c.to_string(), b as u32))
            .collect();
        let merges = [
            ("Ġ", "m"),
            ("e", "t"),
            ("Ġm", "et"),
            ("f", "or"),
            ("o", "r"),
            ("Ġmet", "for"),
        ];
        for (i, (a, b)) in merges.iter().enumerate() {
            vocab.push((format!("{a}{b}"), 256 + i as u32));
        }
        let n = vocab.len() as u32;
        let specials = [
            "<|endoftext|>",
            "<|startoftranscript|>",
            "<|en|>",
            "<|fr|>",
            "<|translate|>",
            "<|transcribe|>",
            "<|startoflm|>",
            "<|startofprev|>",
            "<|nospeech|>",
            "<|notimestamps|>",
        ];
        serde_json::json!({
            "model": {"vocab": vocab.into_iter().collect::<HashMap<_, _>>(), "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()},
            "added_tokens": specials.iter().enumerate().map(|(i, s)| serde_json::json!({"id": n + i as u32, "content": s})).collect::<Vec<_>>(),
        })
        .to_string()
    }

    #[test]
    fn byte_map_is_a_bijection_onto_printable_chars() {
        let chars = byte_chars();
        let set: std::collections::HashSet<char> = chars.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(chars[b' ' as usize], 'Ġ');
        assert_eq!(chars[b'a' as usize], 'a');
        assert_eq!(chars[b'\n' as usize], 'Ċ');
    }

    #[test]
    fn pretokenisation_follows_gpt2() {
        assert_eq!(
            pretokenize("I'll take 20 mg, twice."),
            ["I", "'ll", " take", " 20", " mg", ",", " twice", "."]
        );
        assert_eq!(pretokenize("a  b\n"), ["a", " ", " b", "\n"]);
        assert_eq!(pretokenize("é è"), ["é", " è"]);
    }

    #[test]
    fn encodes_with_merges_and_round_trips_utf8() {
        let tok = Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
        let ids = tok.encode(" metformin");
        assert_eq!(tok.decode(&ids), " metformin");
        // " met" + "for" merged, then "m", "i", "n".
        assert_eq!(ids[0], 256 + 5);
        assert_eq!(ids.len(), 4);
        let text = "Dictée: œdème, 5 mg";
        assert_eq!(tok.decode(&tok.encode(text)), text);
        let sp = &tok.special;
        assert_eq!((sp.eot, sp.timestamp_begin), (262, 272));
        assert_eq!(
            tok.decode(&[sp.sot, ids[0], sp.timestamp_begin + 3]),
            " metfor"
        );
        assert_eq!(tok.language("fr"), Some(265));
    }
}
