//! Local training: mini-batch SGD or Adam with optional L2 and FedProx terms, and optional
//! record-level differential privacy (DP-SGD).

use std::ops::Range;

use candle_core::{Device, Tensor, Var};
use privacy::accountant::SampledGaussian;
use privacy::dp::{clip_and_sum, noisy_mean, poisson_sample};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::metrics::logit_loss;
use crate::model::forward;
use crate::per_example::{per_example_gradients, sigmoid};
use crate::{Dataset, DpSgd, Error, ModelSpec, Weights};

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
    /// Local epochs (passes over the data); at least 1. With DP-SGD an epoch is round(1/q)
    /// steps, one pass over the data in expectation.
    pub epochs: usize,
    /// Rows per optimiser step; 0 = full batch. With DP-SGD, the expected rows per step.
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
    /// Train with DP-SGD instead of shuffled mini-batches; `None` (the default, and what a
    /// missing field reads as) = no differential privacy. Left out of the JSON when `None`, so
    /// configurations without it serialise as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpSgd>,
}

impl Default for TrainConfig {
    /// One epoch of Adam, batches of 32, learning rate 0.01, no regularisation, no step cap,
    /// no differential privacy.
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 32,
            learning_rate: 0.01,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            proximal_mu: 0.0,
            max_steps: None,
            dp: None,
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
        self.dp.as_ref().map_or(Ok(()), DpSgd::check)
    }
}

/// Summary of one local training call.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Mean training loss (binary cross-entropy, without penalty terms) over the batches of the
    /// last epoch, each measured before its step; a capped last epoch counts only its steps.
    /// With DP-SGD: over the rows sampled in the last epoch (NaN if none was), and not covered
    /// by the privacy guarantee.
    pub loss: f32,
    /// Number of training rows (the weight of this update in federated averaging).
    pub samples: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// With DP-SGD, the mechanism that ran (sampling rate, noise multiplier, steps), for the
    /// caller's privacy accountant; `None` without it.
    pub privacy: Option<SampledGaussian>,
}

/// Train from `start` on `data`. Deterministic: same inputs + seed -> bit-identical output weights.
///
/// Without DP, rows are reshuffled every epoch with a `ChaCha8Rng` seeded from `seed` (not at
/// all when one batch holds every row). With [`TrainConfig::dp`], the same generator draws
/// DP-SGD's Poisson samples and Gaussian noise (see [`DpSgd`], and keep that seed secret).
/// The network's gradients come from candle's autograd (per example, from a batched backward
/// pass, with DP); the optimiser update runs on the flat parameter vector. Weights that
/// diverge are returned as they are: check [`Weights::all_finite`] (DP-SGD instead fails with
/// [`Error::Privacy`] when a gradient stops being finite).
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
    let row_count = u32::try_from(n)
        .map_err(|_| Error::Dataset(format!("{n} rows are more than one call can train on")))?;
    let batch = if cfg.batch_size == 0 {
        n
    } else {
        cfg.batch_size.min(n)
    };
    let x = Tensor::from_slice(&data.x, (n, data.features), &Device::Cpu)?;
    let mut stepper = Stepper::new(start, cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (steps, loss, privacy) = match &cfg.dp {
        None => {
            let (steps, loss) =
                shuffled_batches(&mut stepper, &x, data, batch, row_count, &mut rng)?;
            (steps, loss, None)
        }
        Some(dp) => {
            let (event, loss) = dp_sgd(
                &mut stepper,
                dp,
                &x,
                &data.y,
                batch,
                PER_EXAMPLE_CHUNK,
                &mut rng,
            )?;
            (event.steps as usize, loss, Some(event))
        }
    };
    let report = TrainReport {
        loss: loss as f32,
        samples: n,
        steps,
        privacy,
    };
    Ok((start.with_values(stepper.w)?, report))
}

