//! Federation-ready local training of the coding model, with no dependency on the federation's
//! own crates: what one hospital does with the global weights each round, and how the
//! hospitals agree on a label space without revealing their rare codes.
//!
//! - [`LocalCoding`] holds a hospital's coded documents and the model spec;
//!   [`LocalCoding::train`] trains the global weights on them (optionally with DP-SGD) and
//!   returns the new weights, the number of documents, the loss and the privacy event;
//!   [`LocalCoding::evaluate`] scores weights on them.
//! - Label space: every hospital counts, over a **public** code list (e.g. the CMS ICD-10-CM
//!   and ICD-10-PCS tables), how many of its documents carry each code ([`code_counts`]); the
//!   federation sums the vectors under secure aggregation, so only the sum is ever seen; and
//!   [`agreed_labels`] keeps the codes whose summed count reaches a minimum. A code only one
//!   hospital uses, fewer times than the minimum, never appears anywhere.

use std::collections::BTreeMap;

use privacy::accountant::SampledGaussian;

use crate::corpus::{CodeSystem, Split};
use crate::metrics::mean_average_precision;
use crate::model::{Coder, CoderSpec, Label};
use crate::train::{Example, TrainConfig, examples, train};
use crate::{Error, Weights};

/// One hospital's share of a federated coding plan: its coded documents, the agreed model spec
/// and its local training settings.
#[derive(Clone, Debug)]
pub struct LocalCoding {
    spec: CoderSpec,
    examples: Vec<Example>,
    config: TrainConfig,
    privacy: Vec<SampledGaussian>,
}

/// Scores of a model on a hospital's documents.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CodingMetrics {
    /// Documents scored.
    pub documents: usize,
    /// Mean loss per document (binary cross-entropy summed over the codes).
    pub loss: f64,
    /// CodiEsp MAP of the ranked diagnosis codes, over the documents that have some.
    pub map_diagnosis: f64,
    /// CodiEsp MAP of the ranked procedure codes, over the documents that have some.
    pub map_procedure: f64,
    /// Fraction of documents whose best-scored code is one of theirs (precision at 1).
    pub precision_at_1: f64,
}

