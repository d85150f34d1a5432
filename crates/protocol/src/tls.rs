//! Mutual TLS for every connection: both sides present a certificate issued by
//! the federation's CA, and both verify the other's.

use sha2::{Digest, Sha256};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

/// A party's certificate and key plus the federation CA, all PEM.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// The party's certificate.
    pub cert_pem: String,
    /// The party's PKCS#8 private key.
    pub key_pem: String,
    /// The federation CA certificate that signs every party.
    pub ca_pem: String,
}

/// Where a party's PEM files are (the `[tls]` table of coordinator.toml and node.toml).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The party's certificate.
    pub certificate: std::path::PathBuf,
    /// Its PKCS#8 private key (also its Ed25519 signing identity).
    pub key: std::path::PathBuf,
    /// The federation CA certificate.
    pub ca: std::path::PathBuf,
}

/// A PEM file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// Read a text file, naming it in the error.
pub fn read_text(path: &std::path::Path) -> Result<String, ReadError> {
    std::fs::read_to_string(path).map_err(|source| ReadError {
        path: path.display().to_string(),
        source,
    })
}

impl TlsFiles {
    /// Read the three files (relative paths are taken from `base`).
    pub fn read(&self, base: &std::path::Path) -> Result<TlsMaterial, ReadError> {
        Ok(TlsMaterial {
            cert_pem: read_text(&base.join(&self.certificate))?,
            key_pem: read_text(&base.join(&self.key))?,
            ca_pem: read_text(&base.join(&self.ca))?,
        })
    }
}

/// Errors setting up a TLS channel.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The endpoint address could not be parsed.
    #[error("invalid endpoint address {address:?}: {source}")]
    Address {
        /// The address given.
        address: String,
        /// Why it was refused.
        source: tonic::transport::Error,
    },
    /// The TLS configuration was refused (bad certificate or key).
    #[error("TLS configuration refused: {0}")]
    Config(tonic::transport::Error),
    /// The connection failed.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address dialled.
        address: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// Server-side TLS: present our certificate and require a client certificate
/// signed by the federation CA.
pub fn server_config(material: &TlsMaterial) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(Identity::from_pem(&material.cert_pem, &material.key_pem))
        .client_ca_root(Certificate::from_pem(&material.ca_pem))
        .client_auth_optional(false)
}

/// Client-side TLS: verify the server as `server_name` against the federation
/// CA and present our own certificate.
pub fn client_config(material: &TlsMaterial, server_name: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&material.ca_pem))
        .identity(Identity::from_pem(&material.cert_pem, &material.key_pem))
        .domain_name(server_name)
}

/// An endpoint configured for mutual TLS (connects lazily).
pub fn endpoint(
    address: &str,
    server_name: &str,
    material: &TlsMaterial,
) -> Result<Endpoint, TlsError> {
    Endpoint::from_shared(address.to_string())
        .map_err(|source| TlsError::Address {
            address: address.to_string(),
            source,
        })?
        .tls_config(client_config(material, server_name))
        .map_err(TlsError::Config)
        .map(|endpoint| {
            // A link that goes dead (a partition, a peer gone without closing) is noticed by
            // HTTP/2 pings within KEEP_ALIVE twice, not after the kernel's TCP retransmissions
            // give up, which takes minutes; the caller then reconnects.
            endpoint
                .connect_timeout(KEEP_ALIVE)
                .http2_keep_alive_interval(KEEP_ALIVE)
                .keep_alive_timeout(KEEP_ALIVE)
                .keep_alive_while_idle(true)
        })
}

/// How long a client waits for a connection, and between HTTP/2 pings and their answers.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(10);

/// Connect to `address` over mutual TLS, verifying the server as `server_name`.
pub async fn connect(
    address: &str,
    server_name: &str,
    material: &TlsMaterial,
) -> Result<Channel, TlsError> {
    endpoint(address, server_name, material)?
        .connect()
        .await
        .map_err(|source| TlsError::Connect {
            address: address.to_string(),
            source,
        })
}

/// Lower-case hex SHA-256 of the leaf certificate the peer presented on this
/// request, or `None` when the request did not come over mutual TLS.
pub fn peer_fingerprint<T>(request: &tonic::Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    Some(hex::encode(Sha256::digest(leaf.as_ref())))
}
