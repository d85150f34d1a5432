//! Evaluation: binary cross-entropy and accuracy, pooled across sites.

#[cfg(feature = "candle")]
use crate::model::logits;
#[cfg(feature = "candle")]
use crate::{Dataset, Error, ModelSpec, Weights};

/// Evaluation result of one site (or of several, pooled).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Mean binary cross-entropy.
    pub loss: f64,
    /// Fraction of rows classified correctly at threshold 0.5.
    pub accuracy: f64,
    /// Number of rows evaluated.
    pub samples: u64,
}

impl Metrics {
    /// Sample-weighted combination of several sites' metrics (all zero when there are no samples).
    pub fn pooled(parts: &[Metrics]) -> Metrics {
        let samples: u64 = parts.iter().map(|m| m.samples).sum();
        if samples == 0 {
            return Metrics {
                loss: 0.0,
                accuracy: 0.0,
                samples: 0,
            };
        }
        let weighted = |f: fn(&Metrics) -> f64| {
            parts.iter().map(|m| f(m) * m.samples as f64).sum::<f64>() / samples as f64
        };
        Metrics {
            loss: weighted(|m| m.loss),
            accuracy: weighted(|m| m.accuracy),
            samples,
        }
    }
}

/// Binary cross-entropy (mean) and accuracy at threshold 0.5 of `weights` on `data`.
///
/// A row is predicted positive when its probability exceeds 0.5 (its logit is above 0).
/// An empty dataset gives all-zero metrics with `samples: 0`.
#[cfg(feature = "candle")]
pub fn evaluate(spec: &ModelSpec, weights: &Weights, data: &Dataset) -> Result<Metrics, Error> {
    spec.check(weights, data)?;
    if data.is_empty() {
        return Ok(Metrics::pooled(&[]));
    }
    let z = logits(weights, data)?;
    let n = data.len() as f64;
    let loss = z
        .iter()
        .zip(&data.y)
        .map(|(&z, &y)| logit_loss(z, y))
        .sum::<f64>()
        / n;
    let correct = z
        .iter()
        .zip(&data.y)
        .filter(|&(&z, &y)| (z > 0.0) == (y > 0.5))
        .count();
    Ok(Metrics {
        loss,
        accuracy: correct as f64 / n,
        samples: data.len() as u64,
    })
}

/// Binary cross-entropy of label `y` given logit `z`, computed stably as
/// `max(z, 0) - z*y + ln(1 + exp(-|z|))`.
#[cfg(feature = "candle")]
pub(crate) fn logit_loss(z: f32, y: f32) -> f64 {
    let (z, y) = (f64::from(z), f64::from(y));
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

#[cfg(all(test, feature = "candle"))]
mod tests {
    use super::*;

    #[test]
    fn evaluate_matches_hand_computed_loss() {
        let spec = ModelSpec::LogisticRegression { inputs: 2 };
        // logit = 1*x0 - 2*x1 + 0.5
        let w = Weights::new(spec.layout(), vec![1.0, -2.0, 0.5]).unwrap();
        let data = Dataset::new(
            2,
            vec![1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 0.0, 0.0],
            vec![1.0, 1.0, 0.0, 0.0],
        )
        .unwrap();
        let logits = [1.5f64, -1.5, -1.5, 0.5];
        let labels = [1.0f64, 1.0, 0.0, 0.0];
        let expected: f64 = logits
            .iter()
            .zip(labels)
            .map(|(&z, y)| {
                let p = 1.0 / (1.0 + (-z).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 4.0;
        let m = evaluate(&spec, &w, &data).unwrap();
        assert!((m.loss - expected).abs() < 1e-9, "{} vs {expected}", m.loss);
        // Correct: row 0 (1.5 -> 1), row 2 (-1.5 -> 0); wrong: row 1, row 3.
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.samples, 4);
    }

    #[test]
    fn logit_loss_is_stable_for_extreme_logits() {
        assert!((logit_loss(100.0, 1.0)).abs() < 1e-30);
        assert!((logit_loss(-100.0, 1.0) - 100.0).abs() < 1e-9);
        assert!((logit_loss(0.0, 0.0) - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn pooled_metrics_weight_sites_by_samples() {
        let a = Metrics {
            loss: 1.0,
            accuracy: 0.5,
            samples: 10,
        };
        let b = Metrics {
            loss: 4.0,
            accuracy: 1.0,
            samples: 30,
        };
        let p = Metrics::pooled(&[a, b]);
        assert_eq!(p.samples, 40);
        assert!((p.loss - 3.25).abs() < 1e-12);
        assert!((p.accuracy - 0.875).abs() < 1e-12);
        assert_eq!(Metrics::pooled(&[]).samples, 0);
    }

    #[test]
    fn evaluate_on_empty_data_has_zero_samples() {
        let spec = ModelSpec::LogisticRegression { inputs: 2 };
        let empty = Dataset::new(2, vec![], vec![]).unwrap();
        assert_eq!(evaluate(&spec, &spec.init(0), &empty).unwrap().samples, 0);
    }
}
