//! The weighted-mean encoding, and aggregation rules applied to a securely summed mean.
//!
//! # Encoding
//!
//! Node i with `nᵢ` training samples and local weights `wᵢ` masks
//! `xᵢ = [nᵢ·(wᵢ − global)…, nᵢ]` ([`encode_update`]). The secure sum is
//! `[Σ nᵢ·Δᵢ…, Σ nᵢ]`, so the coordinator learns the contributors' total sample count and
//! their sample-weighted mean delta `Σ nᵢ·Δᵢ / Σ nᵢ` ([`weighted_mean_delta`]), i.e. the
//! FedAvg model `global + Σ nᵢ·Δᵢ / Σ nᵢ` ([`mean_model`]), and nothing about one hospital.
//! Deltas rather than weights keep the values small, which the fixed-point quantiser rewards.
//!
//! # Range and overflow
//!
//! The quantiser maps [−R, R] onto fixed point with scale
//! `s = ((2³¹ − 1)/N − 1/2) / R` for N participants, which is the largest scale for which the
//! sum of N values in [−R, R] cannot overflow Z_2³² (see [`privacy::secagg::Quantizer`]).
//! Every coordinate of `xᵢ` must therefore lie in [−R, R]: the count `nᵢ ≤ n_max` and each
//! `|nᵢ·Δᵢⱼ| ≤ n_max·D` where D bounds the per-coordinate change of a local model. Hence
//! [`weighted_mean_range`]`(n_max, D) = n_max · max(1, D)`. A node whose encoded update does
//! not fit is refused by [`super::SecureRoundClient::respond`] instead of being silently
//! clipped (a clipped count would corrupt the weights of everyone).
//!
//! Precision: each dequantised sum coordinate is within `m/(2s) ≈ m·N·R/2³²` of the exact sum
//! of m contributors; dividing by `Σ nᵢ` gives a mean-delta error of about
//! `m·N·R / (2³²·Σ nᵢ)`, which for equal sample counts and `R = n·D` is `N·D/2³²`
//! (2.3·10⁻⁸·D for N = 100) — below f32's own rounding of the weights. The total count is
//! recovered exactly by [`total_samples`] while `m/(2s) < 1/2`, i.e. roughly `N²·R < 2³¹`.
//! Sample counts are carried as f32 and so must stay below 2²⁴ per node and in total.

use crate::strategy::{AggregationError, RoundInput, Strategy, StrategyConfig};

use super::{SecureRoundError, SecureSum};

/// Largest sample count f32 carries exactly (2²⁴).
const MAX_EXACT_COUNT: u64 = 1 << 24;

/// The quantisation range for weighted means of nodes with at most `max_samples` training
/// samples each and local models that move each weight by at most `max_abs_delta` from the
/// global model in a round: `max_samples · max(1, max_abs_delta)` (see the module
/// documentation for the bound and the resulting precision).
///
/// # Errors
/// [`SecureRoundError::InvalidParams`] when `max_samples` is zero or above 2²⁴, or
/// `max_abs_delta` is not positive and finite.
pub fn weighted_mean_range(max_samples: u64, max_abs_delta: f64) -> Result<f64, SecureRoundError> {
    if max_samples == 0 || max_samples > MAX_EXACT_COUNT {
        return Err(SecureRoundError::InvalidParams(format!(
            "max_samples {max_samples} must be in 1..=2^24"
        )));
    }
    if !(max_abs_delta.is_finite() && max_abs_delta > 0.0) {
        return Err(SecureRoundError::InvalidParams(format!(
            "max_abs_delta {max_abs_delta} must be positive and finite"
        )));
    }
    Ok(max_samples as f64 * max_abs_delta.max(1.0))
}

/// What a node masks for a weighted mean: `[num_samples·(weights − global)…, num_samples]`
/// (one longer than the model), computed in f64 and rounded to f32 once.
///
/// # Errors
/// [`SecureRoundError::WrongLength`] when `weights` and `global` differ in length,
/// [`SecureRoundError::NonFinite`] for a NaN or infinite weight,
/// [`SecureRoundError::InvalidParams`] for a count above 2²⁴ (not exact in f32).
pub fn encode_update(
    global: &[f32],
    weights: &[f32],
    num_samples: u64,
) -> Result<Vec<f32>, SecureRoundError> {
    if weights.len() != global.len() {
        return Err(SecureRoundError::WrongLength {
            what: "local weights",
            expected: global.len(),
            got: weights.len(),
        });
    }
    if let Some(index) = global.iter().position(|v| !v.is_finite()) {
        return Err(SecureRoundError::NonFinite {
            what: "global weights",
            index,
        });
    }
    if let Some(index) = weights.iter().position(|v| !v.is_finite()) {
        return Err(SecureRoundError::NonFinite {
            what: "local weights",
            index,
        });
    }
    if num_samples > MAX_EXACT_COUNT {
        return Err(SecureRoundError::InvalidParams(format!(
            "sample count {num_samples} above 2^24 cannot be encoded exactly"
        )));
    }
    let n = num_samples as f64;
    let mut encoded: Vec<f32> = global
        .iter()
        .zip(weights)
        .map(|(&g, &w)| (n * (f64::from(w) - f64::from(g))) as f32)
        .collect();
    encoded.push(num_samples as f32);
    Ok(encoded)
}

