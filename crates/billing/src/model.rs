//! The coding model: a hashed n-gram embedding bag feeding one output unit per code.
//!
//! A document's features `x` (hashed n-grams, unit norm) are summed into a dense vector
//! `h = Σ_j x_j E_j` (`E`: `buckets × dim`); code `c` scores `W_c · h + b_c`, its probability the
//! sigmoid of that. The score is linear in the features, so it splits exactly into one
//! contribution `x_j (E_j · W_c)` per n-gram bucket: the evidence for a code is the text of the
//! n-grams that contribute most to it.

use std::path::Path;

use candle_core::{Device, Tensor};

use crate::corpus::{CodeSystem, Lang};
use crate::features::{Document, Featurizer};
use crate::{Error, Weights};

/// One output of the model: a code and its system.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Label {
    /// Code system.
    pub system: CodeSystem,
    /// The code, upper case.
    pub code: String,
}

impl Label {
    /// The label as a training plan lists it: `D|code` or `P|code`.
    pub fn key(&self) -> String {
        format!("{}|{}", self.system.letter(), self.code)
    }

    /// Reads [`Label::key`]'s form back.
    ///
    /// # Errors
    /// Anything but `D|code` or `P|code` with a non-empty code.
    pub fn from_key(key: &str) -> Result<Self, Error> {
        let system = match key.split_once('|') {
            Some(("D", code)) if !code.is_empty() => (CodeSystem::Diagnosis, code),
            Some(("P", code)) if !code.is_empty() => (CodeSystem::Procedure, code),
            _ => {
                return Err(Error::Model(format!(
                    "label {key:?} is not D|code or P|code"
                )));
            }
        };
        Ok(Label {
            system: system.0,
            code: system.1.to_uppercase(),
        })
    }
}

/// The model's architecture and label space: everything but its weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CoderSpec {
    /// Language of the texts it reads.
    pub lang: Lang,
    /// How texts become features.
    pub featurizer: Featurizer,
    /// Width of the document embedding.
    pub dim: usize,
    /// The codes it scores, sorted (the agreed label space).
    pub labels: Vec<Label>,
}

/// Name of the embedding table, `[buckets, dim]`.
const EMBEDDING: &str = "embedding.weight";
/// Name of the per-code output weights, `[labels, dim]`.
const OUTPUT: &str = "output.weight";
/// Name of the per-code biases, `[labels]`.
const BIAS: &str = "output.bias";
impl CoderSpec {
    /// The `(name, shape)` of its parameter tensors, in order.
    pub fn layout(&self) -> Vec<(String, Vec<usize>)> {
        [EMBEDDING, OUTPUT, BIAS]
            .into_iter()
            .zip(self.ranges())
            .map(|(name, (_, shape))| (name.to_string(), shape))
            .collect()
    }

    /// Checks the sizes, and that the labels are sorted without repeats.
    pub fn check(&self) -> Result<(), Error> {
        if self.featurizer.buckets == 0 || self.featurizer.max_n == 0 || self.dim == 0 {
            return Err(Error::Model(
                "buckets, max_n and dim must be positive".into(),
            ));
        }
        if self.labels.is_empty() || self.labels.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Model(
                "the labels must be non-empty, sorted and distinct".into(),
            ));
        }
        Ok(())
    }

    /// The architecture as `learn` names it in a training plan: an embedding bag of
    /// `buckets × dim` feeding one output per label.
    pub fn model_spec(&self) -> learn::ModelSpec {
        learn::ModelSpec::EmbeddingBag {
            buckets: self.featurizer.buckets as usize,
            dim: self.dim,
            outputs: self.labels.len(),
        }
    }

    /// Deterministic starting weights: [`learn::ModelSpec::init`] of [`Self::model_spec`]
    /// (embedding and output weights uniform in `±sqrt(3 / dim)`, biases -5: no site's code
    /// frequencies go into the starting point).
    pub fn init(&self, seed: u64) -> Weights {
        self.model_spec().init(seed)
    }

    /// The flat-vector range and shape of the embedding, output weights and biases.
    pub(crate) fn ranges(&self) -> [(std::ops::Range<usize>, Vec<usize>); 3] {
        let (buckets, labels, dim) = (
            self.featurizer.buckets as usize,
            self.labels.len(),
            self.dim,
        );
        let embedding = buckets * dim;
        let output = embedding + labels * dim;
        [
            (0..embedding, vec![buckets, dim]),
            (embedding..output, vec![labels, dim]),
            (output..output + labels, vec![labels]),
        ]
    }

    /// Index of a label, if the model has it.
    pub fn label_index(&self, system: CodeSystem, code: &str) -> Option<usize> {
        self.labels
            .binary_search_by(|l| (l.system, l.code.as_str()).cmp(&(system, code)))
            .ok()
    }

    /// Checks that `weights` have this model's layout.
    pub fn check_weights(&self, weights: &Weights) -> Result<(), Error> {
        if weights.layout() != self.layout() {
            return Err(Error::Model(format!(
                "weights of layout {:?} do not fit the model's {:?}",
                weights.layout(),
                self.layout()
            )));
        }
        Ok(())
    }
}

