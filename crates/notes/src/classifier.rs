//! The utterance-to-section classifier: hashed n-gram and context features, one softmax layer
//! (candle), parameters as [`learn::Weights`] so that hospitals can train it through the
//! federation like any other model.
//!
//! Features are hashed, so there is no vocabulary to agree on across hospitals: the layout is
//! fixed by [`FEATURES`] and the class list alone.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
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
    /// Passes over the local examples.
    pub epochs: usize,
    /// Examples per gradient step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 6,
            batch_size: 64,
            learning_rate: 0.01,
            weight_decay: 1e-4,
        }
    }
}

/// What a local training run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// Examples trained on.
    pub samples: usize,
    /// Mean cross-entropy over the examples before the first step.
    pub initial_loss: f32,
    /// Mean cross-entropy over the examples after the last step.
    pub final_loss: f32,
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
    Weights::new(layout(), vec![0.0; CLASSES * FEATURES + CLASSES])
        .expect("the layout matches its own size")
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

/// The trained section classifier.
#[derive(Clone, Debug)]
pub struct SectionClassifier {
    weight: Tensor,
    bias: Tensor,
}

impl SectionClassifier {
    /// Wraps weights with the classifier's [`layout`].
    pub fn new(weights: &Weights) -> Result<Self, Error> {
        check_layout(weights)?;
        let (weight, bias) = weights.values().split_at(CLASSES * FEATURES);
        Ok(Self {
            weight: Tensor::from_slice(weight, (CLASSES, FEATURES), &Device::Cpu)?,
            bias: Tensor::from_slice(bias, CLASSES, &Device::Cpu)?,
        })
    }

    /// The classifier shipped with the crate, trained on the ACI-Bench and MTS-Dialog training
    /// sets (`cohort notes train`).
    pub fn shipped() -> Result<Self, Error> {
        let weights = Weights::from_safetensors(include_bytes!("../model/sections.safetensors"))?;
        Self::new(&weights)
    }

    /// Class probabilities (in [`Label::CLASSES`] order) of every utterance of `dialogue`.
    pub fn predict(&self, dialogue: &Dialogue) -> Result<Vec<[f32; CLASSES]>, Error> {
        let rows: Vec<Features> = (0..dialogue.utterances.len())
            .map(|i| utterance_features(dialogue, i))
            .collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let x = dense(&rows)?;
        let probs = candle_nn::ops::softmax_last_dim(&forward(&x, &self.weight, &self.bias)?)?;
        Ok(probs
            .to_vec2::<f32>()?
            .into_iter()
            .map(|row| std::array::from_fn(|c| row[c]))
            .collect())
    }
}

fn forward(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&weight.t()?)?.broadcast_add(bias)
}

fn dense(rows: &[Features]) -> candle_core::Result<Tensor> {
    let mut x = vec![0f32; rows.len() * FEATURES];
    for (r, row) in rows.iter().enumerate() {
        for &(i, v) in row {
            x[r * FEATURES + i as usize] += v;
        }
    }
    Tensor::from_vec(x, (rows.len(), FEATURES), &Device::Cpu)
}

/// Trains the classifier from `weights` on local examples (AdamW on the mean cross-entropy,
/// shuffled with `seed`) and returns the new weights: the local step of a federated round.
pub fn train_local(
    weights: &Weights,
    examples: &[Example],
    config: &TrainConfig,
    seed: u64,
) -> Result<(Weights, TrainReport), Error> {
    check_layout(weights)?;
    if examples.is_empty() {
        return Err(Error::Model("no training examples".into()));
    }
    if let Some(bad) = examples.iter().find(|e| e.label >= CLASSES) {
        return Err(Error::Model(format!("label {} is not a class", bad.label)));
    }
    let (w0, b0) = weights.values().split_at(CLASSES * FEATURES);
    let weight = Var::from_slice(w0, (CLASSES, FEATURES), &Device::Cpu)?;
    let bias = Var::from_slice(b0, CLASSES, &Device::Cpu)?;
    let params = ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: config.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut optimizer = AdamW::new(vec![weight.clone(), bias.clone()], params)?;
    let initial_loss = mean_loss(examples, &weight, &bias)?;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(config.batch_size.max(1)) {
            let rows: Vec<&Example> = batch.iter().map(|&i| &examples[i]).collect();
            let loss = batch_loss(&rows, &weight, &bias)?;
            optimizer.backward_step(&loss)?;
        }
    }
    let final_loss = mean_loss(examples, &weight, &bias)?;
    let mut values = weight.flatten_all()?.to_vec1::<f32>()?;
    values.extend(bias.to_vec1::<f32>()?);
    Ok((
        weights.with_values(values)?,
        TrainReport {
            samples: examples.len(),
            initial_loss,
            final_loss,
        },
    ))
}

fn batch_loss(rows: &[&Example], weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let features: Vec<Features> = rows.iter().map(|e| e.features.clone()).collect();
    let x = dense(&features)?;
    let labels: Vec<u32> = rows.iter().map(|e| e.label as u32).collect();
    let y = Tensor::from_vec(labels, rows.len(), &Device::Cpu)?;
    candle_nn::loss::cross_entropy(&forward(&x, weight, bias)?, &y)
}

/// Mean cross-entropy of `examples` (in chunks, so memory stays bounded).
fn mean_loss(examples: &[Example], weight: &Tensor, bias: &Tensor) -> Result<f32, Error> {
    let mut total = 0f64;
    for chunk in examples.chunks(512) {
        let rows: Vec<&Example> = chunk.iter().collect();
        let loss = batch_loss(&rows, weight, bias)?.to_dtype(DType::F64)?;
        total += loss.to_scalar::<f64>()? * chunk.len() as f64;
    }
    Ok((total / examples.len() as f64) as f32)
}

/// Accuracy of `weights` on labelled examples (share of arg-max predictions that are right).
pub fn accuracy(weights: &Weights, examples: &[Example]) -> Result<f64, Error> {
    let model = SectionClassifier::new(weights)?;
    let mut right = 0usize;
    for chunk in examples.chunks(512) {
        let rows: Vec<Features> = chunk.iter().map(|e| e.features.clone()).collect();
        let predicted = forward(&dense(&rows)?, &model.weight, &model.bias)?
            .argmax(1)?
            .to_vec1::<u32>()?;
        right += predicted
            .iter()
            .zip(chunk)
            .filter(|(p, e)| **p as usize == e.label)
            .count();
    }
    Ok(right as f64 / examples.len().max(1) as f64)
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

    #[test]
    fn training_reduces_the_loss() {
        let examples = toy_examples();
        let cfg = TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        };
        let (weights, report) = train_local(&initial_weights(), &examples, &cfg, 1).unwrap();
        assert!(report.final_loss < report.initial_loss / 2.0, "{report:?}");
        assert_eq!(accuracy(&weights, &examples).unwrap(), 1.0);
    }

    #[test]
    fn same_seed_gives_the_same_weights() {
        let examples = toy_examples();
        let cfg = TrainConfig::default();
        let a = train_local(&initial_weights(), &examples, &cfg, 3)
            .unwrap()
            .0;
        let b = train_local(&initial_weights(), &examples, &cfg, 3)
            .unwrap()
            .0;
        assert_eq!(a, b);
    }

    #[test]
    fn weights_of_another_model_are_refused() {
        let other = Weights::new(vec![("linear.weight".into(), vec![1, 2])], vec![0.0; 2]).unwrap();
        assert!(SectionClassifier::new(&other).is_err());
    }

    #[test]
    fn features_are_unit_length_and_sorted() {
        let f = &toy_examples()[1].features;
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
