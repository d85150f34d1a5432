//! X25519 key agreement between two clients and the 32-byte keys derived from it.
//!
//! Each client holds two key pairs per round (Bonawitz et al.): the "c" pair, whose agreement
//! keys the encryption of shares, and the "s" pair, whose agreement seeds the pairwise mask.
//! Derived key = SHA-256("cohort/secagg/v1/" ‖ label ‖ round ‖ min(id) ‖ max(id) ‖ X25519),
//! integers little-endian, so both ends of a pair derive the same key.

use rand::RngCore;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::{ClientId, SecAggError};

/// What a derived key is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyUse {
    /// Seed of the pairwise mask (from the "s" keys).
    PairwiseMask,
    /// Key of the share encryption (from the "c" keys).
    ShareEncryption,
}

impl KeyUse {
    fn label(self) -> &'static [u8] {
        match self {
            KeyUse::PairwiseMask => b"pairwise-mask",
            KeyUse::ShareEncryption => b"share-encryption",
        }
    }
}

/// A fresh X25519 secret from `rng`.
pub(crate) fn random_secret<R: RngCore + ?Sized>(rng: &mut R) -> StaticSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut());
    StaticSecret::from(*bytes)
}

/// The public key of `secret`, as bytes.
pub(crate) fn public_bytes(secret: &StaticSecret) -> [u8; 32] {
    PublicKey::from(secret).to_bytes()
}

/// The pair key of `me` (holding `secret`) and `peer` (with public key `peer_public`).
///
/// # Errors
/// [`SecAggError::WeakPublicKey`] when the agreement is not contributory (a low-order point).
pub(crate) fn pair_key(
    secret: &StaticSecret,
    peer_public: &[u8; 32],
    key_use: KeyUse,
    round_id: u64,
    me: ClientId,
    peer: ClientId,
) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*peer_public));
    if !shared.was_contributory() {
        return Err(SecAggError::WeakPublicKey { client: peer });
    }
    let digest = Sha256::new()
        .chain_update(b"cohort/secagg/v1/")
        .chain_update(key_use.label())
        .chain_update(round_id.to_le_bytes())
        .chain_update(me.min(peer).to_le_bytes())
        .chain_update(me.max(peer).to_le_bytes())
        .chain_update(shared.as_bytes())
        .finalize();
    Ok(Zeroizing::new(digest.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn both_ends_derive_the_same_pair_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (a, b) = (random_secret(&mut rng), random_secret(&mut rng));
        let from_a = pair_key(&a, &public_bytes(&b), KeyUse::PairwiseMask, 3, 1, 2).unwrap();
        let from_b = pair_key(&b, &public_bytes(&a), KeyUse::PairwiseMask, 3, 2, 1).unwrap();
        assert_eq!(*from_a, *from_b);
        let other_use = pair_key(&a, &public_bytes(&b), KeyUse::ShareEncryption, 3, 1, 2).unwrap();
        assert_ne!(*from_a, *other_use);
    }

    #[test]
    fn low_order_public_key_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let secret = random_secret(&mut rng);
        let result = pair_key(&secret, &[0u8; 32], KeyUse::PairwiseMask, 1, 1, 7);
        assert_eq!(result.err(), Some(SecAggError::WeakPublicKey { client: 7 }));
    }
}
