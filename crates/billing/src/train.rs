//! Local training of the coding model: AdamW on the summed binary cross-entropy of every code,
//! candle's autograd for the gradients.

use candle_core::{Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::corpus::{CodeSystem, Split};
use crate::features::Document;
use crate::model::{CoderSpec, Params, dense_rows};
use crate::{Error, Weights};

/// Hyper-parameters of one local training call.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Passes over the documents; at least 1.
    pub epochs: usize,
    /// Documents per step; at least 1.
    pub batch_size: usize,
    /// AdamW step size.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for TrainConfig {
    /// 20 epochs of batches of 16 at learning rate 0.01, weight decay 0 (the setting of the
    /// CodiEsp figures in docs/BENCHMARKS.md).
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 16,
            learning_rate: 0.01,
            weight_decay: 0.0,
        }
    }
}

/// A training document and the indices of its codes in the model's label space.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The encoded text.
    pub doc: Document,
    /// Label indices of its gold codes.
    pub labels: Vec<usize>,
}

/// The cases of `split` as training examples of `spec` (codes outside its label space are left
/// out; cases keep their order).
pub fn examples(spec: &CoderSpec, split: &Split) -> Vec<Example> {
    split
        .cases
        .iter()
        .map(|case| {
            let labels = CodeSystem::ALL
                .into_iter()
                .flat_map(|system| {
                    let codes = split.codes(system).get(&case.id);
                    codes
                        .into_iter()
                        .flatten()
                        .filter_map(move |code| spec.label_index(system, code))
                })
                .collect();
            Example {
                doc: spec.featurizer.encode(&case.text),
                labels,
            }
        })
        .collect()
}

/// What one training call did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Mean loss per document (summed over codes) of each epoch, measured before each step.
    pub epoch_losses: Vec<f32>,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// Trains from `start` on `examples`. Deterministic: the epochs' shuffles come from a
