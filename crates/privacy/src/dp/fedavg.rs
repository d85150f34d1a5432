//! Client-level DP-FedAvg (McMahan et al. 2018, "Learning differentially private recurrent
//! language models"): each client's model delta is clipped to L2 norm C, and the sum of the
//! deltas gets Gaussian noise of standard deviation z·C.
//!
//! # Distributed noise
//!
//! With secure aggregation nobody sees an individual delta, and nobody may see the un-noised sum
//! either, so the noise cannot be added by the server. Each client adds its share,
//! N(0, z²C²/t), before quantising and masking, where t = `min_contributors`, the fewest
//! contributions the round accepts (the secure-aggregation threshold). The m ≥ t shares in the
//! sum add up to N(0, m·z²C²/t), at least the N(0, z²C²) the accountant assumes.
//!
//! Caveats: (1) with fewer than t contributions the noise would fall short, which is why t must
//! be the round's minimum: a round that ends below it must fail (secure aggregation does);
//! (2) m > t over-noises by √(m/t), the price of tolerating dropouts; (3) a coalition of c
//! clients that pools its own noise can subtract it, leaving (m − c)·z²C²/t: to keep the full
//! guarantee against c colluders, set t to (the expected contributors − c);
//! (4) the noise is continuous and then quantised (see [`super::add_gaussian_noise`]).

use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use super::error::{check_non_negative, check_positive};
use super::{Clipping, DpError, add_gaussian_noise, clip_l2};
use crate::accountant::SampledGaussian;

/// Per-coordinate noise standard deviations covered by [`DpFedAvg::quantization_range`]
/// (a larger value occurs with probability about 10^−15 per coordinate).
const RANGE_STD_DEVS: f64 = 8.0;

/// DP-FedAvg parameters for one training plan.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpFedAvg {
    /// Clip norm C of each client's delta.
    pub clip_norm: f64,
    /// Noise multiplier z: the sum's noise has standard deviation z·C.
    pub noise_multiplier: f64,
    /// Fewest contributions a round accepts (t); each client adds 1/t of the noise variance.
    pub min_contributors: usize,
}

impl DpFedAvg {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] for a clip norm that is not positive, a negative noise
    /// multiplier, or no minimum of contributors.
    pub fn validate(&self) -> Result<(), DpError> {
        check_positive("clip norm", self.clip_norm)?;
        check_non_negative("noise multiplier", self.noise_multiplier)?;
        if self.min_contributors == 0 {
            return Err(DpError::InvalidParameter {
                name: "min contributors",
                value: 0.0,
                expected: "at least 1",
            });
        }
        Ok(())
    }

    /// Standard deviation of the noise each client adds: z·C/√t.
    pub fn client_noise_std(&self) -> f64 {
        self.noise_multiplier * self.clip_norm / (self.min_contributors as f64).sqrt()
    }

    /// A quantisation range R (see [`crate::secagg::Quantizer`]) that holds every coordinate of
    /// a privatised delta: C plus 8 standard deviations of a client's noise.
    pub fn quantization_range(&self) -> f64 {
        self.clip_norm + RANGE_STD_DEVS * self.client_noise_std()
    }

    /// Client side: clips `delta` (the update minus the global model) to C and adds this
    /// client's share of the noise. Returns what clipping did (its norm feeds adaptive
    /// clipping).
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] for invalid parameters; [`DpError::NonFinite`] for a NaN
    /// or infinite coordinate.
    pub fn privatize_delta<R: CryptoRng + ?Sized>(
        &self,
        delta: &mut [f32],
        rng: &mut R,
    ) -> Result<Clipping, DpError> {
        self.validate()?;
        let clipping = clip_l2(delta, self.clip_norm)?;
        add_gaussian_noise(delta, self.client_noise_std(), rng)?;
        Ok(clipping)
    }

    /// The accounting event of `rounds` rounds in which each client takes part with
    /// probability `client_sample_rate` (1 when every client joins every round).
    pub fn accounting_event(&self, client_sample_rate: f64, rounds: u64) -> SampledGaussian {
        SampledGaussian {
            sample_rate: client_sample_rate,
            noise_multiplier: self.noise_multiplier,
            steps: rounds,
        }
    }
}
