//! The settings of record-level differential privacy in local training.

use crate::Error;

/// Record-level differential privacy for local training: DP-SGD (Abadi et al. 2016).
///
/// Every step Poisson-samples the rows (each independently, with probability
/// q = `batch_size` / rows; q = 1 for full batches), clips each sampled row's gradient to L2
/// norm `clip_norm`, sums them, adds N(0, (`noise_multiplier` × `clip_norm`)²) to every
/// coordinate and divides by the expected batch size q × rows. The optimiser (and any weight
/// decay or proximal term, which do not depend on the data) then works on that noisy gradient.
/// One call is `privacy::accountant::SampledGaussian` `{ sample_rate: q, noise_multiplier, steps }` for the
/// accountant; `TrainReport::privacy` carries it.
///
/// The guarantee covers the returned weights only, and only while the sample and the noise are
/// secret: they come from a `ChaCha8Rng` seeded with `train`'s `seed`, so whoever knows the
/// seed can recompute the noise and subtract it. The seed must come from a secret the
/// aggregator does not hold, never from a public plan seed alone.
///
/// ```
/// use learn::{DpSgd, ModelSpec, TrainConfig, synthetic, train};
/// use privacy::accountant::RdpAccountant;
///
/// let data = synthetic::logistic(1, 200, 5);
/// let spec = ModelSpec::LogisticRegression { inputs: 5 };
/// let cfg = TrainConfig {
///     epochs: 5,
///     batch_size: 20,
///     dp: Some(DpSgd { clip_norm: 1.0, noise_multiplier: 1.1 }),
///     ..TrainConfig::default()
/// };
/// let (_, report) = train(&spec, &spec.init(0), &data, &cfg, 7)?;
/// let event = report.privacy.expect("DP-SGD ran");
/// assert_eq!((event.sample_rate, event.steps), (0.1, 50));
/// let mut accountant = RdpAccountant::new();
/// accountant.compose(&event).expect("a valid event");
/// assert!(accountant.epsilon(1e-5).expect("a valid delta").epsilon.is_finite());
/// # Ok::<(), learn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpSgd {
    /// Clip norm C: each example's gradient is scaled down to at most this L2 norm; finite, > 0.
    pub clip_norm: f32,
    /// Noise multiplier z: the noise's standard deviation over C; finite, ≥ 0 (0 gives no
    /// privacy, only clipping).
    pub noise_multiplier: f32,
}

impl DpSgd {
    /// Checks the settings: a clip norm finite and positive, a noise multiplier finite and
    /// non-negative.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self) -> Result<(), Error> {
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return Err(Error::Config(format!(
                "dp.clip_norm must be finite and positive, got {}",
                self.clip_norm
            )));
        }
        if !(self.noise_multiplier.is_finite() && self.noise_multiplier >= 0.0) {
            return Err(Error::Config(format!(
                "dp.noise_multiplier must be finite and non-negative, got {}",
                self.noise_multiplier
            )));
        }
        Ok(())
    }
}
