//! Local training: mini-batch SGD or Adam with optional L2 and FedProx terms.

use std::ops::Range;

use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::metrics::logit_loss;
use crate::model::forward;
use crate::{Dataset, Error, ModelSpec, Weights};

/// Which optimiser takes the local steps.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// Plain stochastic gradient descent (no momentum).
    Sgd,
    /// Adam with beta1 = 0.9, beta2 = 0.999, eps = 1e-8; its state starts fresh on every call.
    Adam,
}

/// Hyper-parameters of one local training call.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Local epochs (passes over the data); at least 1.
    pub epochs: usize,
    /// Rows per optimiser step; 0 = full batch.
    pub batch_size: usize,
    /// Step size.
    pub learning_rate: f32,
    /// Which optimiser to use.
    pub optimizer: Optimizer,
    /// L2 penalty coefficient: adds `weight_decay / 2 * ||W||^2` over the weight matrices (not
    /// the biases) to the loss, i.e. `weight_decay * W` to their gradient (0 = none).
    pub weight_decay: f32,
    /// FedProx: adds `mu / 2 * ||w - w_global||^2` to the loss, `w_global` = the starting
    /// weights (0 = none).
    pub proximal_mu: f32,
    /// Optional cap on optimiser steps (FLamby-style "local steps"); `None` = epochs decide.
    /// Training stops at whichever of the two limits comes first.
    pub max_steps: Option<usize>,
}

impl Default for TrainConfig {
    /// One epoch of Adam, batches of 32, learning rate 0.01, no regularisation, no step cap.
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 32,
            learning_rate: 0.01,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            proximal_mu: 0.0,
            max_steps: None,
        }
    }
}

