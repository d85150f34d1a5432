//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the federation's PKI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A party or federation name does not follow the naming rules.
    #[error(
        "invalid {kind} name {name:?}: {reason} (names are 1 to 63 characters of a-z, 0-9 and '-', \
         not starting or ending with '-', with at least one letter)"
    )]
    InvalidName {
        /// What the name was for ("party" or "federation").
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A certificate validity of zero days was requested.
    #[error("certificate validity must be at least one day")]
    ZeroValidity,
    /// rcgen could not build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A private key could not be encoded or decoded as Ed25519 PKCS#8.
    #[error("invalid Ed25519 private key: {0}")]
    PrivateKey(String),
    /// The PEM input holds no `CERTIFICATE` block.
    #[error("no CERTIFICATE block found in PEM input")]
    NoCertificatePem,
    /// The PEM input is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// A certificate's DER could not be parsed.
    #[error("malformed certificate: {0}")]
    Certificate(String),
    /// A certificate carries a key of another algorithm than Ed25519.
    #[error("certificate key is not Ed25519 (algorithm OID {0})")]
    NotEd25519(String),
    /// The certificate given as a CA certificate is not marked as a CA.
    #[error("certificate is not a CA certificate (basicConstraints CA flag missing)")]
    NotCa,
    /// A private key does not belong to the certificate it was paired with.
    #[error("private key does not match the certificate's public key")]
    KeyMismatch,
    /// A certificate does not chain to the expected CA.
    #[error("certificate was not issued by the expected CA: {0}")]
    NotIssuedBy(String),
    /// Bytes that are not a valid Ed25519 public key.
    #[error("invalid Ed25519 public key: {0}")]
    InvalidPublicKey(String),
    /// A signature of the wrong length.
    #[error("Ed25519 signature must be 64 bytes, got {0}")]
    SignatureLength(usize),
    /// A well-formed signature that does not verify.
    #[error("Ed25519 signature verification failed")]
    BadSignature,
    /// A file or directory operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was attempted ("read", "write", "create directory").
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `CertificateAuthority::save` found an existing CA key.
    #[error("refusing to overwrite existing CA key {}", .path.display())]
    KeyExists {
        /// The existing key file.
        path: PathBuf,
    },
}
