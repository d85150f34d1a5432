//! Model specifications, deterministic initialisation and the candle forward pass.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Dataset, Error, Weights};

/// Which model to train: the architecture, not its parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// One linear layer to a single logit.
    LogisticRegression {
        /// Number of input features.
        inputs: usize,
    },
    /// Fully connected ReLU hidden layers of the given widths, then one logit output.
    Mlp {
        /// Number of input features.
        inputs: usize,
        /// Widths of the hidden layers, first to last.
        hidden: Vec<usize>,
    },
    /// A bag of hashed text features: `buckets` embeddings of width `dim`, summed over a
    /// document's features, feeding `outputs` independent logits (multi-label text
    /// classification, e.g. clinical coding). The task that reads the texts trains it
    /// (`billing`); `learn`'s tabular [`crate::train`] and [`crate::evaluate`] refuse it.
    EmbeddingBag {
        /// Hash buckets (the input width).
        buckets: usize,
        /// Embedding width.
        dim: usize,
        /// Labels scored.
        outputs: usize,
    },
    /// A task's own model, known here only by its tensors, every parameter starting at zero
    /// (e.g. `notes`' section classifier). The task trains and evaluates it.
    ZeroInit {
        /// `(name, shape)` of each tensor, in order.
        tensors: Vec<(String, Vec<usize>)>,
    },
}

/// Initial bias of every output of an [`ModelSpec::EmbeddingBag`]: sigmoid(-5) ≈ 0.7 %,
/// about one label in 150 (no site's label frequencies go into the starting point).
const EMBEDDING_BAG_BIAS: f32 = -5.0;

impl ModelSpec {
    /// Number of input features.
    pub fn inputs(&self) -> usize {
        match self {
            Self::LogisticRegression { inputs } | Self::Mlp { inputs, .. } => *inputs,
            Self::EmbeddingBag { buckets, .. } => *buckets,
            Self::ZeroInit { tensors } => tensors
                .first()
                .and_then(|(_, shape)| shape.last().copied())
                .unwrap_or(0),
        }
    }

