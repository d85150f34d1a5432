//! The federation's certificate authority and each party's Ed25519 identity.
//!
//! Every party of a cohort federation (the coordinator and each hospital node)
//! holds **one** Ed25519 key pair. It is both
//!
//! * its TLS key: the [`CertificateAuthority`] signs a certificate for it, and
//!   parties authenticate each other with mutual TLS against the CA; and
//! * its signing [`Identity`]: it signs its contributions, which anyone can
//!   check with the [`PublicKey`] taken from its certificate.
//!
//! Party certificates carry the party name as CN and DNS subjectAltName, plus
//! `localhost` and `127.0.0.1` for loopback deployments, and allow both server
//! and client authentication. Party names are DNS labels: 1 to 63 characters
//! of `a-z`, `0-9` and `-` (see [`validate_party_name`]).
//!
//! # Example
//!
//! ```
//! use pki::{CertificateAuthority, PublicKey};
//!
//! # fn main() -> Result<(), pki::Error> {
//! let ca = CertificateAuthority::generate("midwest")?;
//! let cleveland = ca.issue("cleveland")?;
//!
//! // The node signs an update with the key of its TLS certificate...
//! let signature = cleveland.identity()?.sign(b"round 3 update");
//!
//! // ...and the coordinator checks it against the key in that certificate.
//! let public_key = PublicKey::from_cert_pem(&cleveland.cert_pem)?;
//! public_key.verify(b"round 3 update", &signature)?;
//! assert!(public_key.verify(b"round 4 update", &signature).is_err());
//!
//! // The certificate chains to the federation CA.
//! pki::verify_issued_by(&cleveland.cert_pem, ca.cert_pem())?;
//!
//! // On disk: ca.crt/ca.key for the CA, <party>.crt/.key and ca.crt for a party.
//! let dir = std::env::temp_dir().join(format!("pki-doc-{}", std::process::id()));
//! cleveland.save(&dir)?;
//! let loaded = pki::PartyCredentials::load(&dir, "cleveland")?;
//! assert_eq!(loaded.cert_fingerprint()?, cleveland.cert_fingerprint()?);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! ```

mod ca;
mod cert;
mod error;
mod files;
mod identity;
mod name;
mod party;

pub use ca::{CertificateAuthority, DEFAULT_VALIDITY_DAYS};
pub use cert::{fingerprint_der, pem_to_der, verify_issued_by};
pub use error::Error;
pub use identity::{Identity, PublicKey};
pub use name::validate_party_name;
pub use party::PartyCredentials;
