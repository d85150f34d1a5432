//! Where a node's training data comes from. Each source turns the hospital's
//! own records into a [`LocalData`] table; nothing else of them leaves it.

use std::path::PathBuf;

use fed::client::LocalData;
use serde::Deserialize;

/// Failures reading a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The content is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// A source of a training table.
pub trait DatasetSource: Send + Sync {
    /// The dataset name plans refer to.
    fn dataset(&self) -> &str;
    /// Build the node's training and test tables.
    fn load(&self) -> Result<LocalData, SourceError>;
}

/// The `[dataset]` table of node.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// One centre of the UCI Heart Disease files with the FLamby split.
    HeartDisease {
        /// Directory holding `processed.*.data` and `flamby-split.csv`.
        dir: PathBuf,
        /// Centre name: cleveland, hungarian, switzerland or va.
        centre: String,
    },
}

impl SourceConfig {
    /// Build the source (relative paths from `base`).
    pub fn build(&self, base: &std::path::Path) -> Result<Box<dyn DatasetSource>, SourceError> {
        match self {
            SourceConfig::HeartDisease { dir, centre } => {
                Ok(Box::new(HeartDiseaseFiles::new(base.join(dir), centre)?))
            }
        }
    }
}

/// One centre of the UCI Heart Disease data, split as FLamby does.
pub struct HeartDiseaseFiles {
    dir: PathBuf,
    centre: usize,
}

impl HeartDiseaseFiles {
    /// A centre by name.
    pub fn new(dir: PathBuf, centre: &str) -> Result<Self, SourceError> {
        let index = learn::heart::CENTRES
            .iter()
            .position(|c| *c == centre)
            .ok_or_else(|| {
                SourceError::Invalid(format!(
                    "unknown heart-disease centre {centre:?}; expected one of {:?}",
                    learn::heart::CENTRES
                ))
            })?;
        Ok(HeartDiseaseFiles { dir, centre: index })
    }

    fn read(&self, name: &str) -> Result<String, SourceError> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| SourceError::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

impl DatasetSource for HeartDiseaseFiles {
    fn dataset(&self) -> &str {
        "heart-disease"
    }

    fn load(&self) -> Result<LocalData, SourceError> {
        let name = learn::heart::CENTRES[self.centre];
        let data = self.read(&format!("processed.{name}.data"))?;
        let split = self.read("flamby-split.csv")?;
        let centre = learn::heart::load_centre(self.centre, &data, &split)
            .map_err(|e| SourceError::Invalid(format!("heart-disease centre {name}: {e}")))?;
        Ok(LocalData {
            train: centre.train,
            test: centre.test,
        })
    }
}