    /// The `(name, shape)` of every parameter tensor, in order.
    ///
    /// Logistic regression: `linear.weight` `[1, inputs]`, `linear.bias` `[1]`.
    /// MLP: `layer{i}.weight` `[out, in]` and `layer{i}.bias` `[out]` for every layer, the last
    /// one having `out = 1`. Embedding bag: `embedding.weight` `[buckets, dim]`,
    /// `output.weight` `[outputs, dim]`, `output.bias` `[outputs]`.
    pub fn layout(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            Self::ZeroInit { tensors } => tensors.clone(),
            Self::EmbeddingBag {
                buckets,
                dim,
                outputs,
            } => vec![
                ("embedding.weight".into(), vec![*buckets, *dim]),
                ("output.weight".into(), vec![*outputs, *dim]),
                ("output.bias".into(), vec![*outputs]),
            ],
            Self::LogisticRegression { inputs } => vec![
                ("linear.weight".into(), vec![1, *inputs]),
                ("linear.bias".into(), vec![1]),
            ],
            Self::Mlp { .. } => self
                .layer_sizes()
                .into_iter()
                .enumerate()
                .flat_map(|(i, (fan_in, fan_out))| {
                    [
                        (format!("layer{i}.weight"), vec![fan_out, fan_in]),
                        (format!("layer{i}.bias"), vec![fan_out]),
                    ]
                })
                .collect(),
        }
    }

    /// `(fan_in, fan_out)` of each linear layer, input to output (none for the text models,
    /// which `learn` does not build).
    fn layer_sizes(&self) -> Vec<(usize, usize)> {
        match self {
            Self::EmbeddingBag { .. } | Self::ZeroInit { .. } => Vec::new(),
            Self::LogisticRegression { inputs } => vec![(*inputs, 1)],
            Self::Mlp { inputs, hidden } => {
                let widths: Vec<usize> = std::iter::once(*inputs)
                    .chain(hidden.iter().copied())
                    .chain(std::iter::once(1))
                    .collect();
                widths.windows(2).map(|w| (w[0], w[1])).collect()
            }
        }
    }

    /// Deterministic initial weights from a seed.
    ///
    /// Logistic regression starts at zero. MLP weights are drawn from a `ChaCha8Rng` seeded
    /// with `seed`: Kaiming-uniform (bound `sqrt(6 / fan_in)`) for layers followed by a ReLU,
    /// Xavier-uniform (bound `sqrt(6 / (fan_in + fan_out))`) for the output layer; biases are zero.
    /// An embedding bag's embeddings and output weights are uniform in `±sqrt(3 / dim)` from a
    /// `ChaCha8Rng` seeded with `seed`, its biases [`EMBEDDING_BAG_BIAS`].
    pub fn init(&self, seed: u64) -> Weights {
        let layout = self.layout();
        let mut values = Vec::new();
        match self {
            Self::ZeroInit { tensors } => {
                values.resize(
                    tensors
                        .iter()
                        .map(|(_, s)| s.iter().product::<usize>())
                        .sum(),
                    0.0,
                );
            }
            Self::EmbeddingBag {
                buckets,
                dim,
                outputs,
            } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let bound = (3.0 / *dim as f32).sqrt();
                let random = (buckets + outputs) * dim;
                values.extend((0..random).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound));
                values.resize(random + outputs, EMBEDDING_BAG_BIAS);
            }
            Self::LogisticRegression { inputs } => values.resize(inputs + 1, 0.0),
            Self::Mlp { .. } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let sizes = self.layer_sizes();
                let last = sizes.len() - 1;
                for (i, &(fan_in, fan_out)) in sizes.iter().enumerate() {
                    let bound = if i < last {
                        (6.0 / fan_in as f64).sqrt()
                    } else {
                        (6.0 / (fan_in + fan_out) as f64).sqrt()
                    } as f32;
                    values.extend(
                        (0..fan_in * fan_out).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound),
                    );
                    values.resize(values.len() + fan_out, 0.0);
                }
            }
        }
        Weights::from_checked_layout(layout, values)
    }

    /// Stable textual description, e.g. `mlp(inputs=13,hidden=[16,8])`, for hashing into plans.
    pub fn describe(&self) -> String {
        match self {
            Self::LogisticRegression { inputs } => format!("logistic_regression(inputs={inputs})"),
            Self::Mlp { inputs, hidden } => {
                let widths: Vec<String> = hidden.iter().map(usize::to_string).collect();
                format!("mlp(inputs={inputs},hidden=[{}])", widths.join(","))
            }
            Self::EmbeddingBag {
                buckets,
                dim,
                outputs,
            } => format!("embedding_bag(buckets={buckets},dim={dim},outputs={outputs})"),
            Self::ZeroInit { tensors } => {
                let parts: Vec<String> = tensors
                    .iter()
                    .map(|(name, shape)| format!("{name}={shape:?}"))
                    .collect();
                format!("zero_init({})", parts.join(",")).replace(' ', "")
            }
        }
    }

    /// Checks that the model can be built and that `weights` and `data` fit it.
    pub(crate) fn check(&self, weights: &Weights, data: &Dataset) -> Result<(), Error> {
        if matches!(self, Self::EmbeddingBag { .. } | Self::ZeroInit { .. }) {
            return Err(Error::Model(format!(
                "{} reads texts: its text task trains and evaluates it, not a table",
                self.describe()
            )));
        }
        if self.layer_sizes().iter().any(|&(i, o)| i == 0 || o == 0) {
            return Err(Error::Model(format!(
                "{} has a zero-sized layer",
                self.describe()
            )));
        }
        let expected = self.layout();
        if weights.layout() != expected {
            return Err(Error::LayoutMismatch(format!(
                "{} expects {expected:?}, got {:?}",
                self.describe(),
                weights.layout()
            )));
        }
        data.check()?;
        if data.features != self.inputs() {
            return Err(Error::Dataset(format!(
                "{} expects {} features, the data has {}",
                self.describe(),
                self.inputs(),
                data.features
            )));
        }
        Ok(())
    }
}