/// Epochs of reshuffled mini-batches. Returns the steps taken and the last epoch's mean loss.
fn shuffled_batches(
    stepper: &mut Stepper<'_>,
    x: &Tensor,
    data: &Dataset,
    batch: usize,
    row_count: u32,
    rng: &mut ChaCha8Rng,
) -> Result<(usize, f64), Error> {
    let n = data.len();
    let cfg = stepper.cfg;
    let total_steps = cfg
        .epochs
        .saturating_mul(n.div_ceil(batch))
        .min(cfg.max_steps.unwrap_or(usize::MAX));
    let mut grad = vec![0f32; stepper.w.len()];
    let mut order: Vec<u32> = (0..row_count).collect();
    let mut steps = 0;
    let mut epoch_loss = 0f64;
    let mut epoch_rows = 0usize;
    while steps < total_steps {
        let (x_epoch, y_epoch) = if batch < n {
            order.shuffle(rng);
            let index = Tensor::from_slice(&order, n, x.device())?;
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
            let loss = gradient(
                &stepper.params,
                &stepper.w,
                &xb,
                &y_epoch[first..first + rows],
                &mut grad,
            )?;
            epoch_loss += loss * rows as f64;
            epoch_rows += rows;
            stepper.step(&mut grad);
            steps += 1;
        }
    }
    Ok((steps, epoch_loss / epoch_rows as f64))
}

/// Most per-example gradient values held at once (rows × parameters), so that a large batch
/// of a large model is clipped in chunks rather than materialised whole.
const PER_EXAMPLE_CHUNK: usize = 1 << 20;

/// DP-SGD steps (see [`DpSgd`]) with expected batch `batch` out of `y.len()` rows, holding at
/// most about `chunk_values` per-example gradient values at once. Returns the mechanism that
/// ran and the mean loss of the rows sampled in the last epoch.
fn dp_sgd(
    stepper: &mut Stepper<'_>,
    dp: &DpSgd,
    x: &Tensor,
    y: &[f32],
    batch: usize,
    chunk_values: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(SampledGaussian, f64), Error> {
    let n = y.len();
    let cfg = stepper.cfg;
    let sample_rate = batch as f64 / n as f64;
    // q × n; exactly `batch`.
    let expected_batch = batch as f64;
    let steps_per_epoch = ((n as f64 / batch as f64).round() as usize).max(1);
    let total_steps = cfg
        .epochs
        .saturating_mul(steps_per_epoch)
        .min(cfg.max_steps.unwrap_or(usize::MAX));
    let (clip, noise) = (f64::from(dp.clip_norm), f64::from(dp.noise_multiplier));
    let dim = stepper.w.len();
    let chunk_rows = (chunk_values / dim).max(1);
    let mut grad = vec![0f32; dim];
    let mut epoch_loss = 0f64;
    let mut epoch_rows = 0usize;
    for step in 0..total_steps {
        if step % steps_per_epoch == 0 {
            epoch_loss = 0.0;
            epoch_rows = 0;
        }
        let sample = poisson_sample(n, sample_rate, rng)?;
        grad.fill(0.0);
        if !sample.is_empty() {
            let params = param_tensors(&stepper.params, &stepper.w, x.device())?;
            for rows in sample.chunks(chunk_rows) {
                // `train` checked that every row index fits in a u32.
                let index: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
                let xb = x.index_select(&Tensor::from_vec(index, rows.len(), x.device())?, 0)?;
                let yb: Vec<f32> = rows.iter().map(|&i| y[i]).collect();
                let (per_example, loss) = per_example_gradients(&params, &xb, &yb)?;
                let clipped = clip_and_sum(&per_example, dim, clip)?;
                grad.iter_mut().zip(&clipped.sum).for_each(|(g, s)| *g += s);
                epoch_loss += loss;
                epoch_rows += rows.len();
            }
        }
        noisy_mean(&mut grad, clip, noise, expected_batch, rng)?;
        stepper.step(&mut grad);
    }
    let event = SampledGaussian {
        sample_rate,
        noise_multiplier: noise,
        steps: total_steps as u64,
    };
    Ok((event, epoch_loss / epoch_rows as f64))
}

/// The weights being trained, with everything an optimiser step needs.
struct Stepper<'a> {
    cfg: &'a TrainConfig,
    params: Vec<Param>,
    /// The starting weights (FedProx's anchor).
    anchor: &'a [f32],
    w: Vec<f32>,
    optimizer: OptimizerState,
}

impl<'a> Stepper<'a> {
    fn new(start: &'a Weights, cfg: &'a TrainConfig) -> Self {
        let params = start
            .parts()
            .into_iter()
            .map(|(name, shape, range)| Param {
                shape: shape.to_vec(),
                range,
                decays: name.ends_with(".weight"),
            })
            .collect();
        let anchor = start.values();
        Self {
            cfg,
            params,
            anchor,
            w: anchor.to_vec(),
            optimizer: OptimizerState::new(cfg, anchor.len()),
        }
    }

