//! Helpers shared by the strategy tests.

use super::ClientUpdate;

/// Shorthand for a [`ClientUpdate`].
pub fn update<'a>(node: &'a str, weights: &'a [f32], num_samples: u64) -> ClientUpdate<'a> {
    ClientUpdate {
        node,
        weights,
        num_samples,
    }
}

/// Bit patterns, for asserting bit-identical results.
pub fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|x| x.to_bits()).collect()
}