/// Logits `[rows, 1]` of the network whose parameters are `params` (weight, bias, weight, bias,
/// ... in layout order) on the row-major batch `x` `[rows, inputs]`; ReLU between layers.
pub(crate) fn forward(params: &[Tensor], x: &Tensor) -> candle_core::Result<Tensor> {
    let layers = params.len() / 2;
    let mut h = x.clone();
    for (i, layer) in params.chunks_exact(2).enumerate() {
        h = dense(&h, &layer[0], &layer[1])?;
        if i + 1 < layers {
            h = h.relu()?;
        }
    }
    Ok(h)
}

/// The affine map `x W^T + b` of `x` `[rows, in]` with `w` `[out, in]` and `b` `[out]`.
///
/// A layer with one output (logistic regression, an MLP's last layer) multiplies and sums with
/// broadcasting instead of calling `matmul`: candle's CPU matmul looks up the number of
/// physical CPUs (reading `/proc/cpuinfo` unless `RAYON_NUM_THREADS` is set) on every call,
/// which costs far more than the arithmetic of the tiny models trained per client.
pub(crate) fn dense(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let product = if w.dim(0)? == 1 {
        x.broadcast_mul(w)?.sum_keepdim(1)?
    } else {
        x.matmul(&w.t()?)?
    };
    product.broadcast_add(b)
}

