//! The parties the coordinator knows: each hospital by the fingerprint of its
//! certificate, with the Ed25519 key that signs its updates.

use std::collections::{HashMap, HashSet};

use pki::PublicKey;

/// A known hospital.
#[derive(Clone, Debug)]
pub struct Party {
    /// Its party name (the certificate's common name).
    pub name: String,
    /// The key in its certificate, which signs its updates.
    pub public_key: PublicKey,
}

/// Why a caller was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refusal {
    /// No client certificate reached the service.
    #[error("no client certificate: connect with mutual TLS")]
    NoCertificate,
    /// The certificate was revoked.
    #[error("certificate {0} has been revoked")]
    Revoked(String),
    /// The certificate is valid but not enrolled in this federation.
    #[error("certificate {0} is not enrolled in this federation")]
    Unknown(String),
}

/// Enrolled hospitals and revoked certificates.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    by_fingerprint: HashMap<String, Party>,
    revoked: HashSet<String>,
}

/// Errors building the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A certificate could not be read.
    #[error("certificate of {party}: {source}")]
    Certificate {
        /// The hospital.
        party: String,
        /// What is wrong.
        source: pki::Error,
    },
    /// Two entries share a name.
    #[error("hospital {0} is enrolled twice")]
    Duplicate(String),
}

impl Registry {
    /// Enrol a hospital by name and certificate (PEM).
    pub fn enrol(&mut self, name: &str, cert_pem: &str) -> Result<(), RegistryError> {
        let cert_err = |source| RegistryError::Certificate {
            party: name.to_string(),
            source,
        };
        if self.by_fingerprint.values().any(|p| p.name == name) {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        let der = pki::pem_to_der(cert_pem).map_err(cert_err)?;
        let public_key = PublicKey::from_cert_der(&der).map_err(cert_err)?;
        self.by_fingerprint.insert(
            pki::fingerprint_der(&der),
            Party {
                name: name.to_string(),
                public_key,
            },
        );
        Ok(())
    }

    /// Refuse a certificate from now on (by fingerprint, lower-case hex).
    pub fn revoke(&mut self, fingerprint: &str) {
        self.revoked.insert(fingerprint.to_ascii_lowercase());
    }

    /// The party behind a client certificate fingerprint.
    pub fn identify(&self, fingerprint: Option<&str>) -> Result<&Party, Refusal> {
        let fingerprint = fingerprint.ok_or(Refusal::NoCertificate)?;
        if self.revoked.contains(fingerprint) {
            return Err(Refusal::Revoked(fingerprint.to_string()));
        }
        self.by_fingerprint
            .get(fingerprint)
            .ok_or_else(|| Refusal::Unknown(fingerprint.to_string()))
    }

    /// The enrolled hospitals, sorted by name.
    pub fn parties(&self) -> Vec<&Party> {
        let mut parties: Vec<&Party> = self.by_fingerprint.values().collect();
        parties.sort_by(|a, b| a.name.cmp(&b.name));
        parties
    }
}
