//! Record-level DP-SGD helpers (Abadi et al. 2016) over plain f32 slices, independent of any
//! tensor library: Poisson sampling of a batch, per-example clipping and summing, and the
//! noised mean. One step is one [`SampledGaussian`](crate::accountant::SampledGaussian) event
//! with the sampling rate and noise multiplier used here.

use rand::CryptoRng;
use rand::distr::{Bernoulli, Distribution};

use super::error::{check_non_negative, check_positive};
use super::{DpError, add_gaussian_noise, clip_l2};

/// Poisson sampling: each of `population` records joins the batch independently with
/// probability `sample_rate`. Returns the chosen indices, in order.
///
/// # Errors
/// [`DpError::InvalidParameter`] for a rate outside [0, 1].
pub fn poisson_sample<R: CryptoRng + ?Sized>(
    population: usize,
    sample_rate: f64,
    rng: &mut R,
) -> Result<Vec<usize>, DpError> {
    let coin = Bernoulli::new(sample_rate).map_err(|_| DpError::InvalidParameter {
        name: "sample rate",
        value: sample_rate,
        expected: "a probability in [0, 1]",
    })?;
    Ok((0..population).filter(|_| coin.sample(rng)).collect())
}

/// The sum of per-example gradients, each clipped first.
#[derive(Clone, Debug, PartialEq)]
pub struct ClippedSum {
    /// Σ clip(g_i).
    pub sum: Vec<f32>,
    /// Examples summed.
    pub examples: usize,
    /// Examples whose gradient was scaled down.
    pub clipped: usize,
}

/// Clips each of the per-example gradients in `per_example` (row-major, `dim` values per
/// example) to L2 norm `max_norm` and sums them.
///
/// # Errors
/// [`DpError::WrongLength`] when `dim` is 0 or does not divide the length;
/// [`DpError::InvalidParameter`] for a bad clip norm; [`DpError::NonFinite`] for a NaN or
/// infinite gradient value.
pub fn clip_and_sum(per_example: &[f32], dim: usize, max_norm: f64) -> Result<ClippedSum, DpError> {
    if dim == 0 || !per_example.len().is_multiple_of(dim) {
        return Err(DpError::WrongLength {
            what: "per-example gradients",
            expected: per_example.len().next_multiple_of(dim.max(1)),
            got: per_example.len(),
        });
    }
    check_positive("clip norm", max_norm)?;
    let mut sum = vec![0f32; dim];
    let mut row = vec![0f32; dim];
    let mut clipped = 0;
    for (example, gradient) in per_example.chunks_exact(dim).enumerate() {
        row.copy_from_slice(gradient);
        let clipping = clip_l2(&mut row, max_norm).map_err(|error| match error {
            DpError::NonFinite { index } => DpError::NonFinite {
                index: example * dim + index,
            },
            other => other,
        })?;
        clipped += usize::from(clipping.clipped);
        sum.iter_mut().zip(&row).for_each(|(s, &g)| *s += g);
    }
    Ok(ClippedSum {
        sum,
        examples: per_example.len() / dim,
        clipped,
    })
}

/// Turns a clipped sum into the private gradient: adds N(0, (z·C)²) to every coordinate
/// (z = `noise_multiplier`, C = `max_norm`) and divides by `expected_batch_size` (sample rate ×
/// population: with Poisson sampling the divisor must not depend on the actual batch).
///
/// # Errors
/// [`DpError::InvalidParameter`] for a bad clip norm, noise multiplier or batch size.
pub fn noisy_mean<R: CryptoRng + ?Sized>(
    sum: &mut [f32],
    max_norm: f64,
    noise_multiplier: f64,
    expected_batch_size: f64,
    rng: &mut R,
) -> Result<(), DpError> {
    check_positive("clip norm", max_norm)?;
    check_non_negative("noise multiplier", noise_multiplier)?;
    check_positive("expected batch size", expected_batch_size)?;
    add_gaussian_noise(sum, noise_multiplier * max_norm, rng)?;
    let inverse = 1.0 / expected_batch_size;
    sum.iter_mut()
        .for_each(|s| *s = (f64::from(*s) * inverse) as f32);
    Ok(())
}
