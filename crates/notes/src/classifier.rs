//! The utterance-to-section classifier: hashed n-gram and context features, one softmax layer,
//! parameters as [`learn::Weights`] so that hospitals can train it through the federation like
//! any other model.
//!
//! Features are hashed, so there is no vocabulary to agree on across hospitals: the layout is
//! fixed by [`FEATURES`] and the class list alone. Features are sparse and the model is linear,
//! so prediction and training work on the sparse rows directly (no dense matrix is built), and
//! every example's gradient is known in closed form: DP-SGD clips each one exactly.

use learn::DpSgd;
use privacy::accountant::SampledGaussian;
use privacy::dp::{noisy_mean, poisson_sample};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::dialogue::{Dialogue, Speaker};
use crate::section::Label;
use crate::text::{content, stemmed};
use crate::{Error, Weights};

/// Width of the hashed feature vector.
pub const FEATURES: usize = 1 << 14;
/// Number of classes ([`Label::CLASSES`]).
pub const CLASSES: usize = Label::CLASSES.len();
/// Buckets of an utterance's relative position in the visit.
const POSITION_BUCKETS: usize = 10;
/// Number of parameters: the weight matrix, then the biases.
const PARAMETERS: usize = CLASSES * FEATURES + CLASSES;

/// A sparse, L2-normalised feature vector: `(index, value)` pairs.
pub type Features = Vec<(u32, f32)>;

/// One labelled utterance for training.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// Its features ([`utterance_features`]).
    pub features: Features,
    /// Index of its class in [`Label::CLASSES`].
    pub label: usize,
}

/// Local training settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainConfig {
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
    /// Gaussian noise; see [`learn::DpSgd`]); `None` trains on shuffled mini-batches.
    pub dp: Option<DpSgd>,
}

impl Default for TrainConfig {
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

impl TrainConfig {
    fn check(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Model(format!("training settings: {what}")));
        if self.epochs == 0 || self.batch_size == 0 {
            return bad("epochs and batch size must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("the learning rate must be finite and positive");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("the weight decay must be finite and non-negative");
        }
        if let Some(dp) = &self.dp {
            if !(dp.clip_norm.is_finite() && dp.clip_norm > 0.0) {
                return bad("dp.clip_norm must be finite and positive");
            }
            if !(dp.noise_multiplier.is_finite() && dp.noise_multiplier >= 0.0) {
                return bad("dp.noise_multiplier must be finite and non-negative");
            }
        }
        Ok(())
    }
}

/// What a local training run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
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

/// The tensor layout of the classifier: `sections.weight` `[CLASSES, FEATURES]`, `sections.bias`
/// `[CLASSES]`.
pub fn layout() -> Vec<(String, Vec<usize>)> {
    vec![
        ("sections.weight".into(), vec![CLASSES, FEATURES]),
        ("sections.bias".into(), vec![CLASSES]),
    ]
}

/// The untrained classifier (all zeros: every class equally likely).
pub fn initial_weights() -> Weights {
    Weights::new(layout(), vec![0.0; PARAMETERS]).expect("the layout matches its own size")
}

fn check_layout(weights: &Weights) -> Result<(), Error> {
    if weights.layout() != layout() {
        return Err(Error::Model(format!(
            "the section classifier expects {:?}, got {:?}",
            layout(),
            weights.layout()
        )));
    }
    Ok(())
}

/// Class probabilities of one feature row under the parameters `w` ([`layout`] order).
fn probabilities(w: &[f32], features: &[(u32, f32)]) -> [f32; CLASSES] {
    let bias = &w[CLASSES * FEATURES..];
    let mut logits: [f32; CLASSES] = std::array::from_fn(|c| {
        let row = &w[c * FEATURES..(c + 1) * FEATURES];
        bias[c]
            + features
                .iter()
                .map(|&(i, v)| row[i as usize] * v)
                .sum::<f32>()
    });
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for l in &mut logits {
        *l = (*l - max).exp();
        total += *l;
    }
    logits.map(|l| l / total)
}

/// The trained section classifier.
#[derive(Clone, Debug)]
pub struct SectionClassifier {
    values: Vec<f32>,
}

impl SectionClassifier {
    /// Wraps weights with the classifier's [`layout`].
    pub fn new(weights: &Weights) -> Result<Self, Error> {
        check_layout(weights)?;
        if !weights.values().iter().all(|v| v.is_finite()) {
            return Err(Error::Model("the weights are not all finite".into()));
        }
        Ok(Self {
            values: weights.values().to_vec(),
        })
    }