/// One logit per row of `data` (already checked against the model with [`ModelSpec::check`]).
pub(crate) fn logits(weights: &Weights, data: &Dataset) -> Result<Vec<f32>, Error> {
    let device = Device::Cpu;
    let params = weights
        .parts()
        .into_iter()
        .map(|(_, shape, range)| Tensor::from_slice(&weights.values()[range], shape, &device))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let x = Tensor::from_slice(&data.x, (data.len(), data.features), &device)?;
    Ok(forward(&params, &x)?.flatten_all()?.to_vec1()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_name_every_layer() {
        let lr = ModelSpec::LogisticRegression { inputs: 3 };
        assert_eq!(
            lr.layout(),
            vec![
                ("linear.weight".to_string(), vec![1, 3]),
                ("linear.bias".to_string(), vec![1])
            ]
        );
        let mlp = ModelSpec::Mlp {
            inputs: 3,
            hidden: vec![4, 2],
        };
        let names: Vec<(String, Vec<usize>)> = mlp.layout();
        assert_eq!(
            names,
            vec![
                ("layer0.weight".to_string(), vec![4, 3]),
                ("layer0.bias".to_string(), vec![4]),
                ("layer1.weight".to_string(), vec![2, 4]),
                ("layer1.bias".to_string(), vec![2]),
                ("layer2.weight".to_string(), vec![1, 2]),
                ("layer2.bias".to_string(), vec![1]),
            ]
        );
        assert_eq!(mlp.init(0).len(), 12 + 4 + 8 + 2 + 2 + 1);
    }

    #[test]
    fn init_is_deterministic_for_a_seed() {
        let mlp = ModelSpec::Mlp {
            inputs: 5,
            hidden: vec![8],
        };
        assert_eq!(mlp.init(3), mlp.init(3));
        assert_ne!(mlp.init(3), mlp.init(4));
        let w = mlp.init(3);
        let bound = (6.0f32 / 5.0).sqrt();
        assert!(w.values()[..40].iter().all(|v| v.abs() <= bound));
        assert!(w.values()[40..48].iter().all(|&v| v == 0.0));
        let lr = ModelSpec::LogisticRegression { inputs: 4 };
        assert_eq!(lr.init(9).values(), &[0.0; 5]);
    }

    #[test]
    fn describe_is_stable_text() {
        assert_eq!(
            ModelSpec::LogisticRegression { inputs: 13 }.describe(),
            "logistic_regression(inputs=13)"
        );
        assert_eq!(
            ModelSpec::Mlp {
                inputs: 13,
                hidden: vec![16, 8]
            }
            .describe(),
            "mlp(inputs=13,hidden=[16,8])"
        );
    }

    #[test]
    fn forward_computes_a_relu_network() {
        // One hidden unit: h = relu(2*x0 - x1 + 0.5), logit = 3*h - 1.
        let mlp = ModelSpec::Mlp {
            inputs: 2,
            hidden: vec![1],
        };
        let w = Weights::new(mlp.layout(), vec![2.0, -1.0, 0.5, 3.0, -1.0]).unwrap();
        let data = Dataset::new(2, vec![1.0, 0.0, 0.0, 5.0], vec![1.0, 0.0]).unwrap();
        mlp.check(&w, &data).unwrap();
        assert_eq!(logits(&w, &data).unwrap(), vec![3.0 * 2.5 - 1.0, -1.0]);
    }

    #[test]
    fn single_output_layer_matches_matmul() {
        let device = Device::Cpu;
        let x: Vec<f32> = (0..40 * 30)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let x = Tensor::from_vec(x, (40, 30), &device).unwrap();
        let w: Vec<f32> = (0..30).map(|i| (i as f32 - 15.0) / 10.0).collect();
        let w = Tensor::from_vec(w, (1, 30), &device).unwrap();
        let b = Tensor::new(&[0.5f32], &device).unwrap();
        let summed: Vec<f32> = dense(&x, &w, &b)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let multiplied: Vec<f32> = x
            .matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in summed.iter().zip(&multiplied) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn check_rejects_wrong_layout_features_and_empty_layers() {
        let spec = ModelSpec::LogisticRegression { inputs: 2 };
        let data = Dataset::new(2, vec![1.0, 2.0], vec![1.0]).unwrap();
        let other = ModelSpec::LogisticRegression { inputs: 3 };
        assert!(matches!(
            spec.check(&other.init(0), &data),
            Err(Error::LayoutMismatch(_))
        ));
        assert!(matches!(
            other.check(&other.init(0), &data),
            Err(Error::Dataset(_))
        ));
        let empty = ModelSpec::Mlp {
            inputs: 2,
            hidden: vec![0],
        };
        assert!(matches!(
            empty.check(&empty.init(0), &data),
            Err(Error::Model(_))
        ));
    }

    #[test]
    fn spec_serialises_with_a_kind_tag() {
        let lr = ModelSpec::LogisticRegression { inputs: 30 };
        assert_eq!(
            serde_json::to_string(&lr).unwrap(),
            r#"{"kind":"logistic_regression","inputs":30}"#
        );
        let mlp: ModelSpec =
            serde_json::from_str(r#"{"kind":"mlp","inputs":13,"hidden":[16,8]}"#).unwrap();
        assert_eq!(
            mlp,
            ModelSpec::Mlp {
                inputs: 13,
                hidden: vec![16, 8]
            }
        );
    }

    #[test]
    fn a_zero_init_model_is_its_tensors_at_zero() {
        let spec = ModelSpec::ZeroInit {
            tensors: vec![("w".into(), vec![3, 4]), ("b".into(), vec![3])],
        };
        let w = spec.init(1);
        assert_eq!(w.layout(), spec.layout());
        assert!(w.values().iter().all(|v| *v == 0.0) && w.len() == 15);
        assert_eq!(spec.describe(), "zero_init(w=[3,4],b=[3])");
        assert_eq!(spec.inputs(), 4);
    }

    #[test]
    fn an_embedding_bag_is_laid_out_and_started_but_not_trained_on_tables() {
        let bag = ModelSpec::EmbeddingBag {
            buckets: 8,
            dim: 3,
            outputs: 2,
        };
        let w = bag.init(7);
        assert_eq!(w.len(), 8 * 3 + 2 * 3 + 2);
        assert_eq!(w, bag.init(7));
        assert_ne!(w, bag.init(8));
        let bound = 1.0f32;
        assert!(
            w.values()[..30]
                .iter()
                .all(|v| v.abs() <= bound && *v != 0.0)
        );
        assert_eq!(&w.values()[30..], &[-5.0, -5.0]);
        assert_eq!(bag.inputs(), 8);
        let data = Dataset::new(8, vec![0.0; 8], vec![1.0]).unwrap();
        let err = crate::evaluate(&bag, &w, &data).unwrap_err().to_string();
        assert!(err.contains("reads texts"), "{err}");
    }
}
