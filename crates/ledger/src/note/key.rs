//! Note keys: key IDs, verifier keys (`name+hexid+base64(type || key)`), and
//! the two signature types the log uses: Ed25519 (`0x01`, the log's own
//! signature) and timestamped Ed25519 cosignatures (`0x04`, C2SP
//! tlog-cosignature `cosignature/v1`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use super::{NoteError, NoteSignature};
use crate::entry::PublicKey;

/// Signature type of plain Ed25519 note signatures.
pub const ED25519: u8 = 0x01;

/// Signature type of Ed25519 witness cosignatures (`cosignature/v1`).
pub const COSIGNATURE_V1: u8 = 0x04;

/// `SHA-256(name || "\n" || type || public key)[:4]`, big-endian.
pub fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', signature_type]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Key names are non-empty, without Unicode spaces or `+`.
pub(crate) fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The message of a `cosignature/v1` cosignature over a checkpoint text.
fn cosigned_message(timestamp: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A key that verifies note signatures of one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteKey {
    name: String,
    signature_type: u8,
    key: PublicKey,
}

impl NoteKey {
    /// An Ed25519 (type `0x01`) key.
    pub fn ed25519(name: &str, key: PublicKey) -> Result<Self, NoteError> {
        Self::new(name, ED25519, key)
    }

    /// An Ed25519 cosigner (type `0x04`) key.
    pub fn cosigner(name: &str, key: PublicKey) -> Result<Self, NoteError> {
        Self::new(name, COSIGNATURE_V1, key)
    }

    fn new(name: &str, signature_type: u8, key: PublicKey) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::KeyName(name.to_string()));
        }
        Ok(Self {
            name: name.to_string(),
            signature_type,
            key,
        })
    }

    /// Parse a verifier key `name+hexid+base64(type || key)` of type `0x01`
    /// or `0x04`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let bad = || NoteError::VerifierKey(vkey.to_string());
        let mut parts = vkey.split('+');
        let (Some(name), Some(id), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let raw = STANDARD.decode(b64).map_err(|_| bad())?;
        let (signature_type, key_bytes) = raw.split_first().ok_or_else(bad)?;
        let key_bytes: [u8; 32] = key_bytes.try_into().map_err(|_| bad())?;
        if *signature_type != ED25519 && *signature_type != COSIGNATURE_V1 {
            return Err(bad());
        }
        let key = Self::new(
            name,
            *signature_type,
            PublicKey::from_bytes(&key_bytes).map_err(|_| bad())?,
        )?;
        if id.len() != 8 || format!("{:08x}", key.key_id()) != id {
            return Err(bad());
        }
        Ok(key)
    }

    /// The verifier key string.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.signature_type];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id(),
            STANDARD.encode(raw)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, self.signature_type, &self.key.to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Whether a signature line claims to be by this key (name and ID).
    pub fn matches(&self, signature: &NoteSignature) -> bool {
        signature.name() == self.name && signature.key_id() == self.key_id()
    }

    /// Whether a signature line by this key verifies over `text`. For a
    /// cosignature, also returns its timestamp.
    pub fn verify(&self, text: &str, signature: &NoteSignature) -> Option<u64> {
        if !self.matches(signature) {
            return None;
        }
        let raw = signature.signature();
        match self.signature_type {
            ED25519 => {
                let sig: [u8; 64] = raw.try_into().ok()?;
                self.key.verify(text.as_bytes(), &sig).then_some(0)
            }
            _ => {
                let (ts, sig) = raw.split_first_chunk::<8>()?;
                let sig: [u8; 64] = sig.try_into().ok()?;
                let timestamp = u64::from_be_bytes(*ts);
                if timestamp > i64::MAX as u64 {
                    return None;
                }
                self.key
                    .verify(&cosigned_message(timestamp, text), &sig)
                    .then_some(timestamp)
            }
        }
    }

    /// Sign `text` as this key (type `0x01`) with its private half.
    pub fn sign(&self, private: &SigningKey, text: &str) -> NoteSignature {
        let signature = private.sign(text.as_bytes()).to_bytes().to_vec();
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id(),
            signature,
        }
    }

    /// Cosign `text` at `timestamp` as this key (type `0x04`).
    pub fn cosign(&self, private: &SigningKey, text: &str, timestamp: u64) -> NoteSignature {
        let sig = private.sign(&cosigned_message(timestamp, text));
        let mut signature = timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&sig.to_bytes());
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id(),
            signature,
        }
    }
}