impl CodingMetrics {
    /// The metrics by name (`documents`, `loss`, `map_diagnosis`, `map_procedure`), for a
    /// federation's generic metric maps.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        [
            ("documents", self.documents as f64),
            ("loss", self.loss),
            ("map_diagnosis", self.map_diagnosis),
            ("map_procedure", self.map_procedure),
            ("precision_at_1", self.precision_at_1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl LocalCoding {
    /// A hospital's training state. Errors when the spec is invalid, there are no documents,
    /// a label index is outside the spec's labels, or the configuration cannot train.
    pub fn new(
        spec: CoderSpec,
        examples: Vec<Example>,
        config: TrainConfig,
    ) -> Result<Self, Error> {
        spec.check()?;
        if examples.is_empty() {
            return Err(Error::Model("a hospital needs coded documents".into()));
        }
        if config.epochs == 0 || config.batch_size == 0 {
            return Err(Error::Model(
                "local training needs epochs and a batch size".into(),
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
        Ok(Self {
            spec,
            examples,
            config,
            privacy: Vec::new(),
        })
    }

    /// The documents of a CodiEsp-layout split, encoded for `spec` (codes outside its label
    /// space are left out).
    pub fn from_split(spec: CoderSpec, split: &Split, config: TrainConfig) -> Result<Self, Error> {
        let examples = examples(&spec, split);
        Self::new(spec, examples, config)
    }

    /// The agreed model spec.
    pub fn spec(&self) -> &CoderSpec {
        &self.spec
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no documents (never true of a built value).
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// One round of local training from the `global` weights: returns the new weights, the
    /// number of documents (the update's weight in federated averaging), the mean training loss
    /// of the last local epoch, and with DP-SGD the mechanism that ran, for the accountant
    /// (it is also kept in [`LocalCoding::privacy_events`]).
    ///
    /// Deterministic: the same weights and `seed` give bit-identical results. With DP-SGD the
    /// seed draws the batches and the noise, so it must be secret from the aggregator.
    pub fn train(
        &mut self,
        global: &Weights,
        seed: u64,
    ) -> Result<(Weights, u64, f32, Option<SampledGaussian>), Error> {
        let (weights, report) = train(&self.spec, global, &self.examples, &self.config, seed)?;
        if let Some(event) = &report.privacy {
            self.privacy.push(*event);
        }
        let loss = report.epoch_losses.last().copied().unwrap_or(f32::NAN);
        Ok((weights, self.examples.len() as u64, loss, report.privacy))
    }

    /// Scores `weights` on the hospital's documents: mean loss and CodiEsp MAP of each system.
    pub fn evaluate(&self, weights: &Weights) -> Result<CodingMetrics, Error> {
        evaluate(&self.spec, weights, &self.examples)
    }

    /// The DP-SGD mechanisms of every [`LocalCoding::train`] call so far, in order (empty
    /// without DP): compose them in an `RdpAccountant` for the hospital's ε.
    pub fn privacy_events(&self) -> &[SampledGaussian] {
        &self.privacy
    }
}

/// `weights`' metrics on `examples` of the model `spec`: loss, MAP per code system,
/// precision at 1.
///
/// # Errors
/// Weights that do not fit `spec`.
pub fn evaluate(
    spec: &CoderSpec,
    weights: &Weights,
    examples: &[Example],
) -> Result<CodingMetrics, Error> {
    if examples.is_empty() {
        return Err(Error::Model("no documents to evaluate on".into()));
    }
    let coder = Coder::new(spec.clone(), weights.clone())?;
    let docs: Vec<_> = examples.iter().map(|e| &e.doc).collect();
    let logits = coder.logits(&docs)?;
    let mut loss = 0f64;
    let mut hits = 0usize;
    let mut ranked: [BTreeMap<String, Vec<String>>; 2] = Default::default();
    let mut gold: [BTreeMap<String, Vec<String>>; 2] = Default::default();
    for (i, (example, logits)) in examples.iter().zip(&logits).enumerate() {
        for (l, &z) in logits.iter().enumerate() {
            let y = if example.labels.contains(&l) {
                1.0
            } else {
                0.0
            };
            let z = f64::from(z);
            loss += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        if order
            .first()
            .is_some_and(|top| example.labels.contains(top))
        {
            hits += 1;
        }
        for (s, system) in CodeSystem::ALL.into_iter().enumerate() {
            let of_system = |l: &usize| spec.labels[*l].system == system;
            let codes: Vec<String> = example
                .labels
                .iter()
                .filter(|l| of_system(l))
                .map(|l| l.to_string())
                .collect();
            if !codes.is_empty() {
                gold[s].insert(i.to_string(), codes);
            }
            ranked[s].insert(
                i.to_string(),
                order
                    .iter()
                    .filter(|l| of_system(l))
                    .map(|l| l.to_string())
                    .collect(),
            );
        }
    }
    let map = |s: usize| mean_average_precision(&ranked[s], &gold[s]).1;
    Ok(CodingMetrics {
        documents: examples.len(),
        loss: loss / examples.len() as f64,
        map_diagnosis: map(0),
        map_procedure: map(1),
        precision_at_1: hits as f64 / examples.len() as f64,
    })
}

/// The [`Example`]s of `notes` for the model `spec` (codes outside its label space left out;
/// notes left with no code of the space dropped, as they teach it nothing).
pub fn note_examples(spec: &CoderSpec, notes: &[crate::coded::CodedNote]) -> Vec<Example> {
    notes
        .iter()
        .filter_map(|note| {
            let mut labels: Vec<usize> = note
                .codes
                .iter()
                .filter_map(|(system, code)| spec.label_index(*system, code))
                .collect();
            labels.sort_unstable();
            labels.dedup();
            (!labels.is_empty()).then(|| Example {
                doc: spec.featurizer.encode(&note.text),
                labels,
            })
        })
        .collect()
}

/// The sorted, distinct labels of a public code list (e.g. every code of the CMS tables).
pub fn public_code_list(codes: impl IntoIterator<Item = (CodeSystem, String)>) -> Vec<Label> {
    crate::label_space(codes)
}

/// A hospital's count vector over the `public` code list (sorted and distinct, as
/// [`public_code_list`] makes it): entry `i` is the number of its documents carrying
/// `public[i]` (a code counts once per document). Codes outside the list are not counted.
/// The vector is what the hospital contributes to the secure sum; it stays private.
pub fn code_counts<D, C>(public: &[Label], documents: D) -> Vec<f32>
where
    D: IntoIterator<Item = C>,
    C: IntoIterator<Item = (CodeSystem, String)>,
{
    let mut counts = vec![0f32; public.len()];
    for codes in documents {
        let mut seen: Vec<usize> = codes
            .into_iter()
            .filter_map(|(system, code)| {
                let code = code.to_uppercase();
                public
                    .binary_search_by(|l| (l.system, l.code.as_str()).cmp(&(system, &code)))
                    .ok()
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for i in seen {
            counts[i] += 1.0;
        }
    }
    counts
}

/// The codes of each document of a CodiEsp-layout split, for [`code_counts`].
pub fn split_documents(split: &Split) -> Vec<Vec<(CodeSystem, String)>> {
    split
        .cases
        .iter()
        .map(|case| {
            CodeSystem::ALL
                .into_iter()
                .flat_map(|system| {
                    split
                        .codes(system)
                        .get(&case.id)
                        .into_iter()
                        .flatten()
                        .map(move |code| (system, code.clone()))
                })
                .collect()
        })
        .collect()
}

/// The agreed label space: the codes of `public` whose summed count (the secure sum of every
/// hospital's [`code_counts`], rounded to the nearest integer so that a quantised sum reads
/// exactly) is at least `min_count`. Pure: every hospital computes the same space from the
/// same sum. Errors when the lengths differ, a sum is not finite, `min_count` is 0, the list
/// is not sorted and distinct, or no code qualifies.
pub fn agreed_labels(
    public: &[Label],
    summed: &[f32],
    min_count: u32,
) -> Result<Vec<Label>, Error> {
    if public.len() != summed.len() {
        return Err(Error::Model(format!(
            "{} summed counts for {} public codes",
            summed.len(),
            public.len()
        )));
    }
    if min_count == 0 {
        return Err(Error::Model("the minimum count must be at least 1".into()));
    }
    if public.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::Model(
            "the public code list must be sorted and distinct".into(),
        ));
    }
    if let Some(bad) = summed.iter().find(|c| !c.is_finite()) {
        return Err(Error::Model(format!("summed count {bad} is not finite")));
    }
    let labels: Vec<Label> = public
        .iter()
        .zip(summed)
        .filter(|(_, c)| c.round() >= min_count as f32)
        .map(|(l, _)| l.clone())
        .collect();
    if labels.is_empty() {
        return Err(Error::Model(format!(
            "no code reaches the minimum count {min_count}"
        )));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::DpSgd;
    use crate::train::tests::{tiny_spec, tiny_split};

    fn dp_config(noise_multiplier: f32) -> TrainConfig {
        TrainConfig {
            epochs: 3,
            batch_size: 2,
            learning_rate: 0.05,
            weight_decay: 0.0,
            dp: Some(DpSgd {
                clip_norm: 1.0,
                noise_multiplier,
            }),
        }
    }

    #[test]
    fn local_training_is_deterministic_and_reports_the_dp_mechanism() {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        let global = spec.init(1);
        let mut site = LocalCoding::from_split(spec.clone(), &split, dp_config(1.1)).unwrap();
        let (a, samples, loss, event) = site.train(&global, 9).unwrap();
        let (b, ..) = site.train(&global, 9).unwrap();
        let (c, ..) = site.train(&global, 10).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, global);
        assert_eq!(samples, 6);
        assert!(loss.is_finite() && loss > 0.0);
        // q = 2 / 6; an epoch is round(6 / 2) = 3 steps.
        let event = event.unwrap();
        assert_eq!(event.steps, 9);
        assert!((event.sample_rate - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(event.noise_multiplier, 1.1f32 as f64);
        assert_eq!(site.privacy_events().len(), 3);
        // The noise is really added: without it the same seed gives other weights.
        let mut quiet = LocalCoding::from_split(spec, &split, dp_config(0.0)).unwrap();
        assert_ne!(quiet.train(&global, 9).unwrap().0, a);
    }

    #[test]
    fn training_without_dp_improves_the_local_metrics() {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        let cfg = TrainConfig {
            epochs: 40,
            batch_size: 2,
            learning_rate: 0.05,
            ..TrainConfig::default()
        };
        let mut site = LocalCoding::from_split(spec.clone(), &split, cfg).unwrap();
        let global = spec.init(1);
        let before = site.evaluate(&global).unwrap();
        let (trained, _, _, event) = site.train(&global, 3).unwrap();
        assert!(event.is_none() && site.privacy_events().is_empty());
        let after = site.evaluate(&trained).unwrap();
        assert_eq!(after.documents, 6);
        assert!(after.loss < before.loss / 5.0, "{before:?} -> {after:?}");
        assert_eq!(after.map_diagnosis, 1.0);
        assert_eq!(after.map_procedure, 1.0);
        assert_eq!(after.to_map()["map_procedure"], 1.0);
    }

    #[test]
    fn bad_local_setups_are_refused() {
        let split = tiny_split();
        let spec = tiny_spec(&split);
        assert!(LocalCoding::new(spec.clone(), vec![], TrainConfig::default()).is_err());
        let mut data = examples(&spec, &split);
        data[0].labels.push(99);
        assert!(LocalCoding::new(spec.clone(), data, TrainConfig::default()).is_err());
        let mut bad_dp = LocalCoding::from_split(spec.clone(), &split, dp_config(-1.0)).unwrap();
        assert!(bad_dp.train(&spec.init(0), 0).is_err());
        let other = CoderSpec {
            dim: 3,
            ..spec.clone()
        };
        let mut site = LocalCoding::from_split(spec, &split, dp_config(1.0)).unwrap();
        assert!(site.train(&other.init(0), 0).is_err());
        assert!(site.evaluate(&other.init(0)).is_err());
    }

    #[test]
    fn the_label_space_keeps_codes_counted_often_enough_across_hospitals() {
        let d = CodeSystem::Diagnosis;
        let p = CodeSystem::Procedure;
        let public = public_code_list([
            (d, "r50.9".to_string()),
            (d, "S72.0".to_string()),
            (d, "A00".to_string()),
            (p, "BW03ZZZ".to_string()),
        ]);
        // Hospital 1: fever twice (once repeated in a document), a fracture, an unlisted code.
        let h1 = code_counts(
            &public,
            [
                vec![(d, "R50.9".to_string()), (d, "r50.9".to_string())],
                vec![(d, "R50.9".to_string()), (d, "S72.0".to_string())],
                vec![(d, "Z99.9".to_string())],
            ],
        );
        // Hospital 2: the fracture with its X-ray, and the rare A00 once.
        let h2 = code_counts(
            &public,
            [vec![
                (d, "S72.0".to_string()),
                (p, "bw03zzz".to_string()),
                (d, "A00".to_string()),
            ]],
        );
        let order: Vec<&str> = public.iter().map(|l| l.code.as_str()).collect();
        assert_eq!(order, ["A00", "R50.9", "S72.0", "BW03ZZZ"]);
        assert_eq!(h1, [0.0, 2.0, 1.0, 0.0]);
        assert_eq!(h2, [1.0, 0.0, 1.0, 1.0]);
        // The secure sum, read back with a small quantisation error.
        let summed: Vec<f32> = h1.iter().zip(&h2).map(|(a, b)| a + b + 0.003).collect();
        let codes =
            |labels: Vec<Label>| -> Vec<String> { labels.into_iter().map(|l| l.code).collect() };
        assert_eq!(
            codes(agreed_labels(&public, &summed, 2).unwrap()),
            ["R50.9", "S72.0"]
        );
        assert_eq!(codes(agreed_labels(&public, &summed, 1).unwrap()).len(), 4);
        assert!(agreed_labels(&public, &summed, 3).is_err());
        assert!(agreed_labels(&public, &summed, 0).is_err());
        assert!(agreed_labels(&public, &summed[1..], 1).is_err());
        assert!(agreed_labels(&public, &[f32::NAN, 1.0, 1.0, 1.0], 1).is_err());
        let mut unsorted = public.clone();
        unsorted.swap(0, 1);
        assert!(agreed_labels(&unsorted, &summed, 1).is_err());
    }

    #[test]
    fn split_documents_list_each_case_codes() {
        let split = tiny_split();
        let docs = split_documents(&split);
        assert_eq!(docs.len(), 6);
        assert_eq!(
            docs[2],
            [
                (CodeSystem::Diagnosis, "S72.0".to_string()),
                (CodeSystem::Procedure, "BW03ZZZ".to_string())
            ]
        );
        assert!(docs[5].is_empty());
    }
}