impl TrainConfig {
    fn check(&self) -> Result<(), Error> {
        if self.epochs == 0 || self.max_steps == Some(0) {
            return Err(Error::Config("training needs at least one step".into()));
        }
        for (name, value) in [
            ("learning_rate", self.learning_rate),
            ("weight_decay", self.weight_decay),
            ("proximal_mu", self.proximal_mu),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(Error::Config(format!(
                    "{name} must be finite and non-negative, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// Summary of one local training call.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Mean training loss (binary cross-entropy, without penalty terms) over the batches of the
    /// last epoch, each measured before its step; a capped last epoch counts only its steps.
    pub loss: f32,
    /// Number of training rows (the weight of this update in federated averaging).
    pub samples: usize,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// Train from `start` on `data`. Deterministic: same inputs + seed -> bit-identical output weights.
///
/// Rows are reshuffled every epoch with a `ChaCha8Rng` seeded from `seed` (not at all when one
/// batch holds every row). The network's gradients come from candle's autograd; the optimiser
/// update runs on the flat parameter vector. Weights that diverge are returned as they are:
/// check [`Weights::all_finite`].
pub fn train(
    spec: &ModelSpec,
    start: &Weights,
    data: &Dataset,
    cfg: &TrainConfig,
    seed: u64,
) -> Result<(Weights, TrainReport), Error> {
    spec.check(start, data)?;
    cfg.check()?;
    if data.is_empty() {
        return Err(Error::Dataset("cannot train on an empty dataset".into()));
    }
    let n = data.len();
    let batch = if cfg.batch_size == 0 {
        n
    } else {
        cfg.batch_size.min(n)
    };
    let batches_per_epoch = n.div_ceil(batch);
    let total_steps = cfg
        .epochs
        .saturating_mul(batches_per_epoch)
        .min(cfg.max_steps.unwrap_or(usize::MAX));

    let device = Device::Cpu;
    let x = Tensor::from_slice(&data.x, (n, data.features), &device)?;
    let params: Vec<Param> = start
        .parts()
        .into_iter()
        .map(|(name, shape, range)| Param {
            shape: shape.to_vec(),
            range,
            decays: name.ends_with(".weight"),
        })
        .collect();
    let anchor = start.values();
    let mut w = anchor.to_vec();
    let mut grad = vec![0f32; w.len()];
    let mut optimizer = OptimizerState::new(cfg, w.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let row_count = u32::try_from(n)
        .map_err(|_| Error::Dataset(format!("{n} rows are more than one call can train on")))?;
    let mut order: Vec<u32> = (0..row_count).collect();

    let mut steps = 0;
    let mut epoch_loss = 0f64;
    let mut epoch_rows = 0usize;
    while steps < total_steps {
        let (x_epoch, y_epoch) = if batch < n {
            order.shuffle(&mut rng);
            let index = Tensor::from_slice(&order, n, &device)?;
            let y = order.iter().map(|&i| data.y[i as usize]).collect();
            (x.index_select(&index, 0)?, y)
        } else {
            (x.clone(), data.y.clone())
        };
        epoch_loss = 0.0;
        epoch_rows = 0;
        for first in (0..n).step_by(batch) {
            if steps == total_steps {
                break;
            }
            let rows = batch.min(n - first);
            let xb = x_epoch.narrow(0, first, rows)?;
            let loss = gradient(&params, &w, &xb, &y_epoch[first..first + rows], &mut grad)?;
            epoch_loss += loss * rows as f64;
            epoch_rows += rows;
            for param in &params {
                let decay = if param.decays { cfg.weight_decay } else { 0.0 };
                for i in param.range.clone() {
                    grad[i] += decay * w[i] + cfg.proximal_mu * (w[i] - anchor[i]);
                }
            }
            optimizer.step(cfg.learning_rate, &mut w, &grad);
            steps += 1;
        }
    }
    let report = TrainReport {
        loss: (epoch_loss / epoch_rows as f64) as f32,
        samples: n,
        steps,
    };
    Ok((start.with_values(w)?, report))
}

/// One parameter tensor: its shape, its place in the flat vector, and whether L2 applies to it.
struct Param {
    shape: Vec<usize>,
    range: Range<usize>,
    decays: bool,
}

/// Mean cross-entropy of the batch at `w`, writing its gradient with respect to `w` into `grad`.
///
/// candle back-propagates through the network from the logits; the loss's own derivative
/// with respect to each logit, `(sigmoid(z) - y) / rows`, is supplied by differentiating the
/// surrogate `sum(z * r)` with `r` held constant at that value.
fn gradient(
    params: &[Param],
    w: &[f32],
    x: &Tensor,
    y: &[f32],
    grad: &mut [f32],
) -> Result<f64, Error> {
    let device = x.device();
    let vars = params
        .iter()
        .map(|p| Var::from_slice(&w[p.range.clone()], p.shape.as_slice(), device))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let z = forward(&tensors, x)?;
    let logits: Vec<f32> = z.flatten_all()?.to_vec1()?;
    let rows = y.len() as f32;
    let mut loss = 0f64;
    let residual: Vec<f32> = logits
        .iter()
        .zip(y)
        .map(|(&zi, &yi)| {
            loss += logit_loss(zi, yi);
            (sigmoid(zi) - yi) / rows
        })
        .collect();
    let residual = Tensor::from_vec(residual, (y.len(), 1), device)?;
    let grads = z.mul(&residual)?.sum_all()?.backward()?;
    for (var, p) in vars.iter().zip(params) {
        let out = &mut grad[p.range.clone()];
        match grads.get(var.as_tensor()) {
            Some(g) => out.copy_from_slice(&g.flatten_all()?.to_vec1::<f32>()?),
            None => out.fill(0.0),
        }
    }
    Ok(loss / f64::from(rows))
}

/// Logistic sigmoid.
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Optimiser state over the flat parameter vector.
enum OptimizerState {
    Sgd,
    Adam { m: Vec<f32>, v: Vec<f32>, t: i32 },
}

impl OptimizerState {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    fn new(cfg: &TrainConfig, len: usize) -> Self {
        match cfg.optimizer {
            Optimizer::Sgd => Self::Sgd,
            Optimizer::Adam => Self::Adam {
                m: vec![0.0; len],
                v: vec![0.0; len],
                t: 0,
            },
        }
    }

    /// One update of `w` against gradient `g`.
    fn step(&mut self, lr: f32, w: &mut [f32], g: &[f32]) {
        match self {
            Self::Sgd => {
                for (wi, gi) in w.iter_mut().zip(g) {
                    *wi -= lr * gi;
                }
            }
            Self::Adam { m, v, t } => {
                *t = t.saturating_add(1);
                let c1 = 1.0 - Self::BETA1.powi(*t);
                let c2 = 1.0 - Self::BETA2.powi(*t);
                for (((wi, gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                {
                    *mi = Self::BETA1 * *mi + (1.0 - Self::BETA1) * gi;
                    *vi = Self::BETA2 * *vi + (1.0 - Self::BETA2) * gi * gi;
                    *wi -= lr * (*mi / c1) / ((*vi / c2).sqrt() + Self::EPS);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate, synthetic};

    fn bits(w: &Weights) -> Vec<u32> {
        w.values().iter().map(|v| v.to_bits()).collect()
    }

    fn distance(a: &Weights, b: &Weights) -> f32 {
        a.values()
            .iter()
            .zip(b.values())
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let data = synthetic::logistic(3, 100, 6);
        let spec = ModelSpec::Mlp {
            inputs: 6,
            hidden: vec![8, 4],
        };
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let (a, ra) = train(&spec, &spec.init(1), &data, &cfg, 42).unwrap();
        let (b, rb) = train(&spec, &spec.init(1), &data, &cfg, 42).unwrap();
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(ra, rb);
        let (c, _) = train(&spec, &spec.init(1), &data, &cfg, 43).unwrap();
        assert_ne!(bits(&a), bits(&c), "the seed drives the shuffle");
    }

    #[test]
    fn logistic_regression_learns_separable_data() {
        // Label = x0 + x1 > 0, every row at least 0.3 from the boundary.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..40 {
            let a = (i % 8) as f32 - 3.5;
            let b = (i / 8) as f32 * 0.1 - 0.2;
            x.extend([a, b]);
            y.push(if a + b > 0.0 { 1.0 } else { 0.0 });
        }
        let data = Dataset::new(2, x, y).unwrap();
        let spec = ModelSpec::LogisticRegression { inputs: 2 };
        for optimizer in [Optimizer::Sgd, Optimizer::Adam] {
            let cfg = TrainConfig {
                epochs: 200,
                batch_size: 8,
                learning_rate: 0.1,
                optimizer,
                ..TrainConfig::default()
            };
            let (w, report) = train(&spec, &spec.init(0), &data, &cfg, 0).unwrap();
            let m = evaluate(&spec, &w, &data).unwrap();
            assert_eq!(m.accuracy, 1.0, "{optimizer:?}");
            assert!(report.loss < 0.1, "{optimizer:?}: {}", report.loss);
            assert_eq!(report.steps, 200 * 5);
        }
    }

    #[test]
    fn mlp_learns_xor() {
        let x = vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let data = Dataset::new(2, x, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
        let spec = ModelSpec::Mlp {
            inputs: 2,
            hidden: vec![16],
        };
        let cfg = TrainConfig {
            epochs: 500,
            batch_size: 0,
            learning_rate: 0.05,
            ..TrainConfig::default()
        };
        let (w, _) = train(&spec, &spec.init(2), &data, &cfg, 0).unwrap();
        assert_eq!(evaluate(&spec, &w, &data).unwrap().accuracy, 1.0);
    }

    #[test]
    fn sgd_step_matches_hand_computed_gradient() {
        // From zero weights every probability is 0.5, so the gradient is mean((0.5 - y) * [x, 1]).
        let data =
            Dataset::new(2, vec![1.0, 2.0, -3.0, 0.5, 2.0, -1.0], vec![1.0, 0.0, 0.0]).unwrap();
        let spec = ModelSpec::LogisticRegression { inputs: 2 };
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 0,
            learning_rate: 0.3,
            optimizer: Optimizer::Sgd,
            ..TrainConfig::default()
        };
        let (w, report) = train(&spec, &spec.init(0), &data, &cfg, 0).unwrap();
        let g = [
            (-0.5 * 1.0 + 0.5 * -3.0 + 0.5 * 2.0) / 3.0,
            (-0.5 * 2.0 + 0.5 * 0.5 - 0.5) / 3.0,
            (-0.5 + 0.5 + 0.5) / 3.0,
        ];
        for (wi, gi) in w.values().iter().zip(g) {
            assert!((wi + 0.3 * gi).abs() < 1e-6, "{wi} vs {}", -0.3 * gi);
        }
        assert!((report.loss - std::f32::consts::LN_2).abs() < 1e-6);
        assert_eq!(report.steps, 1);
    }

    #[test]
    fn mlp_gradient_matches_finite_differences() {
        let data = synthetic::logistic(9, 12, 3);
        let spec = ModelSpec::Mlp {
            inputs: 3,
            hidden: vec![5],
        };
        let start = spec.init(4);
        let params: Vec<Param> = start
            .parts()
            .into_iter()
            .map(|(_, shape, range)| Param {
                shape: shape.to_vec(),
                range,
                decays: false,
            })
            .collect();
        let x = Tensor::from_slice(&data.x, (12, 3), &Device::Cpu).unwrap();
        let mut grad = vec![0.0; start.len()];
        gradient(&params, start.values(), &x, &data.y, &mut grad).unwrap();
        let loss_at = |w: Vec<f32>| {
            evaluate(&spec, &start.with_values(w).unwrap(), &data)
                .unwrap()
                .loss
        };
        let h = 1e-3f32;
        for i in 0..start.len() {
            let mut up = start.values().to_vec();
            let mut down = up.clone();
            up[i] += h;
            down[i] -= h;
            let numeric = (loss_at(up) - loss_at(down)) / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(grad[i])).abs() < 2e-3,
                "parameter {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn proximal_term_pulls_towards_start() {
        let data = synthetic::logistic(5, 64, 8);
        let spec = ModelSpec::LogisticRegression { inputs: 8 };
        let start = spec.init(0);
        let run = |mu| {
            let cfg = TrainConfig {
                epochs: 30,
                batch_size: 0,
                learning_rate: 0.1,
                optimizer: Optimizer::Sgd,
                proximal_mu: mu,
                ..TrainConfig::default()
            };
            train(&spec, &start, &data, &cfg, 0).unwrap().0
        };
        let free = distance(&run(0.0), &start);
        let prox = distance(&run(5.0), &start);
        assert!(prox < 0.5 * free, "{prox} vs {free}");
    }

    #[test]
    fn weight_decay_shrinks_weights_but_not_bias() {
        let data = synthetic::logistic(5, 64, 8);
        let spec = ModelSpec::LogisticRegression { inputs: 8 };
        let start = spec.init(0).with_values(vec![1.0; 9]).unwrap();
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 0,
            learning_rate: 0.1,
            optimizer: Optimizer::Sgd,
            ..TrainConfig::default()
        };
        let decayed = TrainConfig {
            weight_decay: 2.0,
            ..cfg.clone()
        };
        let (plain, _) = train(&spec, &start, &data, &cfg, 0).unwrap();
        let (shrunk, _) = train(&spec, &start, &data, &decayed, 0).unwrap();
        for i in 0..8 {
            let diff = plain.values()[i] - shrunk.values()[i];
            assert!((diff - 0.1 * 2.0).abs() < 1e-6, "weight {i}: {diff}");
        }
        assert_eq!(plain.values()[8], shrunk.values()[8]);
    }

    #[test]
    fn max_steps_caps_optimiser_steps() {
        let data = synthetic::logistic(1, 100, 3);
        let spec = ModelSpec::LogisticRegression { inputs: 3 };
        let capped = TrainConfig {
            epochs: 10,
            batch_size: 30,
            max_steps: Some(6),
            ..TrainConfig::default()
        };
        let (_, report) = train(&spec, &spec.init(0), &data, &capped, 0).unwrap();
        assert_eq!((report.steps, report.samples), (6, 100));
        let epochs_decide = TrainConfig {
            max_steps: Some(1000),
            ..capped
        };
        let (_, report) = train(&spec, &spec.init(0), &data, &epochs_decide, 0).unwrap();
        assert_eq!(report.steps, 40);
    }

    #[test]
    fn invalid_training_inputs_are_rejected() {
        let data = synthetic::logistic(1, 10, 3);
        let spec = ModelSpec::LogisticRegression { inputs: 3 };
        let start = spec.init(0);
        for cfg in [
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            TrainConfig {
                max_steps: Some(0),
                ..TrainConfig::default()
            },
            TrainConfig {
                learning_rate: f32::NAN,
                ..TrainConfig::default()
            },
            TrainConfig {
                proximal_mu: -1.0,
                ..TrainConfig::default()
            },
        ] {
            assert!(matches!(
                train(&spec, &start, &data, &cfg, 0),
                Err(Error::Config(_))
            ));
        }
        let empty = Dataset::new(3, vec![], vec![]).unwrap();
        assert!(train(&spec, &start, &empty, &TrainConfig::default(), 0).is_err());
        let mut broken = data.clone();
        broken.x.pop();
        assert!(train(&spec, &start, &broken, &TrainConfig::default(), 0).is_err());
    }
}
