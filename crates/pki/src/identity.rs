//! Ed25519 signing identities and public keys.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::Error;
use crate::cert::{parse_certificate, pem_to_der};

/// An Ed25519 signing identity (the same key as the party's TLS certificate).
///
/// The private key never leaves this type except through the PKCS#8 PEM that
/// it was loaded from; `Debug` shows only the public key.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Load an identity from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) Ed25519 key,
    /// such as [`PartyCredentials::key_pem`](crate::PartyCredentials::key_pem).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| Error::PrivateKey(e.to_string()))?;
        Ok(Self { key })
    }

    /// Generate a fresh identity from 32 random bytes.
    pub(crate) fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The key as PKCS#8 PEM in RFC 8410's form (version 1, private key
    /// only), which OpenSSL, rustls and grpcio all read; keys written with
    /// the public key attached (version 2) still load.
    pub(crate) fn to_pkcs8_pem(&self) -> Result<String, Error> {
        let pem = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::PrivateKey(e.to_string()))?;
        Ok(pem.as_str().to_owned())
    }

    /// Sign `message`; the 64-byte Ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The public half, as found in the party's certificate.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A raw 32-byte Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Verify an Ed25519 `signature` of `message` (strict verification: no
    /// malleable or small-order-key signatures).
    ///
    /// Fails with [`Error::SignatureLength`] when `signature` is not 64 bytes,
    /// [`Error::InvalidPublicKey`] when the key is not a curve point and
    /// [`Error::BadSignature`] when it does not verify.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        let signature: &[u8; 64] = signature
            .try_into()
            .map_err(|_| Error::SignatureLength(signature.len()))?;
        let key = self.verifying_key()?;
        key.verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| Error::BadSignature)
    }

    /// The key as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits (either case) into a public key.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bytes =
            hex::decode(s.trim()).map_err(|e| Error::InvalidPublicKey(format!("not hex: {e}")))?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::InvalidPublicKey(format!("expected 32 bytes, got {}", bytes.len()))
        })?;
        let key = Self(bytes);
        key.verifying_key()?;
        Ok(key)
    }

    /// The Ed25519 public key of the first certificate in a PEM string.
    pub fn from_cert_pem(cert_pem: &str) -> Result<Self, Error> {
        Self::from_cert_der(&pem_to_der(cert_pem)?)
    }

    /// The Ed25519 public key of a DER certificate (from its SubjectPublicKeyInfo).
    pub fn from_cert_der(der: &[u8]) -> Result<Self, Error> {
        let cert = parse_certificate(der)?;
        Self::from_spki(cert.public_key())
    }

    /// The Ed25519 key of a parsed SubjectPublicKeyInfo.
    pub(crate) fn from_spki(
        spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    ) -> Result<Self, Error> {
        let oid = &spki.algorithm.algorithm;
        if *oid != x509_parser::oid_registry::OID_SIG_ED25519 {
            return Err(Error::NotEd25519(oid.to_id_string()));
        }
        let bytes: [u8; 32] = spki
            .subject_public_key
            .data
            .as_ref()
            .try_into()
            .map_err(|_| {
                Error::InvalidPublicKey(format!(
                    "expected 32 bytes, got {}",
                    spki.subject_public_key.data.len()
                ))
            })?;
        let key = Self(bytes);
        key.verifying_key()?;
        Ok(key)
    }

    fn verifying_key(&self) -> Result<VerifyingKey, Error> {
        VerifyingKey::from_bytes(&self.0)
            .map_err(|_| Error::InvalidPublicKey("not a valid curve point".to_owned()))
    }
}

impl fmt::Display for PublicKey {
    /// The lower-case hex form, as [`PublicKey::to_hex`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
