//! Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
//! "Rényi Differential Privacy of the Sampled Gaussian Mechanism").
//!
//! With sampling rate q and noise multiplier σ, one step has RDP ε(α) = ln(A_α)/(α − 1), where
//! A_α = E_{z∼N(0,σ²)} [((1 − q) + q·e^{(2z − 1)/(2σ²)})^α].
//!
//! - Integer α: the binomial expansion is exact,
//!   A_α = Σ_{k=0}^{α} C(α,k) (1 − q)^{α−k} q^k e^{(k² − k)/(2σ²)}.
//! - Fractional α: the integral is split at z₀ = σ² ln(1/q − 1) + 1/2, where the two terms of
//!   the sum are equal, and each side is expanded with the generalised binomial series in the
//!   smaller term (Section 3.3 of the paper):
//!   A_α = Σ_k C(α,k) [ q^k (1−q)^{α−k} e^{(k²−k)/(2σ²)} ½ erfc((k − z₀)/(√2σ))
//!   \+ q^{α−k} (1−q)^k e^{((α−k)²−(α−k))/(2σ²)} ½ erfc((z₀ − (α−k))/(√2σ)) ].
//!   The coefficients C(α,k) change sign past k = α. Like Google's dp-accounting 0.6.0 (the
//!   project's reference), the terms are summed in absolute value, which bounds A_α from
//!   above: a sound, slightly conservative RDP (the signed series, as Opacus sums it, is exact
//!   and up to a few per cent lower at orders near 1; ε moves by about 10^−4). Summing stops
//!   once both terms of an index are decreasing and below e^−30 times the running total; if
//!   that takes more than 1000 terms the order is given no finite bound and the conversion
//!   skips it.
//!
//! q = 1 is the plain Gaussian mechanism, ε(α) = α/(2σ²); q = 0 costs nothing; σ = 0 has no
//! finite bound.

use serde::{Deserialize, Serialize};

use super::AccountantError;
use super::log_math::{log_add, log_erfc};

/// Most terms of the fractional-order series before the order is given up.
const MAX_SERIES_TERMS: u32 = 1000;
/// A term below e^this ends the fractional-order series.
const SERIES_CUTOFF: f64 = -30.0;

/// `steps` compositions of the Poisson-subsampled Gaussian mechanism: each record (or client)
/// is in a step's batch with probability `sample_rate`, and the sum of the batch's clipped
/// contributions gets Gaussian noise of standard deviation `noise_multiplier` × clip norm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampledGaussian {
    /// Sampling rate q, in [0, 1] (1: no subsampling).
    pub sample_rate: f64,
    /// Noise multiplier σ (noise standard deviation over sensitivity), at least 0.
    pub noise_multiplier: f64,
    /// Number of steps.
    pub steps: u64,
}

impl SampledGaussian {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] for q outside [0, 1] or σ negative or not finite.
    pub fn validate(&self) -> Result<(), AccountantError> {
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(AccountantError::InvalidParameter {
                name: "sample rate",
                value: self.sample_rate,
                expected: "a probability in [0, 1]",
            });
        }
        if !(self.noise_multiplier.is_finite() && self.noise_multiplier >= 0.0) {
            return Err(AccountantError::InvalidParameter {
                name: "noise multiplier",
                value: self.noise_multiplier,
                expected: "a finite number, at least 0",
            });
        }
        Ok(())
    }

    /// RDP at `order` (> 1) of all the steps together: `steps` × the RDP of one step
    /// (+∞ where there is no finite bound). Assumes [`validate`](Self::validate) passed.
    pub fn rdp(&self, order: f64) -> f64 {
        if self.steps == 0 || self.sample_rate == 0.0 {
            return 0.0;
        }
        let (q, sigma) = (self.sample_rate, self.noise_multiplier);
        let per_step = if sigma == 0.0 {
            f64::INFINITY
        } else if q == 1.0 {
            order / (2.0 * sigma * sigma)
        } else if order.fract() == 0.0 {
            log_a_integer(q, sigma, order) / (order - 1.0)
        } else {
            log_a_fractional(q, sigma, order) / (order - 1.0)
        };
        per_step * self.steps as f64
    }
}

