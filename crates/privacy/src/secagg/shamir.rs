//! Shamir secret sharing of 32-byte secrets over GF(2^127 − 1).
//!
//! A secret is cut into little-endian chunks of at most 15 bytes (15, 15, 2), each below 2^120
//! and so a field element; each chunk is shared with its own random polynomial of degree
//! `threshold − 1`. Client `id` holds the evaluations at x = id + 1 (never zero). Any `threshold`
//! shares give the secret back by Lagrange interpolation at 0; fewer reveal nothing.

use rand::RngCore;

use super::ClientId;
use super::field::Fe;

/// Length of a shared secret in bytes.
pub(crate) const SECRET_LEN: usize = 32;
/// Bytes of secret per field element.
const CHUNK_LEN: usize = 15;
/// Field elements per secret.
const CHUNKS: usize = SECRET_LEN.div_ceil(CHUNK_LEN);
/// Length of an encoded share: one little-endian `u128` per chunk.
pub(crate) const SHARE_LEN: usize = CHUNKS * 16;

/// One holder's share of one secret (the x coordinate is the holder's id + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Share([Fe; CHUNKS]);

impl Share {
    /// The wire form: each element as 16 little-endian bytes.
    pub(crate) fn to_bytes(self) -> [u8; SHARE_LEN] {
        let mut out = [0u8; SHARE_LEN];
        for (slot, element) in out.chunks_exact_mut(16).zip(self.0) {
            slot.copy_from_slice(&element.value().to_le_bytes());
        }
        out
    }

    /// Parses the wire form; `None` for a wrong length or a non-canonical element.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Share> {
        if bytes.len() != SHARE_LEN {
            return None;
        }
        let mut elements = [Fe::ZERO; CHUNKS];
        for (element, chunk) in elements.iter_mut().zip(bytes.chunks_exact(16)) {
            let value = u128::from_le_bytes(chunk.try_into().ok()?);
            *element = Fe::from_canonical(value)?;
        }
        Some(Share(elements))
    }
}

fn x_coordinate(holder: ClientId) -> Fe {
    // Client ids are u32, far below p, so id + 1 is a distinct non-zero element.
    Fe::reduced(u128::from(holder) + 1)
}

fn chunk_to_element(chunk: &[u8]) -> Fe {
    let mut bytes = [0u8; 16];
    bytes[..chunk.len()].copy_from_slice(chunk);
    // A chunk has at most 15 bytes, so the value is below 2^120 < p and is kept as is.
    Fe::reduced(u128::from_le_bytes(bytes))
}

/// Splits `secret` into one share per holder (in the order of `holders`).
///
/// The caller guarantees `1 <= threshold <= holders.len()` and distinct holders.
pub(crate) fn split<R: RngCore + ?Sized>(
    secret: &[u8; SECRET_LEN],
    threshold: usize,
    holders: &[ClientId],
    rng: &mut R,
) -> Vec<Share> {
    let mut shares = vec![Share([Fe::ZERO; CHUNKS]); holders.len()];
    for (index, chunk) in secret.chunks(CHUNK_LEN).enumerate() {
        let mut coefficients = vec![chunk_to_element(chunk)];
        coefficients.extend((1..threshold).map(|_| Fe::random(rng)));
        for (share, &holder) in shares.iter_mut().zip(holders) {
            let x = x_coordinate(holder);
            // Horner evaluation of the polynomial at x.
            share.0[index] = coefficients
                .iter()
                .rev()
                .fold(Fe::ZERO, |acc, &coefficient| acc * x + coefficient);
        }
    }
    shares
}

/// Rebuilds a secret from the first `threshold` of `points` (holder, share).
///
/// Returns `None` when there are fewer than `threshold` points, holders repeat, or the
/// interpolated chunks do not fit their byte lengths (shares from different secrets).
pub(crate) fn reconstruct(
    points: &[(ClientId, Share)],
    threshold: usize,
) -> Option<[u8; SECRET_LEN]> {
    if threshold == 0 || points.len() < threshold {
        return None;
    }
    let used = &points[..threshold];
    let xs: Vec<Fe> = used
        .iter()
        .map(|&(holder, _)| x_coordinate(holder))
        .collect();
    // Lagrange basis at 0: L_i = Π_{j≠i} x_j / (x_j − x_i).
    let mut weights = Vec::with_capacity(threshold);
    for (i, &xi) in xs.iter().enumerate() {
        let mut numerator = Fe::ONE;
        let mut denominator = Fe::ONE;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                numerator = numerator * xj;
                denominator = denominator * (xj - xi);
            }
        }
        weights.push(numerator * denominator.inverse()?);
    }
    let mut secret = [0u8; SECRET_LEN];
    for (index, chunk) in secret.chunks_mut(CHUNK_LEN).enumerate() {
        let value = used
            .iter()
            .zip(&weights)
            .fold(Fe::ZERO, |acc, ((_, share), &weight)| {
                acc + share.0[index] * weight
            })
            .value();
        let bytes = value.to_le_bytes();
        if bytes[chunk.len()..].iter().any(|&b| b != 0) {
            return None;
        }
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn secret(rng: &mut ChaCha20Rng) -> [u8; SECRET_LEN] {
        let mut secret = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut secret);
        secret
    }

    #[test]
    fn any_threshold_subset_reconstructs_the_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let secret = secret(&mut rng);
        let holders = [0, 3, 4, 9, 17];
        let shares = split(&secret, 3, &holders, &mut rng);
        let points: Vec<_> = holders.iter().copied().zip(shares).collect();
        for subset in [[0, 1, 2], [2, 3, 4], [0, 2, 4], [4, 1, 3]] {
            let chosen: Vec<_> = subset.iter().map(|&i| points[i]).collect();
            assert_eq!(reconstruct(&chosen, 3), Some(secret));
        }
    }

    #[test]
    fn fewer_than_threshold_shares_reconstruct_nothing() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let secret = secret(&mut rng);
        let holders = [1, 2, 3];
        let shares = split(&secret, 3, &holders, &mut rng);
        let points: Vec<_> = holders.iter().copied().zip(shares).collect();
        assert_eq!(reconstruct(&points[..2], 3), None);
        // Interpolating two shares as if the threshold were 2 gives garbage, not the secret.
        assert_ne!(reconstruct(&points[..2], 2), Some(secret));
    }

    #[test]
    fn shares_round_trip_through_bytes() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let shares = split(&secret(&mut rng), 2, &[5, 6], &mut rng);
        for share in shares {
            assert_eq!(Share::from_bytes(&share.to_bytes()), Some(share));
        }
    }

    #[test]
    fn malformed_share_bytes_are_refused() {
        assert_eq!(Share::from_bytes(&[0u8; SHARE_LEN - 1]), None);
        assert_eq!(Share::from_bytes(&[0xff; SHARE_LEN]), None);
    }
}
