//! Certificate parsing helpers: PEM decoding, fingerprints, chain checks.

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use crate::Error;

/// SHA-256 fingerprint (lower-case hex) of a certificate given in DER.
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Decode the first `CERTIFICATE` block of a PEM string to DER.
///
/// Other blocks (keys, comments) before it are skipped.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, Error> {
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| Error::Pem(e.to_string()))?;
        if block.label == "CERTIFICATE" {
            return Ok(block.contents);
        }
    }
    Err(Error::NoCertificatePem)
}

/// Check that `cert_pem` was signed by the CA whose certificate is `ca_cert_pem`:
/// the issuer name matches the CA's subject and the signature verifies with the
/// CA's key. (Validity dates are left to the TLS stack.)
pub fn verify_issued_by(cert_pem: &str, ca_cert_pem: &str) -> Result<(), Error> {
    let der = pem_to_der(cert_pem)?;
    let ca_der = pem_to_der(ca_cert_pem)?;
    let cert = parse_certificate(&der)?;
    let ca = parse_certificate(&ca_der)?;
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(Error::NotIssuedBy(format!(
            "issuer \"{}\" is not the CA \"{}\"",
            cert.issuer(),
            ca.subject()
        )));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| Error::NotIssuedBy(format!("signature does not verify with the CA key: {e}")))
}

/// Parse a whole DER certificate (no trailing bytes).
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| Error::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Certificate(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}
