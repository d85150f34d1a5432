//! The Gaussian mechanism's noise.
//!
//! Noise comes from a caller-supplied cryptographically secure generator (the bound is
//! [`rand::CryptoRng`]), through rand_distr's standard normal sampler, in f64 then rounded to
//! f32. Caveat: floating-point Gaussian sampling is not exactly the distribution the analysis
//! assumes (Mironov 2012 showed attacks on the low-order bits of floating-point Laplace noise);
//! a discrete Gaussian over the quantised integers would close that gap.

use rand::CryptoRng;
use rand_distr::{Distribution, StandardNormal};

use super::DpError;
use super::error::check_non_negative;

/// Adds independent N(0, `std_dev`²) noise to every value.
///
/// # Errors
/// [`DpError::InvalidParameter`] for a negative or non-finite standard deviation.
pub fn add_gaussian_noise<R: CryptoRng + ?Sized>(
    values: &mut [f32],
    std_dev: f64,
    rng: &mut R,
) -> Result<(), DpError> {
    check_non_negative("noise standard deviation", std_dev)?;
    for value in values.iter_mut() {
        let z: f64 = StandardNormal.sample(rng);
        *value = (f64::from(*value) + std_dev * z) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn noise_has_the_requested_mean_and_spread() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let mut values = vec![1.0f32; 200_000];
        add_gaussian_noise(&mut values, 2.0, &mut rng).unwrap();
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
        assert!(
            (variance.sqrt() - 2.0).abs() < 0.02,
            "std {}",
            variance.sqrt()
        );
    }

    #[test]
    fn negative_spread_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        assert!(add_gaussian_noise(&mut [0.0], -1.0, &mut rng).is_err());
    }
}
