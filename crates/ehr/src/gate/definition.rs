//! A dataset definition: which patients (a split tag), which coded resources become which
//! feature, and the label. Written in JSON, e.g. `definitions/fed-heart-disease.json`.

use serde::{Deserialize, Serialize};

use super::consent::{Purpose, default_research_purposes};
use crate::error::{Error, Result};

/// A code: `system` and `code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// The code system URI.
    pub system: String,
    /// The code.
    pub code: String,
}

/// Where patients' train/test membership is recorded: a `Patient.meta.tag` of `system` with
/// code `train` or `test`. Patients without it are not part of the dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The tag system.
    pub system: String,
    /// The code of training patients.
    pub train: String,
    /// The code of test patients.
    pub test: String,
}

/// How an Observation's value becomes a number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Value {
    /// `valueQuantity.value` (or `valueInteger`), which must be exact (no comparator).
    Number,
    /// `valueBoolean`: 1 or 0.
    Boolean,
    /// 1 when `valueCodeableConcept` has this coding, else 0.
    Equals {
        /// The system of the code compared with.
        system: String,
        /// The code compared with.
        code: String,
    },
    /// 1 when the quantity is above `threshold`, 0 when at or below (comparators such as
    /// `> 120` are understood), missing when it cannot tell.
    Above {
        /// The threshold.
        threshold: f64,
    },
}

/// Where a feature comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// The patient's latest final Observation with `code`.
    Observation {
        /// The Observation's code (one of its codings).
        code: Code,
        /// How its value becomes the feature.
        value: Value,
    },
    /// `Patient.gender`.
    Gender {
        /// Value for `male`.
        male: f32,
        /// Value for `female`.
        female: f32,
    },
}

/// One feature column (unknown fields are refused by its source).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The column name.
    pub name: String,
    /// Its source.
    #[serde(flatten)]
    pub source: Source,
}

/// The label: 1 when the patient has a Condition with `code` whose verification status is
/// `confirmed`, 0 when it is `refuted`; patients with neither have no label and no row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// The Condition's code.
    pub condition: Code,
}

/// A dataset definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDefinition {
    /// The dataset name that training plans refer to.
    pub name: String,
    /// Train/test membership.
    pub split: Split,
    /// The feature columns, in order.
    pub features: Vec<Feature>,
    /// The label.
    pub label: Label,
    /// Purposes of use that a Consent may deny to exclude its patient (default: HL7 v3
    /// ActReason research purposes and MLTRAINING).
    #[serde(default = "default_research_purposes")]
    pub research_purposes: Vec<Purpose>,
}

impl DatasetDefinition {
    /// Parses and checks a JSON definition.
    pub fn from_json(text: &str) -> Result<Self> {
        let definition: DatasetDefinition = serde_json::from_str(text)
            .map_err(|e| Error::Dataset(format!("bad dataset definition: {e}")))?;
        if definition.features.is_empty() {
            return Err(Error::Dataset(format!(
                "dataset {} defines no feature",
                definition.name
            )));
        }
        let mut names = std::collections::HashSet::new();
        if let Some(twice) = definition.features.iter().find(|f| !names.insert(&f.name)) {
            return Err(Error::Dataset(format!(
                "feature {} is defined twice",
                twice.name
            )));
        }
        Ok(definition)
    }

    /// The feature names, in column order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_reject_duplicates_and_unknown_fields() {
        let feature = r#"{"name": "sex", "from": "gender", "male": 1, "female": 0}"#;
        let label = r#"{"condition": {"system": "s", "code": "c"}}"#;
        let split = r#"{"system": "s", "train": "train", "test": "test"}"#;
        let ok = format!(
            r#"{{"name": "d", "split": {split}, "features": [{feature}], "label": {label}}}"#
        );
        assert_eq!(
            DatasetDefinition::from_json(&ok).unwrap().feature_names(),
            vec!["sex"]
        );
        let twice = format!(
            r#"{{"name": "d", "split": {split}, "features": [{feature}, {feature}], "label": {label}}}"#
        );
        assert!(DatasetDefinition::from_json(&twice).is_err());
        let unknown = format!(
            r#"{{"name": "d", "split": {split}, "features": [{feature}], "label": {label}, "extra": 1}}"#
        );
        assert!(DatasetDefinition::from_json(&unknown).is_err());
    }
}
