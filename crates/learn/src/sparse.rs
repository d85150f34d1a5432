//! Linear softmax classifiers over sparse hashed features, trained with AdamW or DP-SGD.
//!
//! The models of the text tasks (the note-section classifier of `notes`, the PHI tagger of
//! `deid`) are one softmax layer over hashed feature rows: there is no vocabulary to agree on
//! across hospitals, the layout is fixed by the feature width and the class count, and the
//! parameters are [`Weights`] that travel through the federation like any other model. Rows
//! are sparse and the model is linear, so prediction and training work on the rows directly (no
//! dense matrix is built), and every example's gradient is known in closed form: DP-SGD clips
//! each one exactly.
//!
//! ```
//! use learn::sparse::{Config, Example, Softmax};
//!
//! let model = Softmax::new("toy", 2, 8)?;
//! let examples = vec![
//!     Example { features: vec![(1, 1.0)], label: 0 },
//!     Example { features: vec![(5, 1.0)], label: 1 },
//! ];
//! let config = Config { epochs: 50, ..Config::default() };
//! let (weights, report) = model.train(&model.initial_weights(), &examples, &config, 7)?;
//! assert_eq!(report.samples, 2);
//! assert_eq!(model.fit(&weights, &examples)?.accuracy, 1.0);
//! # Ok::<(), learn::Error>(())
//! ```

use privacy::accountant::SampledGaussian;
use privacy::dp::{noisy_mean, poisson_sample};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{DpSgd, Error, Weights};

/// A sparse feature row: `(index, value)` pairs.
pub type Features = Vec<(u32, f32)>;

/// One labelled row for training.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// Its features.
    pub features: Features,
    /// Index of its class.
    pub label: usize,
}

/// Local training settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Passes over the local examples (with DP-SGD, round(1/q) steps each, one pass in
    /// expectation).
    pub epochs: usize,
    /// Examples per gradient step (with DP-SGD, the expected number).
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Record-level differential privacy (DP-SGD: Poisson sampling, per-example clipping,
    /// Gaussian noise; see [`DpSgd`]); `None` trains on shuffled mini-batches.
    pub dp: Option<DpSgd>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            epochs: 6,
            batch_size: 64,
            learning_rate: 0.01,
            weight_decay: 1e-4,
            dp: None,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(format!("training settings: {what}")));
        if self.epochs == 0 || self.batch_size == 0 {
            return bad("epochs and batch size must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("the learning rate must be finite and positive");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("the weight decay must be finite and non-negative");
        }
        self.dp.as_ref().map_or(Ok(()), DpSgd::check)
    }
}

/// What a local training run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Examples trained on (the weight of the update in federated averaging).
    pub samples: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Mean cross-entropy of the examples of the last epoch, each measured before its step
    /// (with DP-SGD: of the examples sampled in the last epoch, NaN if none was; not covered by
    /// the privacy guarantee).
    pub loss: f32,
    /// With DP-SGD, the mechanism that ran, for the caller's privacy accountant.
    pub privacy: Option<SampledGaussian>,
}

/// How well weights fit labelled examples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Fit {
    /// Examples scored.
    pub samples: usize,
    /// Mean cross-entropy.
    pub loss: f32,
    /// Share of arg-max predictions that are right.
    pub accuracy: f64,
}

/// A linear softmax classifier of `classes` classes over `features` hashed features: tensors
/// `{name}.weight` `[classes, features]` and `{name}.bias` `[classes]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Softmax {
    name: String,
    classes: usize,
    features: usize,
}

