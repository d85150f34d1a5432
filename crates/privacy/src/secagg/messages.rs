//! The messages of a secure-aggregation round, one struct per step and direction.
//!
//! All are plain serde structs: the transport (gRPC in `fed`) carries them as they are. Every
//! message names its round; clients talk to each other only through the server, and what one
//! client sends another (its shares) is end-to-end encrypted.
//!
//! | step | client → server | server → client |
//! |---|---|---|
//! | 0 | [`AdvertiseKeys`] | [`KeyDirectory`] (the holders' keys) |
//! | 1 | [`ShareKeys`] (encrypted shares) | [`ShareDelivery`] (shares addressed to it) |
//! | 2 | [`MaskedInput`] | [`UnmaskingRequest`] (the survivors) |
//! | 3 | [`UnmaskingResponse`] (shares of b or s^SK) | — |

use serde::{Deserialize, Serialize};

use super::ClientId;

/// Step 0, client → server: the client's two public keys for this round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertiseKeys {
    /// Round number.
    pub round_id: u64,
    /// The sending client.
    pub sender: ClientId,
    /// X25519 public key c^PK, for encrypting shares.
    pub cipher_public_key: [u8; 32],
    /// X25519 public key s^PK, for pairwise mask seeds.
    pub mask_public_key: [u8; 32],
}

/// Step 0, server → client: the advertised keys of the client's share holders (itself included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDirectory {
    /// Round number.
    pub round_id: u64,
    /// The client this directory is for.
    pub recipient: ClientId,
    /// The keys of the holders that advertised theirs.
    pub keys: Vec<AdvertiseKeys>,
}

/// A sealed pair of shares from one client to another (ChaCha20-Poly1305).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedShare {
    /// The client whose secrets are shared.
    pub sender: ClientId,
    /// The holder it is for.
    pub recipient: ClientId,
    /// The sealed shares.
    pub ciphertext: Vec<u8>,
}

/// Step 1, client → server: the client's shares of b and s^SK, one envelope per holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareKeys {
    /// Round number.
    pub round_id: u64,
    /// The sending client.
    pub sender: ClientId,
    /// One envelope per other holder that advertised keys.
    pub shares: Vec<EncryptedShare>,
}

/// Step 1, server → client: the envelopes addressed to the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareDelivery {
    /// Round number.
    pub round_id: u64,
    /// The client this delivery is for.
    pub recipient: ClientId,
    /// Envelopes from the clients that sent their shares.
    pub shares: Vec<EncryptedShare>,
}

/// Step 2, client → server: the masked, quantised input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedInput {
    /// Round number.
    pub round_id: u64,
    /// The sending client.
    pub sender: ClientId,
    /// y = x + PRG(b) + Σ ±PRG(s_ij), in Z_2^32.
    pub words: Vec<u32>,
}

/// Step 2, server → client: which clients sent masked inputs; the others are dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmaskingRequest {
    /// Round number.
    pub round_id: u64,
    /// Clients whose masked input the server received, sorted.
    pub survivors: Vec<ClientId>,
}

/// Which secret a revealed share belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareKind {
    /// A share of the self-mask seed b (revealed for survivors).
    SelfMaskSeed,
    /// A share of the mask secret key s^SK (revealed for dropped clients).
    MaskSecretKey,
}

/// One revealed share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedShare {
    /// The client whose secret this is a share of.
    pub owner: ClientId,
    /// Which of its secrets.
    pub kind: ShareKind,
    /// The share (48 bytes: three little-endian elements of GF(2^127 − 1)).
    pub share: Vec<u8>,
}

/// Step 3, client → server: for every client it holds shares of, one share, of b if the owner
/// survived, of s^SK if it dropped; never both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmaskingResponse {
    /// Round number.
    pub round_id: u64,
    /// The sending client.
    pub sender: ClientId,
    /// The revealed shares.
    pub shares: Vec<RevealedShare>,
}
