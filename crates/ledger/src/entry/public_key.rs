//! Ed25519 public keys as entries and the policy file carry them.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

use super::error::ValueError;

/// An Ed25519 public key that is a valid, non-weak curve point. Written as 64
/// hexadecimal digits (as `cohort ca issue` prints identities).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Admit a 32-byte key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ValueError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| ValueError::PublicKey)?;
        if key.is_weak() {
            return Err(ValueError::PublicKey);
        }
        Ok(Self(key))
    }

    /// Parse 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, ValueError> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ValueError::PublicKey)?;
        Self::from_bytes(&bytes)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The dalek key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// Strict Ed25519 verification (RFC 8032 with canonical encodings).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl From<VerifyingKey> for PublicKey {
    /// Wrap a dalek key (the caller vouches that it is not weak, e.g. because
    /// it was derived from a signing key).
    fn from(key: VerifyingKey) -> Self {
        Self(key)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