impl Softmax {
    /// The classifier named `name` (the prefix of its tensors).
    ///
    /// # Errors
    /// Fewer than two classes, no feature, or a feature index that would not fit `u32`.
    pub fn new(name: &str, classes: usize, features: usize) -> Result<Self, Error> {
        if classes < 2 || features == 0 || u32::try_from(features).is_err() {
            return Err(Error::Model(format!(
                "a softmax classifier needs 2+ classes and 1 to 2^32 features, not {classes} and {features}"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            classes,
            features,
        })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Width of the feature rows.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Number of parameters: the weight matrix, then the biases.
    pub fn parameters(&self) -> usize {
        self.classes * self.features + self.classes
    }

    /// The tensor layout.
    pub fn layout(&self) -> Vec<(String, Vec<usize>)> {
        vec![
            (
                format!("{}.weight", self.name),
                vec![self.classes, self.features],
            ),
            (format!("{}.bias", self.name), vec![self.classes]),
        ]
    }

    /// The untrained classifier (all zeros: every class equally likely).
    pub fn initial_weights(&self) -> Weights {
        Weights::new(self.layout(), vec![0.0; self.parameters()])
            .expect("the layout matches its own size")
    }

    /// Checks that `weights` are this classifier's and finite.
    ///
    /// # Errors
    /// Another layout, or values that are not all finite.
    pub fn check(&self, weights: &Weights) -> Result<(), Error> {
        if weights.layout() != self.layout() {
            return Err(Error::LayoutMismatch(format!(
                "the {} classifier expects {:?}, got {:?}",
                self.name,
                self.layout(),
                weights.layout()
            )));
        }
        if !weights.all_finite() {
            return Err(Error::Weights("the weights are not all finite".into()));
        }
        Ok(())
    }

    /// Class probabilities of one feature row under the flat parameters `w` ([`Self::layout`]
    /// order). Indices past the feature width are ignored.
    pub fn probabilities(&self, w: &[f32], features: &[(u32, f32)]) -> Vec<f32> {
        let (classes, width) = (self.classes, self.features);
        let bias = &w[classes * width..];
        let mut logits: Vec<f32> = (0..classes)
            .map(|c| {
                let row = &w[c * width..(c + 1) * width];
                bias[c]
                    + features
                        .iter()
                        .filter_map(|&(i, v)| row.get(i as usize).map(|r| r * v))
                        .sum::<f32>()
            })
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for l in &mut logits {
            *l = (*l - max).exp();
            total += *l;
        }
        for l in &mut logits {
            *l /= total;
        }
        logits
    }

    /// One example's cross-entropy gradient with respect to its logits (p − y), its loss, and
    /// the L2 norm of its gradient with respect to every parameter: ‖p − y‖ × √(‖x‖² + 1),
    /// since the weight gradient is the outer product (p − y) xᵀ and the bias gradient p − y.
    fn logit_gradient(&self, w: &[f32], example: &Example) -> (Vec<f32>, f64, f64) {
        let mut delta = self.probabilities(w, &example.features);
        let loss = -f64::from(delta[example.label].max(f32::MIN_POSITIVE)).ln();
        delta[example.label] -= 1.0;
        let squared_x: f64 = example
            .features
            .iter()
            .map(|&(_, v)| f64::from(v) * f64::from(v))
            .sum();
        let squared_delta: f64 = delta.iter().map(|&d| f64::from(d) * f64::from(d)).sum();
        (delta, loss, (squared_delta * (squared_x + 1.0)).sqrt())
    }

    /// Adds `scale` × the parameter gradient of `example` (from its logit gradient) to `grad`.
    fn add_gradient(&self, delta: &[f32], example: &Example, scale: f32, grad: &mut [f32]) {
        let (classes, width) = (self.classes, self.features);
        for (c, &d) in delta.iter().enumerate() {
            let d = d * scale;
            for &(i, v) in &example.features {
                grad[c * width + i as usize] += d * v;
            }
            grad[classes * width + c] += d;
        }
    }

    fn check_examples(&self, examples: &[Example]) -> Result<(), Error> {
        if let Some(bad) = examples.iter().find(|e| e.label >= self.classes) {
            return Err(Error::Dataset(format!(
                "label {} is not a class",
                bad.label
            )));
        }
        if let Some(bad) = examples
            .iter()
            .flat_map(|e| &e.features)
            .find(|&&(i, v)| i as usize >= self.features || !v.is_finite())
        {
            return Err(Error::Dataset(format!("feature {bad:?} is out of range")));
        }
        Ok(())
    }

    /// Trains the classifier from `weights` on local examples and returns the new weights: the
    /// local step of a federated round. AdamW on the mean cross-entropy, over mini-batches
    /// shuffled with `seed`, or, with [`Config::dp`], DP-SGD (every step Poisson-samples the
    /// examples with q = batch size / examples, clips each sampled example's gradient to
    /// `clip_norm`, adds N(0, (noise multiplier × clip norm)²) to the sum and divides by the
    /// expected batch). Deterministic: the same inputs and seed give bit-identical weights. With
    /// DP-SGD the seed draws the samples and the noise, so it must stay secret on the node.
    ///
    /// # Errors
    /// Weights of another layout, bad settings, no example, a label or feature out of range,
    /// or training that diverged.
    pub fn train(
        &self,
        weights: &Weights,
        examples: &[Example],
        config: &Config,
        seed: u64,
    ) -> Result<(Weights, Report), Error> {
        self.check(weights)?;
        config.check()?;
        if examples.is_empty() {
            return Err(Error::Dataset("no training examples".into()));
        }
        self.check_examples(examples)?;
        let mut w = weights.values().to_vec();
        let mut optimizer = AdamW::new(config, w.len());
        let mut grad = vec![0f32; w.len()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = examples.len();
        let batch = config.batch_size.min(n);
        let (mut steps, mut epoch_loss, mut epoch_rows) = (0, 0f64, 0usize);
        let privacy = match &config.dp {
            None => {
                let mut order: Vec<usize> = (0..n).collect();
                for _ in 0..config.epochs {
                    order.shuffle(&mut rng);
                    (epoch_loss, epoch_rows) = (0.0, 0);
                    for rows in order.chunks(batch) {
                        grad.fill(0.0);
                        let scale = 1.0 / rows.len() as f32;
                        for &r in rows {
                            let (delta, loss, _) = self.logit_gradient(&w, &examples[r]);
                            self.add_gradient(&delta, &examples[r], scale, &mut grad);
                            epoch_loss += loss;
                        }
                        epoch_rows += rows.len();
                        optimizer.step(&mut w, &grad);
                        steps += 1;
                    }
                }
                None
            }
            Some(dp) => {
                let sample_rate = batch as f64 / n as f64;
                let steps_per_epoch = ((n as f64 / batch as f64).round() as usize).max(1);
                let clip = f64::from(dp.clip_norm);
                let noise = f64::from(dp.noise_multiplier);
                for step in 0..config.epochs * steps_per_epoch {
                    if step % steps_per_epoch == 0 {
                        (epoch_loss, epoch_rows) = (0.0, 0);
                    }
                    grad.fill(0.0);
                    for r in poisson_sample(n, sample_rate, &mut rng)? {
                        let (delta, loss, norm) = self.logit_gradient(&w, &examples[r]);
                        self.add_gradient(&delta, &examples[r], clip_scale(norm, clip), &mut grad);
                        epoch_loss += loss;
                        epoch_rows += 1;
                    }
                    noisy_mean(&mut grad, clip, noise, batch as f64, &mut rng)?;
                    optimizer.step(&mut w, &grad);
                    steps += 1;
                }
                Some(SampledGaussian {
                    sample_rate,
                    noise_multiplier: noise,
                    steps: steps as u64,
                })
            }
        };
        if !w.iter().all(|v| v.is_finite()) {
            return Err(Error::Model(
                "training diverged (non-finite weights)".into(),
            ));
        }
        Ok((
            weights.with_values(w)?,
            Report {
                samples: n,
                steps,
                loss: (epoch_loss / epoch_rows as f64) as f32,
                privacy,
            },
        ))
    }

    /// Mean cross-entropy and accuracy of `weights` on labelled examples.
    ///
    /// # Errors
    /// Weights of another layout, no example, or a label or feature out of range.
    pub fn fit(&self, weights: &Weights, examples: &[Example]) -> Result<Fit, Error> {
        self.check(weights)?;
        if examples.is_empty() {
            return Err(Error::Dataset("no examples to evaluate on".into()));
        }
        self.check_examples(examples)?;
        let w = weights.values();
        let (mut loss, mut right) = (0f64, 0usize);
        for e in examples {
            let p = self.probabilities(w, &e.features);
            loss -= f64::from(p[e.label].max(f32::MIN_POSITIVE)).ln();
            let best = (0..self.classes).max_by(|&a, &b| p[a].total_cmp(&p[b]));
            right += usize::from(best == Some(e.label));
        }
        Ok(Fit {
            samples: examples.len(),
            loss: (loss / examples.len() as f64) as f32,
            accuracy: right as f64 / examples.len() as f64,
        })
    }
}

/// FNV-1a of `text` modulo `width`, so that feature indices are the same on every machine and
/// build.
pub fn hash_feature(text: &str, width: usize) -> u32 {
    hash_parts(&[text], width)
}

/// [`hash_feature`] of the concatenation of `parts`, without building it.
pub fn hash_parts(parts: &[&str], width: usize) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % width as u64) as u32
}

/// A feature row from feature names: hashed into `width`, repeated indices summed, sorted,
/// L2-normalised.
pub fn hashed_row<S: AsRef<str>>(names: &[S], width: usize) -> Features {
    indices_row(
        names
            .iter()
            .map(|n| hash_feature(n.as_ref(), width))
            .collect(),
    )
}

/// A feature row from hashed feature indices: repeated indices summed, sorted, L2-normalised.
pub fn indices_row(indices: Vec<u32>) -> Features {
    let mut features: Features = indices.into_iter().map(|i| (i, 1.0)).collect();
    features.sort_unstable_by_key(|&(i, _)| i);
    features.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 += a.1;
            true
        } else {
            false
        }
    });
    let norm = features.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    for (_, v) in &mut features {
        *v /= norm;
    }
    features
}