/// The sorted, distinct labels of `codes`.
pub fn label_space(codes: impl IntoIterator<Item = (CodeSystem, String)>) -> Vec<Label> {
    let mut labels: Vec<Label> = codes
        .into_iter()
        .map(|(system, code)| Label {
            system,
            code: code.to_uppercase(),
        })
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// The model's tensors, on the CPU.
pub(crate) struct Params {
    pub(crate) embedding: Tensor,
    pub(crate) output: Tensor,
    pub(crate) bias: Tensor,
}

impl Params {
    /// The tensors of `weights` (already checked against `spec`).
    pub(crate) fn new(spec: &CoderSpec, weights: &Weights) -> Result<Self, Error> {
        let tensor = |(range, shape): (std::ops::Range<usize>, Vec<usize>)| {
            Tensor::from_slice(&weights.values()[range], shape, &Device::Cpu)
        };
        let [embedding, output, bias] = spec.ranges().map(tensor);
        Ok(Self {
            embedding: embedding?,
            output: output?,
            bias: bias?,
        })
    }

    /// Logits `[rows, labels]` of the dense feature rows `x` `[rows, buckets]`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.embedding)?
            .matmul(&self.output.t()?)?
            .broadcast_add(&self.bias)
    }
}

impl Params {
    /// See [`Coder::contributions`]; one `[features, dim] × [dim, labels]` product.
    pub(crate) fn contributions(
        &self,
        doc: &Document,
        labels: &[usize],
    ) -> Result<Vec<Vec<f32>>, Error> {
        if doc.features.is_empty() || labels.is_empty() {
            return Ok(vec![Vec::new(); labels.len()]);
        }
        let device = &Device::Cpu;
        let (buckets, x): (Vec<u32>, Vec<f32>) = doc.features.iter().copied().unzip();
        let rows = doc.features.len();
        let ids: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let embedded = self
            .embedding
            .index_select(&Tensor::from_vec(buckets, rows, device)?, 0)?
            .broadcast_mul(&Tensor::from_vec(x, (rows, 1), device)?)?;
        let output = self
            .output
            .index_select(&Tensor::from_vec(ids, labels.len(), device)?, 0)?;
        Ok(output.matmul(&embedded.t()?)?.to_vec2()?)
    }
}

/// Dense `[docs, buckets]` feature rows of `docs`.
pub(crate) fn dense_rows(docs: &[&Document], buckets: usize) -> Result<Tensor, Error> {
    let mut x = vec![0f32; docs.len() * buckets];
    for (row, doc) in docs.iter().enumerate() {
        for &(bucket, value) in &doc.features {
            x[row * buckets + bucket as usize] = value;
        }
    }
    Ok(Tensor::from_vec(x, (docs.len(), buckets), &Device::Cpu)?)
}

/// A trained coding model: its spec and weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Coder {
    /// Architecture and label space.
    pub spec: CoderSpec,
    /// Parameters, in [`CoderSpec::layout`].
    pub weights: Weights,
}

/// File of the spec inside a model directory.
const SPEC_FILE: &str = "coder.json";
/// File of the weights inside a model directory.
const WEIGHTS_FILE: &str = "weights.safetensors";

/// Documents scored per tensor batch.
const SCORE_BATCH: usize = 64;

impl Coder {
    /// Pairs a spec with weights of its layout.
    pub fn new(spec: CoderSpec, weights: Weights) -> Result<Self, Error> {
        spec.check()?;
        spec.check_weights(&weights)?;
        Ok(Self { spec, weights })
    }

    /// Writes `coder.json` and `weights.safetensors` into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let spec = dir.join(SPEC_FILE);
        std::fs::write(&spec, serde_json::to_vec_pretty(&self.spec)?).map_err(Error::io(&spec))?;
        let weights = dir.join(WEIGHTS_FILE);
        std::fs::write(&weights, self.weights.to_safetensors()).map_err(Error::io(&weights))
    }

    /// Reads a model directory written by [`Coder::save`].
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let spec = dir.join(SPEC_FILE);
        let spec: CoderSpec =
            serde_json::from_slice(&std::fs::read(&spec).map_err(Error::io(&spec))?)?;
        let weights = dir.join(WEIGHTS_FILE);
        let weights =
            Weights::from_safetensors(&std::fs::read(&weights).map_err(Error::io(&weights))?)?;
        Self::new(spec, weights)
    }

    /// Encodes a text with the model's featurizer.
    pub fn encode(&self, text: &str) -> Document {
        self.spec.featurizer.encode(text)
    }

    /// Logits `[docs][labels]` of the documents.
    pub fn logits(&self, docs: &[&Document]) -> Result<Vec<Vec<f32>>, Error> {
        let params = Params::new(&self.spec, &self.weights)?;
        let mut out = Vec::with_capacity(docs.len());
        for batch in docs.chunks(SCORE_BATCH) {
            let x = dense_rows(batch, self.spec.featurizer.buckets as usize)?;
            out.extend(params.forward(&x)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// Each feature's share `x_j (E_j · W_c)` of the logit of every label `c` of `labels` on
    /// `doc`: one row per label, one value per entry of `doc.features`. With the label's bias a
    /// row adds up to the logit.
    pub fn contributions(&self, doc: &Document, labels: &[usize]) -> Result<Vec<Vec<f32>>, Error> {
        Params::new(&self.spec, &self.weights)?.contributions(doc, labels)
    }

    /// The bias of label `label`.
    pub fn bias(&self, label: usize) -> f32 {
        let [_, _, (bias, _)] = self.spec.ranges();
        self.weights.values()[bias.start + label]
    }
}
