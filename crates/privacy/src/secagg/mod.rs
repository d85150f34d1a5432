//! Secure aggregation: SecAgg+ (Bell et al., CCS 2020) over the protocol of Bonawitz et al.
//! (CCS 2017), so that the server learns only the sum of the clients' updates.
//!
//! # Protocol
//!
//! Each client i holds, per round, two X25519 key pairs (c for encrypting shares, s for mask
//! seeds) and a 32-byte self-mask seed b_i. Its quantised input x_i (words of Z_2^32, see
//! [`Quantizer`]) is sent as
//!
//! y_i = x_i + PRG(b_i) + Σ_{j adjacent, j > i} PRG(s_ij) − Σ_{j adjacent, j < i} PRG(s_ij)
//!
//! where s_ij is derived from the X25519 agreement of s_i^SK and s_j^PK, and PRG is the ChaCha20
//! keystream read as little-endian u32 words. Pairwise masks cancel in the sum. b_i and s_i^SK
//! are Shamir-shared (threshold t, over GF(2^127 − 1), implemented here) with the client's
//! share holders: every client ([`Topology::Complete`]) or its neighbours on a random ring
//! ([`Topology::Harary`], SecAgg+). Shares travel through the server sealed with
//! ChaCha20-Poly1305 under a key from the agreement of the c keys.
//!
//! After the masked inputs, the server names the survivors; each survivor reveals, for each
//! client it holds shares of, the share of b if that client survived and of s^SK if it dropped,
//! never both (the double-masking defence), and answers only once. The server rebuilds the
//! survivors' b (removing self masks) and the dropped clients' s^SK (removing their pairwise
//! masks from the survivors' inputs). With fewer than t clients at any step the round fails
//! and no sum is revealed.
//!
//! | step | client | server |
//! |---|---|---|
//! | 0 | [`SecAggClient::advertise_keys`] | [`SecAggServer::receive_keys`], [`SecAggServer::key_directories`] |
//! | 1 | [`SecAggClient::share_keys`] | [`SecAggServer::receive_shares`], [`SecAggServer::share_deliveries`] |
//! | 2 | [`SecAggClient::mask_input`] | [`SecAggServer::receive_masked_input`], [`SecAggServer::unmasking_request`] |
//! | 3 | [`SecAggClient::unmask`] | [`SecAggServer::receive_unmasking`], [`SecAggServer::finish`] |
//!
//! # Threat model and limits
//!
//! Secure against an honest-but-curious server and clients, and against a server that lies
//! about dropouts (t must be a strict majority of each client's holders, which
//! [`RoundConfig::validate`] enforces). Not covered: a server that substitutes public keys
//! (keys are not signed here: the transport authenticates clients with mutual TLS, and signing
//! the [`AdvertiseKeys`] with the hospitals' Ed25519 identities is the caller's to add), and the
//! consistency-check round of the malicious-secure variant.

mod bench;
mod client;
mod config;
mod driver;
mod envelope;
mod error;
mod field;
mod graph;
mod keys;
mod messages;
mod plain;
mod prg;
mod quantize;
mod server;
mod shamir;

/// A client's id within a round.
pub type ClientId = u32;

pub use bench::{RoundBenchmark, benchmark_round};
pub use client::SecAggClient;
pub use config::{MAX_VECTOR_LEN, RoundConfig, Topology};
pub use driver::{Step, run_round};
pub use error::SecAggError;
pub use messages::{
    AdvertiseKeys, EncryptedShare, KeyDirectory, MaskedInput, RevealedShare, ShareDelivery,
    ShareKeys, ShareKind, UnmaskingRequest, UnmaskingResponse,
};
pub use plain::plain_sum;
pub use quantize::{Quantized, Quantizer};
pub use server::{AggregateOutcome, SecAggServer};
