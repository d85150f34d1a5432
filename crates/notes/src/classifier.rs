//! The utterance-to-section classifier: hashed n-gram and context features, one softmax layer,
//! parameters as [`learn::Weights`] so that hospitals can train it through the federation like
//! any other model.
//!
//! The model and its training (AdamW, or DP-SGD with exact per-example clipping) are
//! [`learn::sparse::Softmax`]; this module gives the features of an utterance and fixes the
//! layout by [`FEATURES`] and the class list.

use std::sync::LazyLock;

use learn::sparse::{Softmax, hashed_row};

use crate::dialogue::{Dialogue, Speaker};
use crate::section::Label;
use crate::text::{content, stemmed};
use crate::{Error, Weights};

pub use learn::sparse::{Config as TrainConfig, Example, Features, Fit, Report as TrainReport};

/// Width of the hashed feature vector.
pub const FEATURES: usize = 1 << 14;
/// Number of classes ([`Label::CLASSES`]).
pub const CLASSES: usize = Label::CLASSES.len();
/// Buckets of an utterance's relative position in the visit.
const POSITION_BUCKETS: usize = 10;

/// The classifier: one softmax layer named `sections`.
static MODEL: LazyLock<Softmax> =
    LazyLock::new(|| Softmax::new("sections", CLASSES, FEATURES).expect("a valid size"));

/// The tensor layout of the classifier: `sections.weight` `[CLASSES, FEATURES]`, `sections.bias`
/// `[CLASSES]`.
pub fn layout() -> Vec<(String, Vec<usize>)> {
    MODEL.layout()
}

/// The untrained classifier (all zeros: every class equally likely).
pub fn initial_weights() -> Weights {
    MODEL.initial_weights()
}

/// The trained section classifier.
#[derive(Clone, Debug)]
pub struct SectionClassifier {
    values: Vec<f32>,
}

impl SectionClassifier {
    /// Wraps weights with the classifier's [`layout`].
    pub fn new(weights: &Weights) -> Result<Self, Error> {
        MODEL
            .check(weights)
            .map_err(|e| Error::Model(e.to_string()))?;
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
            .map(|i| {
                let p = MODEL.probabilities(&self.values, &utterance_features(dialogue, i));
                std::array::from_fn(|c| p[c])
            })
            .collect()
    }
}

/// Trains the classifier from `weights` on local examples: the local step of a federated round
/// ([`Softmax::train`]: AdamW, or DP-SGD with exact per-example clipping; deterministic in
/// `seed`, which must stay secret on the node with DP-SGD).
pub fn train_local(
    weights: &Weights,
    examples: &[Example],
    config: &TrainConfig,
    seed: u64,
) -> Result<(Weights, TrainReport), Error> {
    Ok(MODEL.train(weights, examples, config, seed)?)
}

/// Mean cross-entropy and accuracy of `weights` on labelled examples.
pub fn fit(weights: &Weights, examples: &[Example]) -> Result<Fit, Error> {
    Ok(MODEL.fit(weights, examples)?)
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
    hashed_row(&names, FEATURES)
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
    fn the_classifier_learns_utterances_and_refuses_other_weights() {
        let examples = toy_examples();
        let cfg = TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        };
        let (weights, _) = train_local(&initial_weights(), &examples, &cfg, 1).unwrap();
        assert_eq!(fit(&weights, &examples).unwrap().accuracy, 1.0);
        let other = Weights::new(vec![("linear.weight".into(), vec![1, 2])], vec![0.0; 2]).unwrap();
        assert!(SectionClassifier::new(&other).is_err());
        assert!(train_local(&other, &examples, &TrainConfig::default(), 0).is_err());
    }

    #[test]
    fn features_are_unit_length_and_sorted() {
        let f = &toy_examples()[1].features;
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