/// ln |C(α, k+1)| from ln |C(α, k)|, for the generalised binomial coefficient.
fn next_log_abs_binomial(log_abs: f64, alpha: f64, k: f64) -> f64 {
    log_abs + ((alpha - k) / (k + 1.0)).abs().ln()
}

/// ln A_α for integer α ≥ 2 (binomial expansion), 0 < q < 1.
fn log_a_integer(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (log_q, log_1mq) = (q.ln(), (-q).ln_1p());
    let two_var = 2.0 * sigma * sigma;
    let mut log_a = f64::NEG_INFINITY;
    let mut log_binomial = 0.0;
    let mut k = 0.0;
    while k <= alpha {
        let term = log_binomial + k * log_q + (alpha - k) * log_1mq + (k * k - k) / two_var;
        log_a = log_add(log_a, term);
        log_binomial = next_log_abs_binomial(log_binomial, alpha, k);
        k += 1.0;
    }
    log_a
}

/// ln of an upper bound on A_α for fractional α > 1, 0 < q < 1: the two-sided series with
/// every term in absolute value; +∞ when it does not converge.
fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (log_q, log_1mq) = (q.ln(), (-q).ln_1p());
    let two_var = 2.0 * sigma * sigma;
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let erfc_scale = std::f64::consts::SQRT_2 * sigma;
    let half = 0.5f64.ln();
    let mut total = f64::NEG_INFINITY;
    let (mut previous_lower, mut previous_upper) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut log_binomial = 0.0;
    for index in 0..MAX_SERIES_TERMS {
        let k = f64::from(index);
        let j = alpha - k;
        let lower = log_binomial
            + k * log_q
            + j * log_1mq
            + (k * k - k) / two_var
            + half
            + log_erfc((k - z0) / erfc_scale);
        let upper = log_binomial
            + j * log_q
            + k * log_1mq
            + (j * j - j) / two_var
            + half
            + log_erfc((z0 - j) / erfc_scale);
        total = log_add(total, log_add(lower, upper));
        let decreasing = lower < previous_lower && upper < previous_upper;
        if decreasing && lower.max(upper) < total + SERIES_CUTOFF {
            return total;
        }
        (previous_lower, previous_upper) = (lower, upper);
        log_binomial = next_log_abs_binomial(log_binomial, alpha, k);
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_step(q: f64, sigma: f64) -> SampledGaussian {
        SampledGaussian {
            sample_rate: q,
            noise_multiplier: sigma,
            steps: 1,
        }
    }

    #[test]
    fn full_sampling_is_the_gaussian_mechanism() {
        assert_eq!(one_step(1.0, 2.0).rdp(3.0), 3.0 / 8.0);
    }

    #[test]
    fn no_sampling_or_no_steps_cost_nothing() {
        assert_eq!(one_step(0.0, 1.0).rdp(2.5), 0.0);
        assert_eq!(
            SampledGaussian {
                steps: 0,
                ..one_step(0.5, 1.0)
            }
            .rdp(2.5),
            0.0
        );
    }

    #[test]
    fn no_noise_has_no_finite_bound() {
        assert_eq!(one_step(0.5, 0.0).rdp(2.0), f64::INFINITY);
    }

    #[test]
    fn fractional_series_agrees_with_integer_expansion_near_integers() {
        // RDP is continuous in α: α = 3 ± 1e−6 through the series vs α = 3 exactly.
        let exact = one_step(0.1, 1.5).rdp(3.0);
        for alpha in [3.0 - 1e-6, 3.0 + 1e-6] {
            let series = one_step(0.1, 1.5).rdp(alpha);
            assert!((series - exact).abs() < 1e-5 * exact, "{series} vs {exact}");
        }
    }

    #[test]
    fn invalid_parameters_are_refused() {
        assert!(one_step(1.5, 1.0).validate().is_err());
        assert!(one_step(0.5, -1.0).validate().is_err());
        assert!(one_step(f64::NAN, 1.0).validate().is_err());
        assert!(one_step(0.5, f64::INFINITY).validate().is_err());
    }
}