    /// Adds the weight-decay and proximal terms to the loss gradient `grad`, then takes one
    /// optimiser step.
    fn step(&mut self, grad: &mut [f32]) {
        let (w, cfg) = (&mut self.w, self.cfg);
        for param in &self.params {
            let decay = if param.decays { cfg.weight_decay } else { 0.0 };
            for i in param.range.clone() {
                grad[i] += decay * w[i] + cfg.proximal_mu * (w[i] - self.anchor[i]);
            }
        }
        self.optimizer.step(cfg.learning_rate, w, grad);
    }
}

/// One parameter tensor: its shape, its place in the flat vector, and whether L2 applies to it.
struct Param {
    shape: Vec<usize>,
    range: Range<usize>,
    decays: bool,
}

/// The parameter tensors of the flat vector `w`, in layout order.
fn param_tensors(params: &[Param], w: &[f32], device: &Device) -> Result<Vec<Tensor>, Error> {
    Ok(params
        .iter()
        .map(|p| Tensor::from_slice(&w[p.range.clone()], p.shape.as_slice(), device))
        .collect::<candle_core::Result<Vec<_>>>()?)
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

    fn dp(clip_norm: f32, noise_multiplier: f32) -> Option<DpSgd> {
        Some(DpSgd {
            clip_norm,
            noise_multiplier,
        })
    }

    fn sum_rows(per_example: &[f32], dim: usize) -> Vec<f32> {
        let mut sum = vec![0.0; dim];
        for row in per_example.chunks_exact(dim) {
            sum.iter_mut().zip(row).for_each(|(s, g)| *s += g);
        }
        sum
    }

    #[test]
    fn per_example_gradients_sum_to_the_batch_gradient() {
        let data = synthetic::logistic(11, 20, 4);
        for spec in [
            ModelSpec::LogisticRegression { inputs: 4 },
            ModelSpec::Mlp {
                inputs: 4,
                hidden: vec![6, 3],
            },
        ] {
            // Non-zero logistic-regression weights, so the rows' gradients differ in more than scale.
            let start = spec.init(5);
            let start = start
                .with_values(start.values().iter().map(|v| v + 0.1).collect())
                .unwrap();
            let cfg = TrainConfig::default();
            let stepper = Stepper::new(&start, &cfg);
            let x = Tensor::from_slice(&data.x, (20, 4), &Device::Cpu).unwrap();
            let mut batch = vec![0.0; start.len()];
            let mean_loss = gradient(&stepper.params, &stepper.w, &x, &data.y, &mut batch).unwrap();
            let params = param_tensors(&stepper.params, &stepper.w, &Device::Cpu).unwrap();
            let (per_example, loss) = per_example_gradients(&params, &x, &data.y).unwrap();
            assert_eq!(per_example.len(), 20 * start.len());
            assert!((loss / 20.0 - mean_loss).abs() < 1e-9);
            for (i, (s, b)) in sum_rows(&per_example, start.len())
                .iter()
                .zip(&batch)
                .enumerate()
            {
                assert!(
                    (s / 20.0 - b).abs() < 1e-5,
                    "{spec:?} parameter {i}: {s} vs {b}"
                );
            }
            // Each row's gradient is that of a one-row batch.
            for row in [0, 7, 19] {
                let xr = x.narrow(0, row, 1).unwrap();
                let mut single = vec![0.0; start.len()];
                gradient(
                    &stepper.params,
                    &stepper.w,
                    &xr,
                    &data.y[row..=row],
                    &mut single,
                )
                .unwrap();
                let mine = &per_example[row * start.len()..(row + 1) * start.len()];
                for (a, b) in mine.iter().zip(&single) {
                    assert!((a - b).abs() < 1e-5, "{spec:?} row {row}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn dp_sgd_is_deterministic_for_a_seed() {
        let data = synthetic::logistic(3, 100, 6);
        for spec in [
            ModelSpec::LogisticRegression { inputs: 6 },
            ModelSpec::Mlp {
                inputs: 6,
                hidden: vec![8, 4],
            },
        ] {
            let cfg = TrainConfig {
                epochs: 3,
                batch_size: 16,
                dp: dp(1.0, 1.1),
                ..TrainConfig::default()
            };
            let (a, ra) = train(&spec, &spec.init(1), &data, &cfg, 42).unwrap();
            let (b, rb) = train(&spec, &spec.init(1), &data, &cfg, 42).unwrap();
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(ra, rb);
            let (c, _) = train(&spec, &spec.init(1), &data, &cfg, 43).unwrap();
            assert_ne!(bits(&a), bits(&c), "the seed drives sampling and noise");
            let plain = TrainConfig {
                dp: None,
                ..cfg.clone()
            };
            let (d, _) = train(&spec, &spec.init(1), &data, &plain, 42).unwrap();
            assert_ne!(bits(&a), bits(&d), "DP-SGD is not the plain path");
        }
    }

    #[test]
    fn dp_sgd_reports_the_accounting_event() {
        let data = synthetic::logistic(1, 100, 3);
        let spec = ModelSpec::LogisticRegression { inputs: 3 };
        let run = |cfg: &TrainConfig| train(&spec, &spec.init(0), &data, cfg, 0).unwrap().1;
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 10,
            dp: dp(1.0, 1.1),
            ..TrainConfig::default()
        };
        // q = 10 / 100, round(1 / q) = 10 steps an epoch.
        let report = run(&cfg);
        let event = SampledGaussian {
            sample_rate: 0.1,
            noise_multiplier: f64::from(1.1f32),
            steps: 30,
        };
        assert_eq!((report.steps, report.privacy), (30, Some(event)));
        assert_eq!(report.samples, 100);
        assert!(report.loss.is_finite());
        // round(100 / 30) = 3 steps an epoch, capped at 7 in all.
        let capped = TrainConfig {
            batch_size: 30,
            max_steps: Some(7),
            ..cfg.clone()
        };
        let report = run(&capped);
        let event = SampledGaussian {
            sample_rate: 0.3,
            noise_multiplier: f64::from(1.1f32),
            steps: 7,
        };
        assert_eq!((report.steps, report.privacy), (7, Some(event)));
        // Full batches (and batches larger than the data) are q = 1, one step an epoch.
        for batch_size in [0, 500] {
            let full = TrainConfig {
                batch_size,
                ..cfg.clone()
            };
            let event = SampledGaussian {
                sample_rate: 1.0,
                noise_multiplier: f64::from(1.1f32),
                steps: 3,
            };
            assert_eq!(run(&full).privacy, Some(event));
        }
        let plain = TrainConfig { dp: None, ..cfg };
        assert_eq!(run(&plain).privacy, None);
    }

    #[test]
    fn per_example_gradients_are_clipped() {
        // From zero weights, a row's gradient is (0.5 - y) [x, 1]. Row 0: 0.5 [3, 4, 1], norm
        // 2.55, clipped to 1; row 1: -0.5 [0.2, 0, 1], norm 0.51, kept. Clipping the batch's
        // mean instead would give a different direction.
        let data = Dataset::new(2, vec![3.0, 4.0, 0.2, 0.0], vec![0.0, 1.0]).unwrap();
        let spec = ModelSpec::LogisticRegression { inputs: 2 };
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 0,
            learning_rate: 0.5,
            optimizer: Optimizer::Sgd,
            dp: dp(1.0, 0.0),
            ..TrainConfig::default()
        };
        let (w, report) = train(&spec, &spec.init(0), &data, &cfg, 0).unwrap();
        let g0 = [1.5f32, 2.0, 0.5];
        let norm0 = g0.iter().map(|g| g * g).sum::<f32>().sqrt();
        let g1 = [-0.1f32, 0.0, -0.5];
        for i in 0..3 {
            let mean = (g0[i] / norm0 + g1[i]) / 2.0;
            assert!(
                (w.values()[i] + 0.5 * mean).abs() < 1e-6,
                "{i}: {:?}",
                w.values()
            );
        }
        assert_eq!(report.steps, 1);

        // With a tiny clip norm and no noise the mean of the clipped rows has norm at most C, so
        // q = 1 SGD moves the weights by at most lr·C·steps (and by a fair part of it: every
        // row is clipped, and they partly agree).
        let data = synthetic::logistic(2, 50, 4);
        let spec = ModelSpec::Mlp {
            inputs: 4,
            hidden: vec![5],
        };
        let start = spec.init(3);
        let cfg = TrainConfig {
            epochs: 20,
            batch_size: 0,
            learning_rate: 0.1,
            optimizer: Optimizer::Sgd,
            dp: dp(1e-3, 0.0),
            ..TrainConfig::default()
        };
        let (w, report) = train(&spec, &start, &data, &cfg, 0).unwrap();
        let bound = 0.1 * 1e-3 * report.steps as f32;
        let moved = distance(&w, &start);
        assert!(moved <= bound * (1.0 + 1e-4), "{moved} > {bound}");
        assert!(moved > 0.1 * bound, "{moved} vs {bound}");
        // Poisson batches hold at most n rows, divided by q·n: at most lr·C/q a step.
        let sampled = TrainConfig {
            batch_size: 10,
            ..cfg
        };
        let (w, report) = train(&spec, &start, &data, &sampled, 0).unwrap();
        let bound = 0.1 * 1e-3 * 5.0 * report.steps as f32;
        assert!(
            distance(&w, &start) <= bound,
            "{} > {bound}",
            distance(&w, &start)
        );
    }

    #[test]
    fn dp_sgd_without_noise_and_large_clip_matches_plain_sgd() {
        // q = 1, no noise, nothing clipped: DP-SGD is full-batch gradient descent.
        let data = synthetic::logistic(7, 60, 5);
        for spec in [
            ModelSpec::LogisticRegression { inputs: 5 },
            ModelSpec::Mlp {
                inputs: 5,
                hidden: vec![8, 4],
            },
        ] {
            for optimizer in [Optimizer::Sgd, Optimizer::Adam] {
                let plain = TrainConfig {
                    epochs: 25,
                    batch_size: 0,
                    learning_rate: 0.05,
                    optimizer,
                    weight_decay: 0.01,
                    proximal_mu: 0.1,
                    ..TrainConfig::default()
                };
                let private = TrainConfig {
                    dp: dp(1e6, 0.0),
                    ..plain.clone()
                };
                let (a, ra) = train(&spec, &spec.init(2), &data, &plain, 0).unwrap();
                let (b, rb) = train(&spec, &spec.init(2), &data, &private, 0).unwrap();
                assert_eq!(ra.steps, rb.steps);
                assert!(
                    (ra.loss - rb.loss).abs() < 1e-5,
                    "{} vs {}",
                    ra.loss,
                    rb.loss
                );
                assert!(
                    distance(&a, &b) < 1e-4,
                    "{spec:?} {optimizer:?}: {}",
                    distance(&a, &b)
                );
            }
        }
    }

    #[test]
    fn dp_sgd_step_matches_plain_sgd_in_expectation() {
        // Poisson sampling with q = 0.25 and dividing by q·n: one step's update averages, over
        // seeds, to the full-batch gradient step (no noise, nothing clipped).
        let data = synthetic::logistic(8, 40, 3);
        let spec = ModelSpec::LogisticRegression { inputs: 3 };
        let start = spec
            .init(0)
            .with_values(vec![0.3, -0.2, 0.1, 0.05])
            .unwrap();
        let plain = TrainConfig {
            epochs: 1,
            batch_size: 0,
            learning_rate: 1.0,
            optimizer: Optimizer::Sgd,
            ..TrainConfig::default()
        };
        let (full, _) = train(&spec, &start, &data, &plain, 0).unwrap();
        let private = TrainConfig {
            batch_size: 10,
            max_steps: Some(1),
            dp: dp(1e6, 0.0),
            ..plain
        };
        let seeds = 4000;
        let mut mean = vec![0f64; start.len()];
        for seed in 0..seeds {
            let (w, _) = train(&spec, &start, &data, &private, seed).unwrap();
            for (m, v) in mean.iter_mut().zip(w.values()) {
                *m += f64::from(*v) / seeds as f64;
            }
        }
        for (i, (m, f)) in mean.iter().zip(full.values()).enumerate() {
            let step = f64::from(*f - start.values()[i]);
            println!("parameter {i}: mean over seeds {m}, full batch {f} (step {step})");
            assert!(
                (m - f64::from(*f)).abs() < 0.01 + 0.1 * step.abs(),
                "{i}: {m} vs {f}"
            );
        }
    }

    #[test]
    fn dp_sgd_divides_by_the_expected_batch_size() {
        // Identical rows have identical gradients g, so one noiseless step moves the weights by
        // lr·|B|·g/(q·n): a whole multiple of lr·g/(q·n), the Poisson batch size |B| varying
        // with the seed (dividing by |B| itself would move them by lr·g every time).
        let data = Dataset::new(1, vec![2.0; 20], vec![1.0; 20]).unwrap();
        let spec = ModelSpec::LogisticRegression { inputs: 1 };
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 5,
            learning_rate: 1.0,
            optimizer: Optimizer::Sgd,
            max_steps: Some(1),
            dp: dp(1e6, 0.0),
            ..TrainConfig::default()
        };
        // From zero weights g = (0.5 - 1) [2, 1]; q·n = 5.
        let unit = -0.5 * 2.0 / 5.0;
        let mut sizes = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let (w, _) = train(&spec, &spec.init(0), &data, &cfg, seed).unwrap();
            let rows = -w.values()[0] / unit;
            assert!(
                (rows - rows.round()).abs() < 1e-4,
                "seed {seed}: {rows} rows"
            );
            assert!((w.values()[1] - w.values()[0] / 2.0).abs() < 1e-6);
            sizes.insert(rows.round() as i64);
        }
        assert!(sizes.len() > 3, "batch sizes {sizes:?}");
    }

    #[test]
    fn clipping_in_chunks_matches_clipping_at_once() {
        let data = synthetic::logistic(4, 80, 5);
        let spec = ModelSpec::Mlp {
            inputs: 5,
            hidden: vec![6],
        };
        let start = spec.init(1);
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 40,
            dp: dp(0.5, 1.0),
            ..TrainConfig::default()
        };
        let x = Tensor::from_slice(&data.x, (80, 5), &Device::Cpu).unwrap();
        let run = |chunk_values| {
            let mut stepper = Stepper::new(&start, &cfg);
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let dp = cfg.dp.as_ref().unwrap();
            let (event, loss) =
                dp_sgd(&mut stepper, dp, &x, &data.y, 40, chunk_values, &mut rng).unwrap();
            (stepper.w, event, loss)
        };
        // 43 parameters: 7 rows a chunk, and 1 row a chunk.
        let (whole, event, loss) = run(PER_EXAMPLE_CHUNK);
        for chunk_values in [7 * 43, 1] {
            let (chunked, chunked_event, chunked_loss) = run(chunk_values);
            assert_eq!(event, chunked_event);
            assert!(
                (loss - chunked_loss).abs() < 1e-5,
                "{loss} vs {chunked_loss}"
            );
            for (a, b) in whole.iter().zip(&chunked) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
        let (w, _) = train(&spec, &start, &data, &cfg, 9).unwrap();
        assert_eq!(w.values(), whole.as_slice());
    }

    #[test]
    fn invalid_dp_parameters_are_rejected() {
        let data = synthetic::logistic(1, 10, 3);
        let spec = ModelSpec::LogisticRegression { inputs: 3 };
        for (clip_norm, noise_multiplier) in [
            (0.0, 1.0),
            (-1.0, 1.0),
            (f32::NAN, 1.0),
            (f32::INFINITY, 1.0),
            (1.0, -0.1),
            (1.0, f32::NAN),
            (1.0, f32::INFINITY),
        ] {
            let cfg = TrainConfig {
                dp: dp(clip_norm, noise_multiplier),
                ..TrainConfig::default()
            };
            assert!(
                matches!(
                    train(&spec, &spec.init(0), &data, &cfg, 0),
                    Err(Error::Config(_))
                ),
                "{clip_norm} {noise_multiplier}"
            );
        }
    }

    #[test]
    fn dp_config_is_optional_in_json() {
        let plain = TrainConfig::default();
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("dp"), "{json}");
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), plain);
        let private = TrainConfig {
            dp: dp(1.0, 1.1),
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&private).unwrap();
        assert!(
            json.contains(r#""dp":{"clip_norm":1.0,"noise_multiplier":1.1}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), private);
        let typo = json.replace("noise_multiplier", "noise");
        assert!(serde_json::from_str::<TrainConfig>(&typo).is_err());
    }
}
