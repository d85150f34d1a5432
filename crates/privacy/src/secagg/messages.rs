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

/// Serde form of masked words: standard base64 of their little-endian bytes.
mod words_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(words: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = STANDARD
            .decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format!("masked words: {e}")))?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom(format!(
                "masked words: {} bytes is not a whole number of 32-bit words",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

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
    /// y = x + PRG(b) + Σ ±PRG(s_ij), in Z_2^32. Serialised as the base64 of
    /// the little-endian words (a fifth of the size of a JSON array of numbers,
    /// and far quicker to parse).
    #[serde(with = "words_base64")]
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

#[cfg(test)]
mod tests {
    use super::MaskedInput;

    #[test]
    fn masked_words_travel_as_base64_and_come_back_equal() {
        let input = MaskedInput {
            round_id: 7,
            sender: 2,
            words: vec![0, 1, u32::MAX, 0x0403_0201],
        };
        let json = serde_json::to_string(&input).unwrap();
        assert!(
            json.contains(r#""words":"AAAAAAEAAAD/////AQIDBA==""#),
            "{json}"
        );
        let back: MaskedInput = serde_json::from_str(&json).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn masked_words_that_are_not_whole_words_are_refused() {
        let json = r#"{"round_id":7,"sender":2,"words":"AQIDBAU="}"#;
        let err = serde_json::from_str::<MaskedInput>(json).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        let err = serde_json::from_str::<MaskedInput>(r#"{"round_id":7,"sender":2,"words":"***"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("masked words"), "{err}");
    }
}
