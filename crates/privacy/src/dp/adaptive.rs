//! Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021, "Differentially private
//! learning with adaptive clipping"): the clip norm tracks a target quantile γ of the clients'
//! update norms, from a privately estimated fraction of unclipped updates.
//!
//! Each client reports b_i − ½, where b_i = 1 when its update norm is at most C, plus its share
//! N(0, σ_b²/t) of the count noise, summed securely with the updates (sensitivity ½). The server
//! estimates b̄ = (Σ (b_i − ½) + noise)/m + ½ over the m contributors and sets
//! C ← C · exp(−η (b̄ − γ)) (geometric update). Spending σ_b on the count leaves the update the
//! noise multiplier z_Δ = (z^−2 − (2σ_b)^−2)^−1/2 for a total guarantee of noise multiplier z.

use rand::CryptoRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::DpError;
use super::error::{check_non_negative, check_positive};

/// The adaptive clip norm and its parameters. Serialises as its fields, checked again on
/// loading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AdaptiveClippingState", into = "AdaptiveClippingState")]
pub struct AdaptiveClipping {
    clip_norm: f64,
    target_quantile: f64,
    learning_rate: f64,
    count_noise_std: f64,
}

/// The serialised form of an [`AdaptiveClipping`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct AdaptiveClippingState {
    clip_norm: f64,
    target_quantile: f64,
    learning_rate: f64,
    count_noise_std: f64,
}

impl TryFrom<AdaptiveClippingState> for AdaptiveClipping {
    type Error = DpError;

    fn try_from(state: AdaptiveClippingState) -> Result<Self, Self::Error> {
        AdaptiveClipping::new(
            state.clip_norm,
            state.target_quantile,
            state.learning_rate,
            state.count_noise_std,
        )
    }
}

impl From<AdaptiveClipping> for AdaptiveClippingState {
    fn from(clipping: AdaptiveClipping) -> Self {
        AdaptiveClippingState {
            clip_norm: clipping.clip_norm,
            target_quantile: clipping.target_quantile,
            learning_rate: clipping.learning_rate,
            count_noise_std: clipping.count_noise_std,
        }
    }
}

impl AdaptiveClipping {
    /// Starts at `initial_clip_norm`, aiming at the `target_quantile` of update norms, with
    /// step `learning_rate` (η) and count noise `count_noise_std` (σ_b).
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] for a clip norm or learning rate that is not positive, a
    /// quantile outside [0, 1], or a negative count noise.
    pub fn new(
        initial_clip_norm: f64,
        target_quantile: f64,
        learning_rate: f64,
        count_noise_std: f64,
    ) -> Result<AdaptiveClipping, DpError> {
        check_positive("clip norm", initial_clip_norm)?;
        check_positive("clip learning rate", learning_rate)?;
        check_non_negative("count noise standard deviation", count_noise_std)?;
        if !(0.0..=1.0).contains(&target_quantile) {
            return Err(DpError::InvalidParameter {
                name: "target quantile",
                value: target_quantile,
                expected: "a fraction in [0, 1]",
            });
        }
        Ok(AdaptiveClipping {
            clip_norm: initial_clip_norm,
            target_quantile,
            learning_rate,
            count_noise_std,
        })
    }

    /// The current clip norm C.
    pub fn clip_norm(&self) -> f64 {
        self.clip_norm
    }

    /// Client side: b − ½ for an update of norm `update_norm` (before clipping), plus this
    /// client's share of the count noise when at least `min_contributors` contribute.
    pub fn client_report<R: CryptoRng + ?Sized>(
        &self,
        update_norm: f64,
        min_contributors: usize,
        rng: &mut R,
    ) -> f64 {
        let unclipped = if update_norm <= self.clip_norm {
            0.5
        } else {
            -0.5
        };
        let z: f64 = StandardNormal.sample(rng);
        unclipped + z * self.count_noise_std / (min_contributors.max(1) as f64).sqrt()
    }

    /// Server side: updates C from the securely summed reports of `contributors` clients and
    /// returns the new clip norm.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] for no contributors or a non-finite sum.
    pub fn update(&mut self, report_sum: f64, contributors: usize) -> Result<f64, DpError> {
        if contributors == 0 {
            return Err(DpError::InvalidParameter {
                name: "contributors",
                value: 0.0,
                expected: "at least 1",
            });
        }
        if !report_sum.is_finite() {
            return Err(DpError::InvalidParameter {
                name: "report sum",
                value: report_sum,
                expected: "a finite number",
            });
        }
        let unclipped_fraction = report_sum / contributors as f64 + 0.5;
        self.clip_norm *= (-self.learning_rate * (unclipped_fraction - self.target_quantile)).exp();
        Ok(self.clip_norm)
    }

    /// The noise multiplier left for the updates when the whole round must have noise
    /// multiplier `total_noise_multiplier` and the count uses σ_b = `count_noise_std`:
    /// z_Δ = (z^−2 − (2σ_b)^−2)^−1/2.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] when 2σ_b ≤ z (the count alone would spend the budget).
    pub fn update_noise_multiplier(
        total_noise_multiplier: f64,
        count_noise_std: f64,
    ) -> Result<f64, DpError> {
        check_positive("noise multiplier", total_noise_multiplier)?;
        check_positive("count noise standard deviation", count_noise_std)?;
        let remaining = total_noise_multiplier.powi(-2) - (2.0 * count_noise_std).powi(-2);
        if remaining <= 0.0 {
            return Err(DpError::InvalidParameter {
                name: "count noise standard deviation",
                value: count_noise_std,
                expected: "more than half the total noise multiplier",
            });
        }
        Ok(remaining.powf(-0.5))
    }
}