/// `ChaCha8Rng` seeded with `seed`.
pub fn train(
    spec: &CoderSpec,
    start: &Weights,
    examples: &[Example],
    cfg: &TrainConfig,
    seed: u64,
) -> Result<(Weights, TrainReport), Error> {
    spec.check()?;
    spec.check_weights(start)?;
    if examples.is_empty() || cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(Error::Model(
            "training needs documents, epochs and a batch size".into(),
        ));
    }
    let labels = spec.labels.len();
    if let Some(bad) = examples
        .iter()
        .flat_map(|e| &e.labels)
        .find(|&&l| l >= labels)
    {
        return Err(Error::Model(format!(
            "label index {bad} is outside the {labels} labels"
        )));
    }
    let vars = spec
        .ranges()
        .map(|(range, shape)| Var::from_slice(&start.values()[range], shape, &Device::Cpu));
    let [embedding, output, bias] = vars;
    let vars = vec![embedding?, output?, bias?];
    let mut optimizer = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let params = Params {
        embedding: vars[0].as_tensor().clone(),
        output: vars[1].as_tensor().clone(),
        bias: vars[2].as_tensor().clone(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut report = TrainReport {
        epoch_losses: Vec::with_capacity(cfg.epochs),
        steps: 0,
    };
    for _ in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut total = 0f64;
        for batch in order.chunks(cfg.batch_size) {
            let docs: Vec<&Document> = batch.iter().map(|&i| &examples[i].doc).collect();
            let x = dense_rows(&docs, spec.featurizer.buckets as usize)?;
            let mut y = vec![0f32; batch.len() * labels];
            for (row, &i) in batch.iter().enumerate() {
                for &l in &examples[i].labels {
                    y[row * labels + l] = 1.0;
                }
            }
            let y = Tensor::from_vec(y, (batch.len(), labels), &Device::Cpu)?;
            let summed = binary_cross_entropy(&params.forward(&x)?, &y)?;
            total += f64::from(summed.to_scalar::<f32>()?);
            optimizer.backward_step(&(summed / batch.len() as f64)?)?;
            report.steps += 1;
        }
        report
            .epoch_losses
            .push((total / examples.len() as f64) as f32);
    }
    let mut values = Vec::with_capacity(start.len());
    for var in &vars {
        values.extend(var.as_tensor().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((start.with_values(values)?, report))
}

/// Summed binary cross-entropy of logits `z` against 0/1 targets `y`, computed stably as
/// `max(z, 0) - z y + ln(1 + e^-|z|)`.
fn binary_cross_entropy(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (z.relu()? - z.mul(y)? + softplus)?.sum_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Case, CodeLists, Lang};
    use crate::features::Featurizer;
    use crate::{Coder, label_space};

    /// Six cases: fever texts carry R50.9, fracture texts S72.0 and an X-ray procedure.
    pub(crate) fn tiny_split() -> Split {
        type Row = (
            &'static str,
            &'static str,
            &'static [&'static str],
            &'static [&'static str],
        );
        let texts: [Row; 6] = [
            (
                "c1",
                "Paciente con fiebre alta y escalofríos.",
                &["r50.9"][..],
                &[][..],
            ),
            ("c2", "Refiere fiebre de tres días.", &["r50.9"], &[]),
            (
                "c3",
                "Fractura de cuello de fémur tras caída; se realiza radiografía.",
                &["s72.0"],
                &["bw03zzz"],
            ),
            (
                "c4",
                "Caída con fractura de fémur, radiografía de cadera.",
                &["s72.0"],
                &["bw03zzz"],
            ),
            (
                "c5",
                "Fiebre y fractura de fémur.",
                &["r50.9", "s72.0"],
                &[],
            ),
            ("c6", "Control sin hallazgos.", &[], &[]),
        ];
        let lists = |pick: fn(&Row) -> &'static [&'static str]| -> CodeLists {
            texts
                .iter()
                .map(|t| {
                    (
                        t.0.to_string(),
                        pick(t).iter().map(|c| c.to_uppercase()).collect(),
                    )
                })
                .collect()
        };
        Split {
            cases: texts
                .iter()
                .map(|t| Case {
                    id: t.0.into(),
                    text: t.1.into(),
                })
                .collect(),
            diagnoses: lists(|t| t.2),
            procedures: lists(|t| t.3),
            evidence: Default::default(),
        }
    }

    pub(crate) fn tiny_spec(split: &Split) -> CoderSpec {
        let codes = CodeSystem::ALL.into_iter().flat_map(|system| {
            split
                .codes(system)
                .values()
                .flatten()
                .map(move |c| (system, c.clone()))
        });
        CoderSpec {
            lang: Lang::Es,
            featurizer: Featurizer {
                buckets: 1 << 10,
                max_n: 2,
            },
            dim: 8,
            labels: label_space(codes),
        }
    }

    /// A model trained on the tiny split.
    pub(crate) fn tiny_coder() -> (Coder, Split, TrainReport) {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        let cfg = TrainConfig {
            epochs: 60,
            batch_size: 2,
            learning_rate: 0.05,
            weight_decay: 0.0,
        };
        let (weights, report) =
            train(&spec, &spec.init(1), &examples(&spec, &split), &cfg, 3).unwrap();
        (Coder::new(spec, weights).unwrap(), split, report)
    }

    #[test]
    fn training_reduces_the_loss_and_ranks_the_right_codes_first() {
        let (coder, _, report) = tiny_coder();
        assert_eq!(report.steps, 60 * 3);
        let first = report.epoch_losses[0];
        let last = *report.epoch_losses.last().unwrap();
        assert!(last < first / 10.0, "{first} -> {last}");
        let doc = coder.encode("Nueva fractura de fémur");
        let top = &coder.suggest(&[&doc], 1).unwrap()[0];
        assert_eq!(top[0].code, "S72.0");
        assert_eq!(top[1].code, "BW03ZZZ");
        assert!(top[0].score > 0.5);
        let spec = &coder.spec;
        assert_eq!(spec.labels.len(), 3);
        assert_eq!(coder.weights.len(), (1 << 10) * 8 + 3 * 8 + 3);
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        let data = examples(&spec, &split);
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 4,
            ..TrainConfig::default()
        };
        let run = |seed| train(&spec, &spec.init(1), &data, &cfg, seed).unwrap().0;
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        let other = CoderSpec {
            dim: 4,
            ..spec.clone()
        };
        assert!(train(&spec, &other.init(1), &data, &cfg, 0).is_err());
        assert!(train(&spec, &spec.init(1), &[], &cfg, 0).is_err());
    }

    #[test]
    fn contributions_add_up_to_the_logit() {
        let (coder, split, _) = tiny_coder();
        let doc = coder.encode(&split.cases[4].text);
        let logits = coder.logits(&[&doc]).unwrap();
        let labels: Vec<usize> = (0..coder.spec.labels.len()).collect();
        let shares = coder.contributions(&doc, &labels).unwrap();
        for (label, &logit) in logits[0].iter().enumerate() {
            let sum: f32 = shares[label].iter().sum();
            let total = sum + coder.bias(label);
            assert!((total - logit).abs() < 1e-3, "{total} vs {logit}");
        }
    }

    #[test]
    fn evidence_points_at_the_supporting_words() {
        let (coder, _, _) = tiny_coder();
        let text = "Ingresa por disnea. Presenta fiebre.";
        let doc = coder.encode(text);
        let fever = coder
            .spec
            .label_index(CodeSystem::Diagnosis, "R50.9")
            .unwrap();
        let shares = coder.contributions(&doc, &[fever]).unwrap();
        let spans = crate::suggest::evidence(&doc, &shares[0]);
        let chars: Vec<char> = text.chars().collect();
        let first: String = chars[spans[0].start..spans[0].end].iter().collect();
        assert!(first.contains("fiebre"), "{first:?} from {spans:?}");
    }

    #[test]
    fn a_saved_model_loads_identically() {
        let (coder, _, _) = tiny_coder();
        let dir = tempfile::tempdir().unwrap();
        coder.save(dir.path()).unwrap();
        assert_eq!(Coder::load(dir.path()).unwrap(), coder);
        std::fs::write(dir.path().join("coder.json"), b"{}").unwrap();
        assert!(Coder::load(dir.path()).is_err());
    }
}
