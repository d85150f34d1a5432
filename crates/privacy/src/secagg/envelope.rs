//! Authenticated encryption of the two shares one client sends another through the server
//! (ChaCha20-Poly1305, RFC 8439).
//!
//! Key: the pair's share-encryption key (from their "c" keys). Nonce: sender ‖ recipient ‖ 0u32
//! (little-endian), unique because each client seals once per recipient per round and keys are
//! fresh each round. Associated data: "cohort/secagg/v1/share" ‖ round. Plaintext: sender ‖
//! recipient ‖ round ‖ share of b ‖ share of s^SK, checked again after decryption.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::shamir::{SHARE_LEN, Share};
use super::{ClientId, SecAggError};

const HEADER_LEN: usize = 4 + 4 + 8;
const PLAINTEXT_LEN: usize = HEADER_LEN + 2 * SHARE_LEN;
/// Length of a sealed envelope: plaintext plus the 16-byte Poly1305 tag.
pub(crate) const ENVELOPE_LEN: usize = PLAINTEXT_LEN + 16;

/// The two shares a client holds of another client's secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SharePair {
    /// Share of the self-mask seed b.
    pub(crate) self_seed: Share,
    /// Share of the mask secret key s^SK.
    pub(crate) mask_key: Share,
}

fn nonce(sender: ClientId, recipient: ClientId) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&sender.to_le_bytes());
    bytes[4..8].copy_from_slice(&recipient.to_le_bytes());
    Nonce::from(bytes)
}

fn associated_data(round_id: u64) -> Vec<u8> {
    [
        b"cohort/secagg/v1/share".as_slice(),
        &round_id.to_le_bytes(),
    ]
    .concat()
}

fn header(round_id: u64, sender: ClientId, recipient: ClientId) -> [u8; HEADER_LEN] {
    let mut bytes = [0u8; HEADER_LEN];
    bytes[..4].copy_from_slice(&sender.to_le_bytes());
    bytes[4..8].copy_from_slice(&recipient.to_le_bytes());
    bytes[8..].copy_from_slice(&round_id.to_le_bytes());
    bytes
}

/// Encrypts `pair` from `sender` to `recipient`.
pub(crate) fn seal(
    key: &[u8; 32],
    round_id: u64,
    sender: ClientId,
    recipient: ClientId,
    pair: &SharePair,
) -> Vec<u8> {
    let mut plaintext = Vec::with_capacity(PLAINTEXT_LEN);
    plaintext.extend_from_slice(&header(round_id, sender, recipient));
    plaintext.extend_from_slice(&pair.self_seed.to_bytes());
    plaintext.extend_from_slice(&pair.mask_key.to_bytes());
    let aad = associated_data(round_id);
    ChaCha20Poly1305::new(&Key::from(*key))
        .encrypt(
            &nonce(sender, recipient),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .expect("a 112-byte plaintext is within ChaCha20-Poly1305 limits")
}

/// Decrypts and checks an envelope from `sender` to `recipient`.
///
/// # Errors
/// [`SecAggError::WrongLength`] for a ciphertext of the wrong size,
/// [`SecAggError::ShareAuthenticationFailed`] when the tag does not verify (wrong key, tampered
/// or misrouted), [`SecAggError::Malformed`] when the sealed header or shares are invalid.
pub(crate) fn open(
    key: &[u8; 32],
    round_id: u64,
    sender: ClientId,
    recipient: ClientId,
    ciphertext: &[u8],
) -> Result<SharePair, SecAggError> {
    if ciphertext.len() != ENVELOPE_LEN {
        return Err(SecAggError::WrongLength {
            what: "encrypted share",
            expected: ENVELOPE_LEN,
            got: ciphertext.len(),
        });
    }
    let aad = associated_data(round_id);
    let plaintext = ChaCha20Poly1305::new(&Key::from(*key))
        .decrypt(
            &nonce(sender, recipient),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| SecAggError::ShareAuthenticationFailed { sender })?;
    let malformed = |reason: &str| SecAggError::Malformed {
        message: "encrypted share",
        reason: reason.to_owned(),
    };
    if plaintext.get(..HEADER_LEN) != Some(&header(round_id, sender, recipient)[..]) {
        return Err(malformed(
            "sealed sender, recipient or round does not match",
        ));
    }
    let (self_seed, mask_key) = plaintext[HEADER_LEN..].split_at(SHARE_LEN);
    match (Share::from_bytes(self_seed), Share::from_bytes(mask_key)) {
        (Some(self_seed), Some(mask_key)) => Ok(SharePair {
            self_seed,
            mask_key,
        }),
        _ => Err(malformed("share is not a canonical field element")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::shamir::split;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn pair() -> SharePair {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let shares = split(&[5u8; 32], 2, &[1, 2], &mut rng);
        SharePair {
            self_seed: shares[0],
            mask_key: shares[1],
        }
    }

    #[test]
    fn sealed_shares_open_with_the_same_key() {
        let sealed = seal(&[1u8; 32], 4, 1, 2, &pair());
        assert_eq!(sealed.len(), ENVELOPE_LEN);
        assert_eq!(open(&[1u8; 32], 4, 1, 2, &sealed), Ok(pair()));
    }

    #[test]
    fn tampered_or_misrouted_shares_fail_authentication() {
        let mut sealed = seal(&[1u8; 32], 4, 1, 2, &pair());
        let auth_failed = Err(SecAggError::ShareAuthenticationFailed { sender: 1 });
        assert_eq!(open(&[2u8; 32], 4, 1, 2, &sealed), auth_failed);
        assert_eq!(open(&[1u8; 32], 5, 1, 2, &sealed), auth_failed);
        assert_eq!(open(&[1u8; 32], 4, 1, 3, &sealed), auth_failed);
        sealed[20] ^= 1;
        assert_eq!(open(&[1u8; 32], 4, 1, 2, &sealed), auth_failed);
    }

    #[test]
    fn truncated_envelope_is_refused_by_length() {
        let sealed = seal(&[1u8; 32], 4, 1, 2, &pair());
        assert!(matches!(
            open(&[1u8; 32], 4, 1, 2, &sealed[..ENVELOPE_LEN - 1]),
            Err(SecAggError::WrongLength { .. })
        ));
    }
}
