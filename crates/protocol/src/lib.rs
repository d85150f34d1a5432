//! The cohort wire protocol: gRPC messages and services generated from
//! `proto/cohort/fed/v1/federation.proto`, mutual-TLS configuration, and
//! wire ⇄ domain conversions. Parties sign ledger entries (crate `ledger`),
//! carried as bytes in the messages.
//!
//! ```no_run
//! # async fn connect() -> Result<(), Box<dyn std::error::Error>> {
//! use protocol::{tls, v1::coordinator_client::CoordinatorClient};
//! let creds = tls::TlsMaterial { cert_pem: String::new(), key_pem: String::new(), ca_pem: String::new() };
//! let channel = tls::connect("https://127.0.0.1:7443", "coordinator", &creds).await?;
//! let mut client = CoordinatorClient::new(channel);
//! # let _ = &mut client; Ok(()) }
//! ```

pub mod convert;
pub mod tls;

/// Generated code for package `cohort.fed.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("cohort.fed.v1");
}

/// The protocol version this crate speaks (`JoinRequest.protocol_version`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest message accepted on either side (model weights included), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
