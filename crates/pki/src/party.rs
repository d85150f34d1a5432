//! A party's issued credentials.

use std::fmt;
use std::path::Path;

use crate::ca::CA_CERT_FILE;
use crate::cert::{fingerprint_der, pem_to_der, verify_issued_by};
use crate::files::{self, Mode};
use crate::identity::{Identity, PublicKey};
use crate::{Error, validate_party_name};

/// A party's certificate, private key and the CA certificate it chains to:
/// everything it needs for mutual TLS and for signing its contributions.
///
/// `Debug` leaves out the private key.
#[derive(Clone)]
pub struct PartyCredentials {
    /// The party's name (certificate CN and DNS subjectAltName).
    pub party: String,
    /// The party's certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 PEM of the party's Ed25519 key (TLS key and signing key).
    pub key_pem: String,
    /// The federation CA's certificate, PEM.
    pub ca_cert_pem: String,
}

impl PartyCredentials {
    /// Write `<dir>/<party>.crt`, `<dir>/<party>.key` (mode 0600 on unix) and
    /// `<dir>/ca.crt` if absent, creating `dir` if missing. Existing party
    /// files are replaced (re-issuing rotates them).
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        validate_party_name(&self.party)?;
        files::create_dir(dir)?;
        files::write(&cert_path(dir, &self.party), &self.cert_pem, Mode::Public)?;
        files::write(&key_path(dir, &self.party), &self.key_pem, Mode::Private)?;
        let ca_path = dir.join(CA_CERT_FILE);
        if !ca_path.exists() {
            files::write(&ca_path, &self.ca_cert_pem, Mode::Public)?;
        }
        Ok(())
    }

    /// Load `<party>.crt`, `<party>.key` and `ca.crt` from `dir`.
    ///
    /// Fails with [`Error::KeyMismatch`] if the key does not belong to the
    /// certificate and [`Error::NotIssuedBy`] if the certificate was not
    /// signed by the CA in `ca.crt`.
    pub fn load(dir: &Path, party: &str) -> Result<Self, Error> {
        validate_party_name(party)?;
        let credentials = Self {
            party: party.to_owned(),
            cert_pem: files::read(&cert_path(dir, party))?,
            key_pem: files::read(&key_path(dir, party))?,
            ca_cert_pem: files::read(&dir.join(CA_CERT_FILE))?,
        };
        if credentials.identity()?.public_key() != PublicKey::from_cert_pem(&credentials.cert_pem)?
        {
            return Err(Error::KeyMismatch);
        }
        verify_issued_by(&credentials.cert_pem, &credentials.ca_cert_pem)?;
        Ok(credentials)
    }

    /// The party's signing identity (the key of its certificate).
    pub fn identity(&self) -> Result<Identity, Error> {
        Identity::from_pkcs8_pem(&self.key_pem)
    }

    /// Lower-case hex SHA-256 of the certificate's DER bytes (how the
    /// coordinator pins a known party).
    pub fn cert_fingerprint(&self) -> Result<String, Error> {
        Ok(fingerprint_der(&pem_to_der(&self.cert_pem)?))
    }
}

impl fmt::Debug for PartyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartyCredentials")
            .field("party", &self.party)
            .field("cert_pem", &self.cert_pem)
            .field("ca_cert_pem", &self.ca_cert_pem)
            .finish_non_exhaustive()
    }
}

fn cert_path(dir: &Path, party: &str) -> std::path::PathBuf {
    dir.join(format!("{party}.crt"))
}

fn key_path(dir: &Path, party: &str) -> std::path::PathBuf {
    dir.join(format!("{party}.key"))
}
