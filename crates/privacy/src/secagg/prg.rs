//! ChaCha20 expansion of 32-byte seeds: mask words for the masked inputs, and uniform indices
//! for drawing the SecAgg+ graph.
//!
//! The keystream is ChaCha20 as in RFC 8439 (key = the seed, a per-purpose 96-bit nonce, block
//! counter from 0), read as little-endian `u32` words. Masks are added with wrapping arithmetic,
//! i.e. in Z_2^32.

use std::thread;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20, Key, Nonce};
use zeroize::Zeroizing;

/// What a keystream is used for; each use has its own nonce.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    /// The self mask PRG(b_i).
    SelfMask,
    /// The pairwise mask PRG(s_ij).
    PairwiseMask,
    /// The random order of clients on the SecAgg+ ring.
    GraphShuffle,
}

impl Purpose {
    fn nonce(self) -> [u8; 12] {
        match self {
            Purpose::SelfMask => *b"cohort:self\0",
            Purpose::PairwiseMask => *b"cohort:pair\0",
            Purpose::GraphShuffle => *b"cohort:ring\0",
        }
    }
}

/// The keystream of `seed` for `purpose`.
pub(crate) fn keystream(seed: &[u8; 32], purpose: Purpose) -> ChaCha20 {
    ChaCha20::new(&Key::from(*seed), &Nonce::from(purpose.nonce()))
}

/// Whether a mask is added to or subtracted from the words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sign {
    /// Add the mask (mod 2^32).
    Add,
    /// Subtract the mask (mod 2^32).
    Subtract,
}

/// A mask to apply: the keystream of `seed` for `purpose`, added or subtracted.
pub(crate) struct Mask {
    pub(crate) seed: Zeroizing<[u8; 32]>,
    pub(crate) purpose: Purpose,
    pub(crate) sign: Sign,
}

/// Words per chunk: every mask is applied to one cache-resident chunk before the next chunk.
const CHUNK_WORDS: usize = 2048;
/// Below this many words per thread, splitting the work costs more than it saves.
const MIN_WORDS_PER_THREAD: usize = 1 << 15;

/// Adds or subtracts every mask's keystream to `words` (mod 2^32), splitting the vector
/// among the available cores (each thread seeks the keystreams to its own range).
pub(crate) fn apply_masks(words: &mut [u32], masks: &[Mask]) {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(words.len() / MIN_WORDS_PER_THREAD).max(1);
    if threads == 1 {
        apply_range(words, 0, masks);
        return;
    }
    let per_thread = words.len().div_ceil(threads);
    thread::scope(|scope| {
        for (index, part) in words.chunks_mut(per_thread).enumerate() {
            scope.spawn(move || apply_range(part, index * per_thread, masks));
        }
    });
}

/// Applies the masks to `words`, which start at word `offset` of the whole vector.
fn apply_range(words: &mut [u32], offset: usize, masks: &[Mask]) {
    let mut streams: Vec<(ChaCha20, Sign)> = masks
        .iter()
        .map(|mask| {
            let mut stream = keystream(&mask.seed, mask.purpose);
            stream.seek(offset as u64 * 4);
            (stream, mask.sign)
        })
        .collect();
    let mut buffer = [0u8; CHUNK_WORDS * 4];
    for chunk in words.chunks_mut(CHUNK_WORDS) {
        let bytes = &mut buffer[..chunk.len() * 4];
        for (stream, sign) in &mut streams {
            stream.write_keystream(bytes);
            let mask = bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            match sign {
                Sign::Add => chunk
                    .iter_mut()
                    .zip(mask)
                    .for_each(|(word, m)| *word = word.wrapping_add(m)),
                Sign::Subtract => chunk
                    .iter_mut()
                    .zip(mask)
                    .for_each(|(word, m)| *word = word.wrapping_sub(m)),
            }
        }
    }
}

/// A uniform integer in `0..bound` (`bound >= 1`) read from `stream`, by rejection of the
/// top partial range of 64-bit little-endian draws.
pub(crate) fn uniform_below(stream: &mut ChaCha20, bound: u64) -> u64 {
    let zone = (u64::MAX / bound) * bound;
    loop {
        let mut bytes = [0u8; 8];
        stream.write_keystream(&mut bytes);
        let draw = u64::from_le_bytes(bytes);
        if draw < zone {
            return draw % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(seed: [u8; 32], purpose: Purpose, sign: Sign) -> Mask {
        Mask {
            seed: Zeroizing::new(seed),
            purpose,
            sign,
        }
    }

    #[test]
    fn split_application_equals_one_pass() {
        let words: Vec<u32> = (0..5 * MIN_WORDS_PER_THREAD as u32 + 7).collect();
        let masks = [
            mask([2; 32], Purpose::SelfMask, Sign::Add),
            mask([3; 32], Purpose::PairwiseMask, Sign::Subtract),
        ];
        let mut whole = words.clone();
        apply_range(&mut whole, 0, &masks);
        let mut split = words.clone();
        apply_masks(&mut split, &masks);
        assert_eq!(split, whole);
        let mut tail = words[1000..].to_vec();
        apply_range(&mut tail, 1000, &masks);
        assert_eq!(tail, whole[1000..]);
    }

    #[test]
    fn adding_then_subtracting_a_mask_restores_the_words() {
        let seed = [9u8; 32];
        let original: Vec<u32> = (0..5000).collect();
        let mut words = original.clone();
        apply_masks(&mut words, &[mask(seed, Purpose::SelfMask, Sign::Add)]);
        assert_ne!(words, original);
        apply_masks(&mut words, &[mask(seed, Purpose::SelfMask, Sign::Subtract)]);
        assert_eq!(words, original);
    }

    #[test]
    fn masks_are_the_rfc8439_keystream_as_little_endian_words() {
        // RFC 8439 section 2.4.2 key (00..1f); keystream block 0 with our nonce is checked
        // against the generic cipher applied to zeros.
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mut expected = [0u8; 8];
        keystream(&seed, Purpose::PairwiseMask).apply_keystream(&mut expected);
        let mut words = [0u32; 2];
        apply_masks(&mut words, &[mask(seed, Purpose::PairwiseMask, Sign::Add)]);
        assert_eq!(words[0].to_le_bytes(), expected[..4]);
        assert_eq!(words[1].to_le_bytes(), expected[4..]);
    }

    #[test]
    fn purposes_give_different_streams_for_one_seed() {
        let seed = [1u8; 32];
        let mut a = [0u32; 4];
        let mut b = [0u32; 4];
        apply_masks(&mut a, &[mask(seed, Purpose::SelfMask, Sign::Add)]);
        apply_masks(&mut b, &[mask(seed, Purpose::PairwiseMask, Sign::Add)]);
        assert_ne!(a, b);
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let mut stream = keystream(&[3u8; 32], Purpose::GraphShuffle);
        for bound in 1..50 {
            assert!(uniform_below(&mut stream, bound) < bound);
        }
    }
}
