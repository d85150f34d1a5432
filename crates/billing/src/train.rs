//! Local training of the coding model: AdamW on the summed binary cross-entropy of every code,
//! candle's autograd for the gradients; or, with [`TrainConfig::dp`], DP-SGD (Poisson-sampled
//! batches, per-example gradients clipped in L2, Gaussian noise) with the `privacy` crate's
//! helpers feeding the same AdamW.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
pub use learn::DpSgd;
use privacy::accountant::SampledGaussian;
use privacy::dp::{ClippedSum, clip_and_sum, noisy_mean, poisson_sample};
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
    /// Record-level differential privacy: DP-SGD instead of shuffled batches (`None`, the
    /// default, for none). Each step Poisson-samples the documents with probability
    /// q = `batch_size` / documents, clips each sampled document's gradient to L2 norm
    /// `clip_norm`, sums them, adds N(0, (`noise_multiplier` × `clip_norm`)²) to every
    /// coordinate and divides by q × documents; an epoch is round(1/q) steps. The noise comes
    /// from the training seed: keep it secret from the aggregator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpSgd>,
}

impl Default for TrainConfig {
    /// 20 epochs of batches of 16 at learning rate 0.01, weight decay 0, no DP (the setting of
    /// the CodiEsp figures in docs/BENCHMARKS.md).
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 16,
            learning_rate: 0.01,
            weight_decay: 0.0,
            dp: None,
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
    /// With DP-SGD, the mechanism that ran (sampling rate, noise multiplier, steps), for the
    /// privacy accountant; `None` without it.
    pub privacy: Option<SampledGaussian>,
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
    if let Some(dp) = &cfg.dp {
        // Clear errors for settings the privacy helpers would refuse mid-training.
        dp.check().map_err(|e| Error::Model(e.to_string()))?;
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
    let report = match &cfg.dp {
        None => shuffled_batches(spec, &params, &mut optimizer, examples, cfg, &mut rng)?,
        Some(dp) => dp_sgd(
            spec,
            &params,
            &vars,
            &mut optimizer,
            examples,
            cfg,
            dp,
            &mut rng,
        )?,
    };
    let mut values = Vec::with_capacity(start.len());
    for var in &vars {
        values.extend(var.as_tensor().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((start.with_values(values)?, report))
}

/// Dense 0/1 targets `[rows, labels]` of the examples `rows`.
fn targets(examples: &[Example], rows: &[usize], labels: usize) -> Result<Tensor, Error> {
    let mut y = vec![0f32; rows.len() * labels];
    for (row, &i) in rows.iter().enumerate() {
        for &l in &examples[i].labels {
            y[row * labels + l] = 1.0;
        }
    }
    Ok(Tensor::from_vec(y, (rows.len(), labels), &Device::Cpu)?)
}

/// Epochs of reshuffled mini-batches, gradients from candle's autograd.
fn shuffled_batches(
    spec: &CoderSpec,
    params: &Params,
    optimizer: &mut AdamW,
    examples: &[Example],
    cfg: &TrainConfig,
    rng: &mut ChaCha8Rng,
) -> Result<TrainReport, Error> {
    let labels = spec.labels.len();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut report = TrainReport {
        epoch_losses: Vec::with_capacity(cfg.epochs),
        steps: 0,
        privacy: None,
    };
    for _ in 0..cfg.epochs {
        order.shuffle(rng);
        let mut total = 0f64;
        for batch in order.chunks(cfg.batch_size) {
            let docs: Vec<&Document> = batch.iter().map(|&i| &examples[i].doc).collect();
            let x = dense_rows(&docs, spec.featurizer.buckets as usize)?;
            let y = targets(examples, batch, labels)?;
            let summed = binary_cross_entropy(&params.forward(&x)?, &y)?;
            total += f64::from(summed.to_scalar::<f32>()?);
            optimizer.backward_step(&(summed / batch.len() as f64)?)?;
            report.steps += 1;
        }
        report
            .epoch_losses
            .push((total / examples.len() as f64) as f32);
    }
    Ok(report)
}

/// Most per-example gradient values held at once (documents × parameters).
const PER_EXAMPLE_CHUNK: usize = 1 << 22;

/// DP-SGD steps (see [`TrainConfig::dp`]); the epoch losses are over the sampled documents.
#[allow(clippy::too_many_arguments)]
fn dp_sgd(
    spec: &CoderSpec,
    params: &Params,
    vars: &[Var],
    optimizer: &mut AdamW,
    examples: &[Example],
    cfg: &TrainConfig,
    dp: &DpSgd,
    rng: &mut ChaCha8Rng,
) -> Result<TrainReport, Error> {
    let n = examples.len();
    let batch = cfg.batch_size.min(n);
    let sample_rate = batch as f64 / n as f64;
    let steps_per_epoch = ((n as f64 / batch as f64).round() as usize).max(1);
    let (clip, noise) = (f64::from(dp.clip_norm), f64::from(dp.noise_multiplier));
    let ranges = spec.ranges();
    let mut report = TrainReport {
        epoch_losses: Vec::with_capacity(cfg.epochs),
        steps: 0,
        privacy: Some(SampledGaussian {
            sample_rate,
            noise_multiplier: noise,
            steps: (cfg.epochs * steps_per_epoch) as u64,
        }),
    };
    for _ in 0..cfg.epochs {
        let (mut loss, mut sampled) = (0f64, 0usize);
        for _ in 0..steps_per_epoch {
            let sample = poisson_sample(n, sample_rate, rng).map_err(privacy_error)?;
            let clipped = clipped_gradient_sum(spec, params, examples, &sample, clip)?;
            loss += clipped.loss;
            sampled += sample.len();
            let mut gradient = clipped.sum.sum;
            noisy_mean(&mut gradient, clip, noise, sample_rate * n as f64, rng)
                .map_err(privacy_error)?;
            let mut grads = GradStore::default();
            for (var, (range, shape)) in vars.iter().zip(ranges.iter()) {
                let part =
                    Tensor::from_slice(&gradient[range.clone()], shape.as_slice(), &Device::Cpu)?;
                grads.insert(var.as_tensor(), part);
            }
            optimizer.step(&grads)?;
            report.steps += 1;
        }
        report.epoch_losses.push(if sampled == 0 {
            f32::NAN
        } else {
            (loss / sampled as f64) as f32
        });
    }
    Ok(report)
}

fn privacy_error(error: privacy::dp::DpError) -> Error {
    Error::Model(format!("DP-SGD: {error}"))
}

/// The clipped per-example gradients of some documents, summed, and their summed loss.
pub(crate) struct ClippedBatch {
    /// Σ clip(g_i), in the flat parameter layout.
    pub(crate) sum: ClippedSum,
    /// Summed loss (over codes and documents) at the current weights.
    pub(crate) loss: f64,
}

/// Each document of `rows`' gradient of its summed cross-entropy, clipped to L2 norm `clip`
/// by [`clip_and_sum`], summed.
///
/// The gradient of one document is exact and closed-form: with `h = xE`, `r = σ(hWᵀ + b) - y`
/// and `g = rW`, it is `r` for the biases, `r ⊗ h` for the output weights and `x_j g` for the
/// embedding row of each of its buckets `j` (zero elsewhere).
pub(crate) fn clipped_gradient_sum(
    spec: &CoderSpec,
    params: &Params,
    examples: &[Example],
    rows: &[usize],
    clip: f64,
) -> Result<ClippedBatch, Error> {
    let [(embedding, _), (output, _), (bias, _)] = spec.ranges();
    let (labels, dim) = (spec.labels.len(), spec.dim);
    let total = bias.end;
    let mut sum = ClippedSum {
        sum: vec![0f32; total],
        examples: 0,
        clipped: 0,
    };
    let mut loss = 0f64;
    let chunk_rows = (PER_EXAMPLE_CHUNK / total).max(1);
    let mut per_example = Vec::new();
    for chunk in rows.chunks(chunk_rows) {
        let docs: Vec<&Document> = chunk.iter().map(|&i| &examples[i].doc).collect();
        let x = dense_rows(&docs, spec.featurizer.buckets as usize)?;
        let y = targets(examples, chunk, labels)?;
        let h = x.matmul(&params.embedding)?;
        let z = h.matmul(&params.output.t()?)?.broadcast_add(&params.bias)?;
        loss += f64::from(binary_cross_entropy(&z, &y)?.to_scalar::<f32>()?);
        let r = (candle_nn::ops::sigmoid(&z)? - &y)?;
        let g = r.matmul(&params.output)?;
        let (h, r, g) = (
            h.to_vec2::<f32>()?,
            r.to_vec2::<f32>()?,
            g.to_vec2::<f32>()?,
        );
        per_example.clear();
        per_example.resize(chunk.len() * total, 0f32);
        for (row, doc) in docs.iter().enumerate() {
            let gradient = &mut per_example[row * total..(row + 1) * total];
            for &(bucket, value) in &doc.features {
                let at = embedding.start + bucket as usize * dim;
                gradient[at..at + dim]
                    .iter_mut()
                    .zip(&g[row])
                    .for_each(|(out, gk)| *out = value * gk);
            }
            for (c, rc) in r[row].iter().enumerate() {
                let at = output.start + c * dim;
                gradient[at..at + dim]
                    .iter_mut()
                    .zip(&h[row])
                    .for_each(|(out, hk)| *out = rc * hk);
            }
            gradient[bias.clone()].copy_from_slice(&r[row]);
        }
        let part = clip_and_sum(&per_example, total, clip).map_err(privacy_error)?;
        sum.sum.iter_mut().zip(&part.sum).for_each(|(s, p)| *s += p);
        sum.examples += part.examples;
        sum.clipped += part.clipped;
    }
    Ok(ClippedBatch { sum, loss })
}

/// Summed binary cross-entropy of logits `z` against 0/1 targets `y`, computed stably as
/// `max(z, 0) - z y + ln(1 + e^-|z|)`.
fn binary_cross_entropy(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (z.relu()? - z.mul(y)? + softplus)?.sum_all()
}

#[cfg(test)]
pub(crate) mod tests {
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
            dp: None,
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

    /// The flat gradient of one document's summed loss from candle's autograd.
    fn autograd_gradient(spec: &CoderSpec, weights: &Weights, example: &Example) -> Vec<f32> {
        let vars: Vec<Var> = spec
            .ranges()
            .into_iter()
            .map(|(range, shape)| {
                Var::from_slice(&weights.values()[range], shape, &Device::Cpu).unwrap()
            })
            .collect();
        let params = Params {
            embedding: vars[0].as_tensor().clone(),
            output: vars[1].as_tensor().clone(),
            bias: vars[2].as_tensor().clone(),
        };
        let x = dense_rows(&[&example.doc], spec.featurizer.buckets as usize).unwrap();
        let y = targets(std::slice::from_ref(example), &[0], spec.labels.len()).unwrap();
        let loss = binary_cross_entropy(&params.forward(&x).unwrap(), &y).unwrap();
        let grads = loss.backward().unwrap();
        vars.iter()
            .flat_map(|v| {
                grads
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .collect()
    }

    fn norm(v: &[f32]) -> f64 {
        v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()
    }

    #[test]
    fn per_example_gradients_match_autograd_and_are_clipped() {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        let weights = spec.init(4);
        let data = examples(&spec, &split);
        let params = Params::new(&spec, &weights).unwrap();
        for (i, example) in data.iter().enumerate() {
            let exact = autograd_gradient(&spec, &weights, example);
            // A clip norm far above the gradient's leaves it as it is.
            let loose = clipped_gradient_sum(&spec, &params, &data, &[i], 1e6).unwrap();
            assert_eq!(loose.sum.clipped, 0);
            let gap = exact
                .iter()
                .zip(&loose.sum.sum)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(gap < 1e-4, "document {i}: {gap}");
            // Clipped to half its norm, the gradient is scaled down to exactly the clip norm,
            // in the same direction.
            let full = norm(&exact);
            assert!(full > 0.0);
            let clip = full / 2.0;
            let tight = clipped_gradient_sum(&spec, &params, &data, &[i], clip).unwrap();
            assert_eq!(tight.sum.clipped, 1);
            assert!((norm(&tight.sum.sum) - clip).abs() < 1e-4 * full.max(1.0));
            assert!(
                exact
                    .iter()
                    .zip(&tight.sum.sum)
                    .all(|(a, b)| (f64::from(*a) * 0.5 - f64::from(*b)).abs() < 1e-5)
            );
        }
        // Summed over every document, each contributes at most the clip norm.
        let clip = data
            .iter()
            .map(|e| norm(&autograd_gradient(&spec, &weights, e)))
            .fold(f64::INFINITY, f64::min)
            / 2.0;
        let rows: Vec<usize> = (0..data.len()).collect();
        let all = clipped_gradient_sum(&spec, &params, &data, &rows, clip).unwrap();
        assert_eq!((all.sum.examples, all.sum.clipped), (6, 6));
        assert!(norm(&all.sum.sum) <= 6.0 * clip + 1e-6);
    }

    #[test]
    fn dp_sgd_trains_deterministically_and_refuses_bad_settings() {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        let data = examples(&spec, &split);
        let cfg = TrainConfig {
            epochs: 30,
            batch_size: 3,
            learning_rate: 0.05,
            weight_decay: 0.0,
            dp: Some(DpSgd {
                clip_norm: 1.0,
                noise_multiplier: 0.5,
            }),
        };
        let run = |cfg: &TrainConfig, seed| train(&spec, &spec.init(1), &data, cfg, seed);
        let (weights, report) = run(&cfg, 2).unwrap();
        assert_eq!(run(&cfg, 2).unwrap().0, weights);
        assert_eq!(report.steps, 60);
        let event = report.privacy.unwrap();
        assert_eq!((event.sample_rate, event.steps), (0.5, 60));
        // Clipped, noisy steps still learn the tiny task.
        let first = report.epoch_losses[0];
        let last = *report.epoch_losses.last().unwrap();
        assert!(last < first / 2.0, "{first} -> {last}");
        for (clip_norm, noise_multiplier) in [(0.0, 1.0), (f32::NAN, 1.0), (1.0, -0.1)] {
            let bad = TrainConfig {
                dp: Some(DpSgd {
                    clip_norm,
                    noise_multiplier,
                }),
                ..cfg.clone()
            };
            assert!(run(&bad, 2).is_err());
        }
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