/// The count coordinate (the last) of a sum of encoded updates.
fn count_of(sum: &[f32]) -> Result<f32, SecureRoundError> {
    let Some(&count) = sum.last() else {
        return Err(SecureRoundError::WrongLength {
            what: "secure sum",
            expected: 1,
            got: 0,
        });
    };
    if !count.is_finite() {
        return Err(SecureRoundError::NonFinite {
            what: "secure sum",
            index: sum.len() - 1,
        });
    }
    if count.round() < 1.0 {
        return Err(SecureRoundError::ZeroSamples { count });
    }
    Ok(count)
}

/// The total sample count of a sum of [`encode_update`] vectors: its last coordinate,
/// rounded to the nearest integer.
///
/// # Errors
/// [`SecureRoundError::WrongLength`] for an empty sum, [`SecureRoundError::NonFinite`] or
/// [`SecureRoundError::ZeroSamples`] for a count that is not a positive number.
pub fn total_samples(sum: &[f32]) -> Result<u64, SecureRoundError> {
    Ok(count_of(sum)?.round() as u64)
}

/// The sample-weighted mean delta from a sum of [`encode_update`] vectors: every coordinate
/// but the last divided by the last (the total count), in f64, rounded to f32.
///
/// # Errors
/// As [`total_samples`], and [`SecureRoundError::NonFinite`] for a non-finite result.
pub fn weighted_mean_delta(sum: &[f32]) -> Result<Vec<f32>, SecureRoundError> {
    let count = f64::from(count_of(sum)?);
    let deltas = &sum[..sum.len() - 1];
    deltas
        .iter()
        .enumerate()
        .map(|(index, &s)| {
            let delta = (f64::from(s) / count) as f32;
            if delta.is_finite() {
                Ok(delta)
            } else {
                Err(SecureRoundError::NonFinite {
                    what: "weighted mean delta",
                    index,
                })
            }
        })
        .collect()
}

/// The FedAvg model from a sum of [`encode_update`] vectors: `global + Σ nᵢ·Δᵢ / Σ nᵢ`, in
/// f64, rounded to f32.
///
/// # Errors
/// [`SecureRoundError::WrongLength`] unless `sum` is one longer than `global`; otherwise as
/// [`weighted_mean_delta`].
pub fn mean_model(global: &[f32], sum: &[f32]) -> Result<Vec<f32>, SecureRoundError> {
    if sum.len() != global.len() + 1 {
        return Err(SecureRoundError::WrongLength {
            what: "secure sum (model length + 1)",
            expected: global.len() + 1,
            got: sum.len(),
        });
    }
    let count = f64::from(count_of(sum)?);
    global
        .iter()
        .zip(sum)
        .enumerate()
        .map(|(index, (&g, &s))| {
            let weight = (f64::from(g) + f64::from(s) / count) as f32;
            if weight.is_finite() {
                Ok(weight)
            } else {
                Err(SecureRoundError::NonFinite {
                    what: "mean model",
                    index,
                })
            }
        })
        .collect()
}

/// Whether `strategy` can run on a securely aggregated round: what the rule declares
/// ([`Strategy::input`]). The FedAvg family (FedAvg, FedProx, FedAdam, FedYogi, FedAdagrad)
/// needs only the sample-weighted mean of the updates; the robust rules (FedMedian, trimmed
/// mean, Krum) need the individual updates, which secure aggregation hides. A configuration
/// that does not build cannot run at all.
pub fn supports_secure_aggregation(strategy: &StrategyConfig) -> bool {
    strategy
        .build()
        .is_ok_and(|rule| rule.input() == RoundInput::WeightedMean)
}

/// Applies `strategy` to a round whose sample-weighted mean model `mean_model` (over
/// `total_samples` samples) was computed by secure aggregation
/// ([`Strategy::aggregate_mean`]): for the FedAvg-family rules the result is that of
/// aggregating the individual updates, up to the error of `mean_model` (quantisation, and
/// its rounding to f32). The rule's server state (FedAdam's moments, ...) advances as usual.
///
/// # Errors
/// [`SecureRoundError::IncompatibleStrategy`] for a rule that needs the individual updates
/// (see [`supports_secure_aggregation`]), which would otherwise silently compute something
/// else; [`SecureRoundError::Aggregation`] when the rule fails (length mismatch, zero
/// samples, non-finite result).
pub fn aggregate_from_mean(
    strategy: &mut dyn Strategy,
    global: &[f32],
    mean_model: &[f32],
    total_samples: u64,
) -> Result<Vec<f32>, SecureRoundError> {
    match strategy.aggregate_mean(global, mean_model, total_samples) {
        Err(AggregationError::NeedsUpdates { rule }) => {
            Err(SecureRoundError::IncompatibleStrategy {
                rule: rule.to_owned(),
            })
        }
        other => Ok(other?),
    }
}

/// [`aggregate_from_mean`] on a finished round's sum of [`encode_update`] vectors: the next
/// global model.
///
/// # Errors
/// As [`mean_model`], [`total_samples`] and [`aggregate_from_mean`].
pub fn aggregate_secure_sum(
    strategy: &mut dyn Strategy,
    global: &[f32],
    sum: &SecureSum,
) -> Result<Vec<f32>, SecureRoundError> {
    let model = sum.mean_model(global)?;
    let total = sum.total_samples()?;
    aggregate_from_mean(strategy, global, &model, total)
}
