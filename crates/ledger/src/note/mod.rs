//! C2SP signed notes: a text followed by a blank line and signature lines
//! `— <key name> base64(key ID || signature)`.

mod key;

pub use key::{COSIGNATURE_V1, ED25519, NoteKey, key_id};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Most signature lines accepted in one note (the specification asks for at
/// least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Why a note could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not UTF-8.
    #[error("note is not UTF-8")]
    NotUtf8,
    /// An ASCII control character other than newline.
    #[error("note contains a control character")]
    ControlCharacter,
    /// No blank line separates text and signatures, or no signature follows.
    #[error("note has no signature block")]
    NoSignatures,
    /// The text is empty or does not end with a newline.
    #[error("note text must be non-empty and end with a newline")]
    BadText,
    /// A signature line that does not follow the format.
    #[error("malformed signature line {0:?}")]
    MalformedSignature(String),
    /// More signatures than accepted.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A key name that is empty or holds a space or `+`.
    #[error("invalid key name {0:?}")]
    KeyName(String),
    /// A verifier key string (`name+id+base64`) that does not parse.
    #[error("malformed verifier key {0:?}")]
    VerifierKey(String),
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature by the key `name`/`key_id`.
    pub fn new(name: &str, key_id: u32, signature: Vec<u8>) -> Result<Self, NoteError> {
        if !key::is_valid_key_name(name) {
            return Err(NoteError::KeyName(name.to_string()));
        }
        Ok(Self {
            name: name.to_string(),
            key_id,
            signature,
        })
    }

    /// Parse one line, with or without its final newline.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let malformed = || NoteError::MalformedSignature(line.to_string());
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(malformed)?;
        let (name, b64) = rest.split_once(' ').ok_or_else(malformed)?;
        let raw = STANDARD.decode(b64).map_err(|_| malformed())?;
        if raw.len() < 5 || !key::is_valid_key_name(name) {
            return Err(malformed());
        }
        let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        Ok(Self {
            name: name.to_string(),
            key_id,
            signature: raw[4..].to_vec(),
        })
    }

    /// The signing key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signing key's ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes (after the key ID).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line, with its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with `text` (which must end with a newline) and no signature yet.
    pub fn new(text: &str) -> Result<Self, NoteError> {
        check_chars(text)?;
        if text.is_empty() || !text.ends_with('\n') {
            return Err(NoteError::BadText);
        }
        Ok(Self {
            text: text.to_string(),
            signatures: Vec::new(),
        })
    }

    /// Parse a signed note (at least one signature line).
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let all = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_chars(all)?;
        let split = all.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
        let mut note = Self::new(&all[..=split])?;
        let block = &all[split + 2..];
        if block.is_empty() || !block.ends_with('\n') {
            return Err(NoteError::NoSignatures);
        }
        for line in block.split_terminator('\n') {
            if note.signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            note.signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(note)
    }

    /// The signed text (with its final newline).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Add a signature, replacing one by the same key.
    pub fn add_signature(&mut self, signature: NoteSignature) {
        self.signatures
            .retain(|s| !(s.name == signature.name && s.key_id == signature.key_id));
        self.signatures.push(signature);
    }

    /// The note as published: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out.into_bytes()
    }
}

fn check_chars(text: &str) -> Result<(), NoteError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}
