//! Client-level DP-FedAvg under secure aggregation: each hospital's whole
//! update is clipped to norm C and carries its share of Gaussian noise before
//! it is masked, so the coordinator only ever unmasks a noised sum and no
//! party sees the un-noised one (see [`privacy::dp::DpFedAvg`] for the
//! distributed-noise argument and its caveats).
//!
//! Under client-level DP the mean is unweighted: a node masks
//! `[clip(Δ) + noise…, 1]` (and, with adaptive clipping, its noisy
//! "was I clipped" report after the count), so one hospital's influence on the
//! sum is bounded by C whatever its size.
//!
//! # Accounting
//!
//! A round is a Gaussian mechanism on the sum with noise multiplier z (the
//! update part z_Δ and the adaptive-clipping count together, Andrew et al.
//! 2021, section 3). For one hospital joining or leaving (client level) the
//! sum moves by at most C: noise multiplier z, sampling rate 1 (every
//! participant joins every round). For one record of a hospital changing
//! (record level, what the node's budget and the ledger's epsilon count), the
//! hospital's clipped delta may move anywhere in the ball of radius C, so the
//! sum moves by at most 2C: noise multiplier z/2.

use privacy::accountant::{EpsilonBound, RdpAccountant, SampledGaussian};
use privacy::dp::{AdaptiveClipping, DpError, DpFedAvg};
use rand::{CryptoRng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::secure_round::{SecureRoundError, encode_update};

/// Client-level differential privacy of a plan (requires secure aggregation).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientDp {
    /// Clip norm C of each hospital's model delta (the starting value under adaptive clipping).
    pub clip_norm: f64,
    /// Noise multiplier z of the round's sum (update and clipping count together).
    pub noise_multiplier: f64,
    /// Adapt C each round towards a quantile of the update norms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveClip>,
}

/// Adaptive clipping parameters (Andrew et al., "Differentially private learning with
/// adaptive clipping", NeurIPS 2021).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveClip {
    /// Fraction of updates that should go unclipped (γ).
    pub target_quantile: f64,
    /// Geometric step of the clip norm (η).
    pub learning_rate: f64,
    /// Noise standard deviation of the summed clipping reports (σ_b).
    pub count_noise_std: f64,
}

/// A node's privatised update.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivatizedUpdate {
    /// `global + clip(Δ) + noise`: what the node commits to in its contribution.
    pub weights: Vec<f32>,
    /// What it masks: `[clip(Δ) + noise…, 1]`, plus its clipping report when adaptive.
    pub encoded: Vec<f32>,
}

impl ClientDp {
    /// Checks the parameters for rounds of at least `min_contributors` hospitals.
    ///
    /// # Errors
    /// A message naming the bad parameter.
    pub fn validate(&self, min_contributors: usize) -> Result<(), String> {
        self.mechanism(self.clip_norm, min_contributors)?
            .validate()
            .map_err(|e| e.to_string())?;
        if self.noise_multiplier <= 0.0 {
            return Err("client_dp.noise_multiplier must be positive".into());
        }
        self.initial_clipping()
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The noise multiplier of the update part: z itself, or what adaptive
    /// clipping's count leaves of it.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] when the count noise would spend the whole budget.
    pub fn update_noise_multiplier(&self) -> Result<f64, DpError> {
        match self.adaptive {
            None => Ok(self.noise_multiplier),
            Some(a) => {
                AdaptiveClipping::update_noise_multiplier(self.noise_multiplier, a.count_noise_std)
            }
        }
    }

    /// The clipping state a plan starts from (None without adaptive clipping).
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] for invalid adaptive parameters.
    pub fn initial_clipping(&self) -> Option<Result<AdaptiveClipping, DpError>> {
        self.clipping_at(self.clip_norm)
    }

    /// Adaptive clipping at clip norm `clip_norm` (None without adaptive clipping).
    fn clipping_at(&self, clip_norm: f64) -> Option<Result<AdaptiveClipping, DpError>> {
        self.adaptive.map(|a| {
            AdaptiveClipping::new(
                clip_norm,
                a.target_quantile,
                a.learning_rate,
                a.count_noise_std,
            )
        })
    }

