//! Synthetic logistic-regression data for benchmarks and tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::Dataset;

/// Seed of the true weight vector, fixed so every client shares the same underlying model.
const TRUE_WEIGHTS_SEED: u64 = 0x7E11_5EED;

/// The weight vector `w_true ~ N(0, 1)^dim` behind [`logistic`], the same for every seed.
pub fn true_weights(dim: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(TRUE_WEIGHTS_SEED);
    (0..dim).map(|_| rng.sample(StandardNormal)).collect()
}

/// Flower-benchmark-compatible synthetic logistic data: `n` rows of `dim` standard normal
/// features with labels y ~ Bernoulli(sigmoid(x·w_true/3)), `w_true` from [`true_weights`];
/// deterministic from `seed`. `dim` should be at least 1 for the result to be a valid dataset.
pub fn logistic(seed: u64, n: usize, dim: usize) -> Dataset {
    let w = true_weights(dim);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(n * dim);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f32> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
        let score: f64 = row
            .iter()
            .zip(&w)
            .map(|(a, b)| f64::from(a * b))
            .sum::<f64>()
            / 3.0;
        let p = 1.0 / (1.0 + (-score).exp());
        y.push(if rng.random::<f64>() < p { 1.0 } else { 0.0 });
        x.extend(row);
    }
    Dataset {
        features: dim,
        x,
        y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_is_deterministic_for_a_seed() {
        assert_eq!(logistic(5, 50, 4), logistic(5, 50, 4));
        assert_ne!(logistic(5, 50, 4), logistic(6, 50, 4));
        assert_eq!(true_weights(4), true_weights(4));
    }

    #[test]
    fn synthetic_labels_follow_the_true_weights() {
        let d = logistic(1, 4000, 10);
        assert!(d.check().is_ok());
        let w = true_weights(10);
        let agree =
            d.x.chunks_exact(10)
                .zip(&d.y)
                .filter(|(row, y)| {
                    let s: f32 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
                    (s > 0.0) == (**y > 0.5)
                })
                .count();
        // The Bayes classifier agrees with the sampled labels well above chance.
        assert!(agree as f64 / 4000.0 > 0.6, "{agree}");
    }
}