/// The norm-`clip` scale of a gradient of norm `norm`: 1 when it is within the bound.
fn clip_scale(norm: f64, clip: f64) -> f32 {
    if norm > clip {
        (clip / norm) as f32
    } else {
        1.0
    }
}

/// AdamW (decoupled weight decay; beta1 0.9, beta2 0.999, eps 1e-8) on the flat parameters.
struct AdamW {
    learning_rate: f64,
    weight_decay: f64,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl AdamW {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(config: &Config, parameters: usize) -> Self {
        Self {
            learning_rate: config.learning_rate,
            weight_decay: config.weight_decay,
            m: vec![0.0; parameters],
            v: vec![0.0; parameters],
            t: 0,
        }
    }

    fn step(&mut self, w: &mut [f32], grad: &[f32]) {
        self.t += 1;
        let decay = (1.0 - self.learning_rate * self.weight_decay) as f32;
        let (b1, b2) = (Self::BETA1 as f32, Self::BETA2 as f32);
        let c1 = (1.0 - Self::BETA1.powi(self.t)) as f32;
        let c2 = (1.0 - Self::BETA2.powi(self.t)) as f32;
        let (lr, eps) = (self.learning_rate as f32, Self::EPS as f32);
        for (((w, g), m), v) in w.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *w *= decay;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Softmax {
        Softmax::new("toy", 3, 16).unwrap()
    }

    fn toy_examples() -> Vec<Example> {
        let rows: [(&[&str], usize); 5] = [
            (&["a", "b"], 0),
            (&["a", "c"], 0),
            (&["d", "e"], 1),
            (&["d", "f", "g"], 1),
            (&["h"], 2),
        ];
        rows.iter()
            .map(|(names, label)| Example {
                features: hashed_row(names, 16),
                label: *label,
            })
            .collect()
    }

    fn dp(clip_norm: f32, noise_multiplier: f32) -> Option<DpSgd> {
        Some(DpSgd {
            clip_norm,
            noise_multiplier,
        })
    }

    #[test]
    fn training_reduces_the_loss() {
        let (m, examples) = (model(), toy_examples());
        let cfg = Config {
            epochs: 60,
            ..Config::default()
        };
        let before = m.fit(&m.initial_weights(), &examples).unwrap();
        let (weights, report) = m.train(&m.initial_weights(), &examples, &cfg, 1).unwrap();
        let after = m.fit(&weights, &examples).unwrap();
        assert!(after.loss < before.loss / 2.0, "{before:?} {after:?}");
        assert_eq!(after.accuracy, 1.0);
        assert_eq!(
            (report.samples, report.steps, report.privacy),
            (5, 60, None)
        );
    }

    #[test]
    fn same_seed_gives_the_same_weights() {
        let (m, examples) = (model(), toy_examples());
        for cfg in [
            Config {
                batch_size: 2,
                ..Config::default()
            },
            Config {
                batch_size: 2,
                dp: dp(0.5, 1.0),
                ..Config::default()
            },
        ] {
            let run = |seed| {
                m.train(&m.initial_weights(), &examples, &cfg, seed)
                    .unwrap()
            };
            assert_eq!(run(3), run(3));
            assert_ne!(run(3).0, run(4).0, "{cfg:?}");
        }
    }

    #[test]
    fn dp_sgd_reports_its_mechanism_and_learns_without_noise() {
        let (m, examples) = (model(), toy_examples());
        let cfg = Config {
            epochs: 40,
            batch_size: 5,
            dp: dp(1.0, 0.0),
            ..Config::default()
        };
        let (weights, report) = m.train(&m.initial_weights(), &examples, &cfg, 9).unwrap();
        let event = SampledGaussian {
            sample_rate: 1.0,
            noise_multiplier: 0.0,
            steps: 40,
        };
        assert_eq!(report.privacy, Some(event));
        let initial = m.fit(&m.initial_weights(), &examples).unwrap().loss;
        assert!(m.fit(&weights, &examples).unwrap().loss < initial / 2.0);

        let noisy = Config {
            batch_size: 2,
            dp: dp(1.0, 1.1),
            ..cfg
        };
        let report = m
            .train(&m.initial_weights(), &examples, &noisy, 9)
            .unwrap()
            .1;
        let event = report.privacy.unwrap();
        assert_eq!((event.sample_rate, event.steps), (0.4, 40 * 3));
    }

    #[test]
    fn closed_form_clipping_matches_the_privacy_crate() {
        let (m, examples) = (model(), toy_examples());
        let (w, _) = m
            .train(&m.initial_weights(), &examples, &Config::default(), 2)
            .unwrap();
        let w = w.values();
        let clip = 0.3;
        let mut dense = Vec::new();
        let mut ours = vec![0f32; m.parameters()];
        for e in &examples {
            let (delta, _, norm) = m.logit_gradient(w, e);
            let mut one = vec![0f32; m.parameters()];
            m.add_gradient(&delta, e, 1.0, &mut one);
            assert!((privacy::dp::l2_norm(&one) - norm).abs() < 1e-5 * norm);
            dense.extend(one);
            m.add_gradient(&delta, e, clip_scale(norm, clip), &mut ours);
        }
        let theirs = privacy::dp::clip_and_sum(&dense, m.parameters(), clip).unwrap();
        assert_eq!(theirs.clipped, examples.len());
        for (a, b) in ours.iter().zip(&theirs.sum) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn bad_settings_weights_and_rows_are_refused() {
        let (m, examples) = (model(), toy_examples());
        assert!(Softmax::new("one", 1, 16).is_err());
        let other = Weights::new(vec![("linear.weight".into(), vec![1, 2])], vec![0.0; 2]).unwrap();
        assert!(m.train(&other, &examples, &Config::default(), 0).is_err());
        assert!(
            m.train(&m.initial_weights(), &[], &Config::default(), 0)
                .is_err()
        );
        for cfg in [
            Config {
                epochs: 0,
                ..Config::default()
            },
            Config {
                learning_rate: f64::NAN,
                ..Config::default()
            },
            Config {
                dp: dp(0.0, 1.0),
                ..Config::default()
            },
            Config {
                dp: dp(1.0, -1.0),
                ..Config::default()
            },
        ] {
            let err = m
                .train(&m.initial_weights(), &examples, &cfg, 0)
                .unwrap_err();
            assert!(
                err.to_string().contains("invalid training configuration"),
                "{err}"
            );
        }
        let mut wrong = examples.clone();
        wrong[0].label = 3;
        assert!(
            m.train(&m.initial_weights(), &wrong, &Config::default(), 0)
                .is_err()
        );
        wrong[0].label = 0;
        wrong[0].features = vec![(16, 1.0)];
        assert!(m.fit(&m.initial_weights(), &wrong).is_err());
    }

    #[test]
    fn rows_are_unit_length_sorted_and_stable() {
        let f = hashed_row(&["w:pain", "w:chest", "w:pain"], 1 << 14);
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(f.len(), 2);
        assert_eq!(
            hash_parts(&["w:", "pain"], 1 << 14),
            hash_feature("w:pain", 1 << 14)
        );
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c
        assert_eq!(
            hash_feature("a", 1 << 16),
            (0xaf63_dc4c_8601_ec8c_u64 % 65536) as u32
        );
    }
}