    /// Coordinates masked after the count: the clipping report when adaptive.
    pub fn extra_coordinates(&self) -> usize {
        usize::from(self.adaptive.is_some())
    }

    /// The largest clip norm whose privatised deltas fit the quantisation range `range`
    /// (C plus 8 noise deviations per coordinate, see [`DpFedAvg::quantization_range`]).
    pub fn max_clip_norm(&self, range: f64, min_contributors: usize) -> Result<f64, String> {
        let at_one = self.mechanism(1.0, min_contributors)?.quantization_range();
        Ok(range / at_one)
    }

    /// The record-level accounting event of one round (noise multiplier z/2, see the module
    /// documentation).
    pub fn record_level_event(&self) -> SampledGaussian {
        SampledGaussian {
            sample_rate: 1.0,
            noise_multiplier: self.noise_multiplier / 2.0,
            steps: 1,
        }
    }

    /// Client-level epsilon of `rounds` rounds at `delta` (noise multiplier z, every
    /// hospital in every round).
    ///
    /// # Errors
    /// A message when the accountant refuses the parameters.
    pub fn client_level_epsilon(&self, rounds: u64, delta: f64) -> Result<EpsilonBound, String> {
        let mut accountant = RdpAccountant::new();
        accountant
            .compose(&SampledGaussian {
                sample_rate: 1.0,
                noise_multiplier: self.noise_multiplier,
                steps: rounds,
            })
            .map_err(|e| e.to_string())?;
        accountant.epsilon(delta).map_err(|e| e.to_string())
    }

    fn mechanism(&self, clip_norm: f64, min_contributors: usize) -> Result<DpFedAvg, String> {
        Ok(DpFedAvg {
            clip_norm,
            noise_multiplier: self.update_noise_multiplier().map_err(|e| e.to_string())?,
            min_contributors,
        })
    }

    /// Node side: clip the delta of `weights` from `global` to `clip_norm`, add this node's
    /// share of the noise for rounds of at least `min_contributors`, and encode it for
    /// secure aggregation with weight 1 (and the clipping report when adaptive).
    ///
    /// # Errors
    /// [`SecureRoundError::InvalidParams`] for invalid parameters or a non-finite update.
    pub fn privatize<R: CryptoRng + ?Sized>(
        &self,
        clip_norm: f64,
        min_contributors: usize,
        global: &[f32],
        weights: &[f32],
        rng: &mut R,
    ) -> Result<PrivatizedUpdate, SecureRoundError> {
        let invalid = |e: String| SecureRoundError::InvalidParams(format!("client DP: {e}"));
        if weights.len() != global.len() {
            return Err(SecureRoundError::WrongLength {
                what: "local weights",
                expected: global.len(),
                got: weights.len(),
            });
        }
        let mechanism = self
            .mechanism(clip_norm, min_contributors)
            .map_err(invalid)?;
        let mut delta: Vec<f32> = weights.iter().zip(global).map(|(w, g)| w - g).collect();
        let clipping = mechanism
            .privatize_delta(&mut delta, rng)
            .map_err(|e| invalid(e.to_string()))?;
        let noised: Vec<f32> = global.iter().zip(&delta).map(|(g, d)| g + d).collect();
        let mut encoded = encode_update(global, &noised, 1)?;
        if let Some(state) = self.clipping_at(clip_norm) {
            let state = state.map_err(|e| invalid(e.to_string()))?;
            let report = state.client_report(clipping.norm, min_contributors, rng);
            encoded.push(report as f32);
        }
        Ok(PrivatizedUpdate {
            weights: noised,
            encoded,
        })
    }
}

