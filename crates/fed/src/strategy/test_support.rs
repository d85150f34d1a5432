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

/// The state a server optimiser reports: `[("m", m), ("v", v)]`.
pub fn moments(m: &[f32], v: &[f32]) -> Vec<(String, Vec<f32>)> {
    vec![("m".to_owned(), m.to_vec()), ("v".to_owned(), v.to_vec())]
}