    /// The classifier shipped with the crate, trained on the ACI-Bench and MTS-Dialog training
    /// sets (`cohort notes train`).
    pub fn shipped() -> Result<Self, Error> {
        let weights = Weights::from_safetensors(include_bytes!("../model/sections.safetensors"))?;
        Self::new(&weights)
    }

    /// Class probabilities (in [`Label::CLASSES`] order) of every utterance of `dialogue`.
    pub fn predict(&self, dialogue: &Dialogue) -> Vec<[f32; CLASSES]> {
        (0..dialogue.utterances.len())
            .map(|i| probabilities(&self.values, &utterance_features(dialogue, i)))
            .collect()
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

    fn new(config: &TrainConfig) -> Self {
        Self {
            learning_rate: config.learning_rate,
            weight_decay: config.weight_decay,
            m: vec![0.0; PARAMETERS],
            v: vec![0.0; PARAMETERS],
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

/// One example's cross-entropy gradient with respect to its logits (p − y), its loss, and the
/// L2 norm of its gradient with respect to every parameter: ‖p − y‖ × √(‖x‖² + 1), since the
/// weight gradient is the outer product (p − y) xᵀ and the bias gradient is p − y.
fn logit_gradient(w: &[f32], example: &Example) -> ([f32; CLASSES], f64, f64) {
    let mut delta = probabilities(w, &example.features);
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

/// Adds `scale` × the parameter gradient of `example` (from its [`logit_gradient`]) to `grad`.
fn add_gradient(delta: &[f32; CLASSES], example: &Example, scale: f32, grad: &mut [f32]) {
    for (c, &d) in delta.iter().enumerate() {
        let d = d * scale;
        for &(i, v) in &example.features {
            grad[c * FEATURES + i as usize] += d * v;
        }
        grad[CLASSES * FEATURES + c] += d;
    }
}

/// The norm-`clip` scale of a gradient of norm `norm`: 1 when it is within the bound.
fn clip_scale(norm: f64, clip: f64) -> f32 {
    if norm > clip {
        (clip / norm) as f32
    } else {
        1.0
    }
}

/// Trains the classifier from `weights` on local examples and returns the new weights: the
/// local step of a federated round. AdamW on the mean cross-entropy, over mini-batches
/// shuffled with `seed`, or, with [`TrainConfig::dp`], DP-SGD (every step Poisson-samples the
/// examples with q = batch size / examples, clips each sampled example's gradient to
/// `clip_norm`, adds N(0, (noise multiplier × clip norm)²) to the sum and divides by the
/// expected batch). Deterministic: the same inputs and seed give bit-identical weights. With
/// DP-SGD the seed draws the samples and the noise, so it must stay secret on the node.
pub fn train_local(
    weights: &Weights,
    examples: &[Example],
    config: &TrainConfig,
    seed: u64,
) -> Result<(Weights, TrainReport), Error> {
    check_layout(weights)?;
    config.check()?;
    if examples.is_empty() {
        return Err(Error::Model("no training examples".into()));
    }
    if let Some(bad) = examples.iter().find(|e| e.label >= CLASSES) {
        return Err(Error::Model(format!("label {} is not a class", bad.label)));
    }
    if let Some(bad) = examples
        .iter()
        .flat_map(|e| &e.features)
        .find(|&&(i, v)| i as usize >= FEATURES || !v.is_finite())
    {
        return Err(Error::Model(format!("feature {bad:?} is out of range")));
    }
    let mut w = weights.values().to_vec();
    let mut optimizer = AdamW::new(config);
    let mut grad = vec![0f32; PARAMETERS];
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
                        let (delta, loss, _) = logit_gradient(&w, &examples[r]);
                        add_gradient(&delta, &examples[r], scale, &mut grad);
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
                    let (delta, loss, norm) = logit_gradient(&w, &examples[r]);
                    add_gradient(&delta, &examples[r], clip_scale(norm, clip), &mut grad);
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
        TrainReport {
            samples: n,
            steps,
            loss: (epoch_loss / epoch_rows as f64) as f32,
            privacy,
        },
    ))
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

/// Mean cross-entropy and accuracy of `weights` on labelled examples.
pub fn fit(weights: &Weights, examples: &[Example]) -> Result<Fit, Error> {
    let model = SectionClassifier::new(weights)?;
    if examples.is_empty() {
        return Err(Error::Model("no examples to evaluate on".into()));
    }
    let (mut loss, mut right) = (0f64, 0usize);
    for e in examples {
        let p = probabilities(&model.values, &e.features);
        let label = p
            .get(e.label)
            .ok_or_else(|| Error::Model(format!("label {} is not a class", e.label)))?;
        loss -= f64::from(label.max(f32::MIN_POSITIVE)).ln();
        let best = (0..CLASSES).max_by(|&a, &b| p[a].total_cmp(&p[b]));
        right += usize::from(best == Some(e.label));
    }
    Ok(Fit {
        samples: examples.len(),
        loss: (loss / examples.len() as f64) as f32,
        accuracy: right as f64 / examples.len() as f64,
    })
}

/// FNV-1a, so that feature indices are the same on every machine and build.
fn hash(text: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % FEATURES as u64) as u32
}

fn speaker_name(speaker: Speaker) -> &'static str {
    match speaker {
        Speaker::Doctor => "doctor",
        Speaker::Patient => "patient",
        Speaker::Guest => "guest",
    }
}

/// The features of utterance `i` of `dialogue`: its stemmed words and word pairs, its speaker,
/// whether it asks, its length and its place in the visit, and the content words of the
/// utterances just before and after it.
pub fn utterance_features(dialogue: &Dialogue, i: usize) -> Features {
    let utterance = &dialogue.utterances[i];
    let speaker = speaker_name(utterance.speaker);
    let tokens = stemmed(&utterance.text);
    let position = i * POSITION_BUCKETS / dialogue.utterances.len().max(1);
    let length = match tokens.len() {
        0..=2 => "short",
        3..=8 => "medium",
        9..=20 => "long",
        _ => "very_long",
    };
    let mut names = vec![
        format!("speaker:{speaker}"),
        format!("position:{position}"),
        format!("position:{speaker}:{position}"),
        format!("length:{speaker}:{length}"),
    ];
    if utterance.text.ends_with('?') {
        names.push(format!("question:{speaker}"));
    }
    names.extend(tokens.iter().map(|t| format!("w:{t}")));
    names.extend(tokens.iter().map(|t| format!("w:{speaker}:{t}")));
    names.extend(tokens.windows(2).map(|p| format!("b:{}_{}", p[0], p[1])));
    if let Some(previous) = i.checked_sub(1).map(|p| &dialogue.utterances[p]) {
        names.extend(content(&previous.text).iter().map(|t| format!("prev:{t}")));
    }
    if let Some(next) = dialogue.utterances.get(i + 1) {
        names.extend(content(&next.text).iter().map(|t| format!("next:{t}")));
    }
    let mut features: Features = names.iter().map(|n| (hash(n), 1.0)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_examples() -> Vec<Example> {
        let dialogue = Dialogue::parse(
            "[doctor] hello how are you . any chest pain ?\n[patient] no chest pain .\n\
             [doctor] your lungs are clear on exam .\n[doctor] we will start lisinopril .",
        )
        .unwrap();
        let labels = [0, 2, 2, 3, 5];
        labels
            .iter()
            .enumerate()
            .map(|(i, &label)| Example {
                features: utterance_features(&dialogue, i),
                label,
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
        let examples = toy_examples();
        let cfg = TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        };
        let before = fit(&initial_weights(), &examples).unwrap();
        let (weights, report) = train_local(&initial_weights(), &examples, &cfg, 1).unwrap();
        let after = fit(&weights, &examples).unwrap();
        assert!(after.loss < before.loss / 2.0, "{before:?} {after:?}");
        assert_eq!(after.accuracy, 1.0);
        assert_eq!(
            (report.samples, report.steps, report.privacy),
            (5, 60, None)
        );
    }

    #[test]
    fn same_seed_gives_the_same_weights() {
        let examples = toy_examples();
        for cfg in [
            TrainConfig {
                batch_size: 2,
                ..TrainConfig::default()
            },
            TrainConfig {
                batch_size: 2,
                dp: dp(0.5, 1.0),
                ..TrainConfig::default()
            },
        ] {
            let run = |seed| train_local(&initial_weights(), &examples, &cfg, seed).unwrap();
            assert_eq!(run(3), run(3));
            assert_ne!(run(3).0, run(4).0, "{cfg:?}");
        }
    }

    #[test]
    fn dp_sgd_reports_its_mechanism_and_learns_without_noise() {
        let examples = toy_examples();
        let cfg = TrainConfig {
            epochs: 40,
            batch_size: 5,
            dp: dp(1.0, 0.0),
            ..TrainConfig::default()
        };
        let (weights, report) = train_local(&initial_weights(), &examples, &cfg, 9).unwrap();
        let event = SampledGaussian {
            sample_rate: 1.0,
            noise_multiplier: 0.0,
            steps: 40,
        };
        assert_eq!(report.privacy, Some(event));
        assert!(
            fit(&weights, &examples).unwrap().loss
                < fit(&initial_weights(), &examples).unwrap().loss / 2.0
        );

        let noisy = TrainConfig {
            batch_size: 2,
            dp: dp(1.0, 1.1),
            ..cfg
        };
        let report = train_local(&initial_weights(), &examples, &noisy, 9)
            .unwrap()
            .1;
        let event = report.privacy.unwrap();
        assert_eq!((event.sample_rate, event.steps), (0.4, 40 * 3));
    }

    #[test]
    fn closed_form_clipping_matches_the_privacy_crate() {
        let examples = toy_examples();
        let (w, _) =
            train_local(&initial_weights(), &examples, &TrainConfig::default(), 2).unwrap();
        let w = w.values();
        let clip = 0.3;
        let mut dense = Vec::new();
        let mut ours = vec![0f32; PARAMETERS];
        for e in &examples {
            let (delta, _, norm) = logit_gradient(w, e);
            let mut one = vec![0f32; PARAMETERS];
            add_gradient(&delta, e, 1.0, &mut one);
            assert!((privacy::dp::l2_norm(&one) - norm).abs() < 1e-5 * norm);
            dense.extend(one);
            add_gradient(&delta, e, clip_scale(norm, clip), &mut ours);
        }
        let theirs = privacy::dp::clip_and_sum(&dense, PARAMETERS, clip).unwrap();
        assert_eq!(theirs.clipped, examples.len());
        for (a, b) in ours.iter().zip(&theirs.sum) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn bad_settings_and_weights_are_refused() {
        let examples = toy_examples();
        let other = Weights::new(vec![("linear.weight".into(), vec![1, 2])], vec![0.0; 2]).unwrap();
        assert!(SectionClassifier::new(&other).is_err());
        assert!(train_local(&other, &examples, &TrainConfig::default(), 0).is_err());
        assert!(train_local(&initial_weights(), &[], &TrainConfig::default(), 0).is_err());
        for cfg in [
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            TrainConfig {
                learning_rate: f64::NAN,
                ..TrainConfig::default()
            },
            TrainConfig {
                dp: dp(0.0, 1.0),
                ..TrainConfig::default()
            },
            TrainConfig {
                dp: dp(1.0, -1.0),
                ..TrainConfig::default()
            },
        ] {
            let err = train_local(&initial_weights(), &examples, &cfg, 0).unwrap_err();
            assert!(err.to_string().contains("training settings"), "{err}");
        }
        let mut wrong = examples.clone();
        wrong[0].label = CLASSES;
        assert!(train_local(&initial_weights(), &wrong, &TrainConfig::default(), 0).is_err());
    }

    #[test]
    fn features_are_unit_length_and_sorted() {
        let f = &toy_examples()[1].features;
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