/// The generator of a node's client-DP noise in a round: seeded from the node's own
/// secret, so that the coordinator cannot recompute and subtract the noise, yet a node
/// that replays a round draws the same noise.
pub fn node_noise_rng(secret: &[u8; 32], plan_id: &str, round: u32) -> ChaCha20Rng {
    let mut bytes = b"cohort client-dp noise\0".to_vec();
    bytes.extend_from_slice(secret);
    bytes.extend_from_slice(plan_id.as_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    ChaCha20Rng::from_seed(crate::sha256(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dp(adaptive: bool) -> ClientDp {
        ClientDp {
            clip_norm: 1.0,
            noise_multiplier: 1.0,
            adaptive: adaptive.then_some(AdaptiveClip {
                target_quantile: 0.5,
                learning_rate: 0.2,
                count_noise_std: 2.0,
            }),
        }
    }

    #[test]
    fn a_large_update_is_clipped_then_noised_and_masked_with_weight_one() {
        let global = vec![0.0f32; 400];
        let weights = vec![10.0f32; 400]; // norm 200
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let p = dp(false)
            .privatize(1.0, 4, &global, &weights, &mut rng)
            .unwrap();
        assert_eq!(p.encoded.len(), 401);
        assert_eq!(p.encoded[400], 1.0);
        // Clipped to norm 1 (each coordinate 0.05) plus noise of deviation 1/√4 = 0.5.
        let mean: f64 = p.weights.iter().map(|&w| f64::from(w)).sum::<f64>() / 400.0;
        let var: f64 = p
            .weights
            .iter()
            .map(|&w| (f64::from(w) - mean).powi(2))
            .sum::<f64>()
            / 399.0;
        assert!((mean - 0.05).abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.06, "deviation {}", var.sqrt());
        assert_eq!(&p.encoded[..400], &p.weights[..]);
    }

    #[test]
    fn adaptive_clipping_appends_the_noisy_report() {
        let global = vec![0.0f32; 3];
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let small = dp(true).privatize(1.0, 1, &global, &[0.1, 0.0, 0.0], &mut rng);
        assert_eq!(small.unwrap().encoded.len(), 5);
        // With the count noise the report is +-1/2 plus N(0, 2^2): its mean over many draws
        // tells clipped (-1/2) from unclipped (+1/2).
        let mean_report = |w: [f32; 3]| {
            let mut rng = ChaCha20Rng::seed_from_u64(3);
            (0..4000)
                .map(|_| {
                    let p = dp(true).privatize(1.0, 1, &global, &w, &mut rng).unwrap();
                    f64::from(p.encoded[4])
                })
                .sum::<f64>()
                / 4000.0
        };
        assert!((mean_report([0.1, 0.0, 0.0]) - 0.5).abs() < 0.12);
        assert!((mean_report([5.0, 0.0, 0.0]) + 0.5).abs() < 0.12);
    }

    #[test]
    fn record_level_accounting_halves_the_noise_multiplier() {
        let e = dp(false).record_level_event();
        assert_eq!(e.noise_multiplier, 0.5);
        assert_eq!(e.sample_rate, 1.0);
        // Client level is cheaper than record level for the same mechanism.
        let client = dp(false).client_level_epsilon(10, 1e-5).unwrap().epsilon;
        let mut record = RdpAccountant::new();
        for _ in 0..10 {
            record.compose(&e).unwrap();
        }
        assert!(record.epsilon(1e-5).unwrap().epsilon > client);
    }

    #[test]
    fn the_count_noise_cannot_take_the_whole_budget() {
        let mut bad = dp(true);
        bad.adaptive.as_mut().unwrap().count_noise_std = 0.4;
        assert!(bad.validate(3).is_err());
        assert!(dp(true).validate(3).is_ok());
        assert!(dp(true).update_noise_multiplier().unwrap() > 1.0);
    }

    #[test]
    fn the_clip_norm_is_bounded_by_the_quantisation_range() {
        let d = dp(false);
        let c = d.max_clip_norm(100.0, 4).unwrap();
        // C + 8·z·C/√4 = 5C must fit in 100.
        assert!((c - 20.0).abs() < 1e-9);
    }
}
