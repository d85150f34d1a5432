//! The federation's certificate authority.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::cert::{parse_certificate, pem_to_der};
use crate::files::{self, Mode};
use crate::identity::{Identity, PublicKey};
use crate::name::{validate_federation_name, validate_party_name};
use crate::{Error, PartyCredentials};

/// Default lifetime of an issued party certificate, in days.
pub const DEFAULT_VALIDITY_DAYS: u32 = 825;

/// Lifetime of a newly generated CA certificate, in days (about ten years).
const CA_VALIDITY_DAYS: u32 = 3650;

/// File name of the CA certificate in a credentials directory.
pub(crate) const CA_CERT_FILE: &str = "ca.crt";

/// File name of the CA private key in the CA's directory.
const CA_KEY_FILE: &str = "ca.key";

/// The federation's certificate authority: an Ed25519 CA certificate and its key.
///
/// It signs every party's TLS certificate; parties trust exactly this CA.
pub struct CertificateAuthority {
    cert_pem: String,
    not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// New CA named `federation` (CN `"<federation> cohort CA"`), valid from a day
    /// ago for about ten years. `federation` follows the party naming rules
    /// (see [`validate_party_name`](crate::validate_party_name)).
    pub fn generate(federation: &str) -> Result<Self, Error> {
        validate_federation_name(federation)?;
        let key_pem = Identity::generate().to_pkcs8_pem()?;
        let key = rcgen_key(&key_pem)?;

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{federation} cohort CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "cohort");
        // Path length 0: the CA signs party certificates only, never other CAs.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        (params.not_before, params.not_after) = validity(CA_VALIDITY_DAYS);

        let cert = params.self_signed(&key)?;
        Self::from_parts(cert.pem(), key)
    }

    /// Load from PEM strings (certificate, PKCS#8 Ed25519 key) as written by
    /// [`cert_pem`](Self::cert_pem) and [`key_pem`](Self::key_pem).
    ///
    /// Fails unless the certificate is a CA certificate with an Ed25519 key
    /// matching `key_pem`.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        Self::from_parts(cert_pem.to_owned(), rcgen_key(key_pem)?)
    }

    fn from_parts(cert_pem: String, key: KeyPair) -> Result<Self, Error> {
        let der = pem_to_der(&cert_pem)?;
        let cert = parse_certificate(&der)?;
        if !cert.is_ca() {
            return Err(Error::NotCa);
        }
        let public_key = PublicKey::from_spki(cert.public_key())?;
        if key.public_key_raw() != public_key.0 {
            return Err(Error::KeyMismatch);
        }
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Self {
            cert_pem,
            not_after,
            issuer,
        })
    }

    /// The CA certificate as PEM (what every party trusts).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key as PKCS#8 PEM. Keep it secret.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issue a party's certificate and identity, valid for
    /// [`DEFAULT_VALIDITY_DAYS`].
    pub fn issue(&self, party: &str) -> Result<PartyCredentials, Error> {
        self.issue_with_validity(party, DEFAULT_VALIDITY_DAYS)
    }

    /// Issue a party's certificate and identity, valid from a day ago until
    /// `days` days from now (but never past the CA certificate's own expiry).
    ///
    /// A fresh Ed25519 key is generated; the certificate has CN and DNS
    /// subjectAltName `party`, plus DNS `localhost` and IP `127.0.0.1` so
    /// loopback connections verify, and is usable both as a TLS server and as
    /// a TLS client certificate.
    pub fn issue_with_validity(&self, party: &str, days: u32) -> Result<PartyCredentials, Error> {
        validate_party_name(party)?;
        if days == 0 {
            return Err(Error::ZeroValidity);
        }
        let identity = Identity::generate();
        let key_pem = identity.to_pkcs8_pem()?;
        let key = rcgen_key(&key_pem)?;

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, party);
        params.subject_alt_names = vec![SanType::DnsName(dns_name(party)?)];
        if party != "localhost" {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns_name("localhost")?));
        }
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let (not_before, not_after) = validity(days);
        params.not_before = not_before;
        params.not_after = not_after.min(self.not_after);

        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PartyCredentials {
            party: party.to_owned(),
            cert_pem: cert.pem(),
            key_pem,
            ca_cert_pem: self.cert_pem.clone(),
        })
    }

    /// Write `ca.crt` and `ca.key` (mode 0600 on unix) into `dir`, creating it
    /// if missing. Refuses with [`Error::KeyExists`] if `dir/ca.key` exists.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        files::create_dir(dir)?;
        files::write(&dir.join(CA_KEY_FILE), &self.key_pem(), Mode::PrivateNew)?;
        files::write(&dir.join(CA_CERT_FILE), &self.cert_pem, Mode::Public)
    }

    /// Load `ca.crt` and `ca.key` from `dir`, as written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let cert_pem = files::read(&dir.join(CA_CERT_FILE))?;
        let key_pem = files::read(&dir.join(CA_KEY_FILE))?;
        Self::from_pem(&cert_pem, &key_pem)
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Parse a PKCS#8 PEM Ed25519 key for rcgen.
fn rcgen_key(key_pem: &str) -> Result<KeyPair, Error> {
    KeyPair::from_pkcs8_pem_and_sign_algo(key_pem, &PKCS_ED25519)
        .map_err(|e| Error::PrivateKey(e.to_string()))
}

fn dns_name(name: &str) -> Result<Ia5String, Error> {
    Ia5String::try_from(name).map_err(Error::Generate)
}

/// A random positive 128-bit serial number (top bits fixed so the DER
/// encoding is always 16 bytes).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// From a day ago until `days` days from now.
fn validity(days: u32) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (
        now - Duration::days(1),
        now + Duration::days(i64::from(days)),
    )
}
