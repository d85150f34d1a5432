//! Where a node's training data comes from. Each source turns the hospital's
//! own records into a [`LocalData`] table; nothing else of them leaves it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use fed::client::LocalData;
use serde::Deserialize;

/// The future a [`DatasetSource`] returns.
pub type LoadFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SourceTable, SourceError>> + Send + 'a>>;

/// A node's training table and what the source left out (counts, never who).
#[derive(Clone, Debug)]
pub struct SourceTable {
    /// Training and test rows.
    pub data: LocalData,
    /// Patients excluded because their consent denies research use.
    pub excluded_by_consent: u32,
    /// Patients left out for missing data.
    pub incomplete: u32,
}

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
    fn load(&self) -> LoadFuture<'_>;
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
    /// The Fed-Heart-Disease table built from the node's own EHR through the
    /// training gate (consent, pseudonyms, date shifts).
    EhrHeartDisease,
}

impl SourceConfig {
    /// Build the source (relative paths from `base`; `ehr` is the node's FHIR store).
    pub fn build(
        &self,
        base: &std::path::Path,
        ehr: Option<&ehr::Store>,
    ) -> Result<Box<dyn DatasetSource>, SourceError> {
        match self {
            SourceConfig::HeartDisease { dir, centre } => {
                Ok(Box::new(HeartDiseaseFiles::new(base.join(dir), centre)?))
            }
            SourceConfig::EhrHeartDisease => {
                let store = ehr.ok_or_else(|| {
                    SourceError::Invalid(
                        "dataset kind ehr-heart-disease needs the node's EHR (ehr_db in node.toml)"
                            .into(),
                    )
                })?;
                Ok(Box::new(EhrHeartDisease::new(store.clone())))
            }
        }
    }
}

/// The Fed-Heart-Disease table read from the node's EHR through the gate:
/// patients whose consent denies research use are left out (only their number
/// is logged), identifiers never enter the table.
pub struct EhrHeartDisease {
    store: ehr::Store,
}

impl EhrHeartDisease {
    /// Read from `store`.
    pub fn new(store: ehr::Store) -> Self {
        EhrHeartDisease { store }
    }
}

impl DatasetSource for EhrHeartDisease {
    fn dataset(&self) -> &str {
        "heart-disease"
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let gated = ehr::heart::heart_dataset(&self.store)
                .await
                .map_err(|e| SourceError::Invalid(format!("EHR training gate: {e}")))?;
            tracing::info!(
                train = gated.train.len(),
                test = gated.test.len(),
                excluded_by_consent = gated.excluded,
                incomplete = gated.incomplete,
                "training table built through the gate"
            );
            Ok(SourceTable {
                data: LocalData {
                    train: gated.train,
                    test: gated.test,
                },
                excluded_by_consent: u32::try_from(gated.excluded).unwrap_or(u32::MAX),
                incomplete: u32::try_from(gated.incomplete).unwrap_or(u32::MAX),
            })
        })
    }
}

/// Synthetic logistic-regression rows (Flower's benchmark generator, see
/// [`learn::synthetic::logistic`]), for load and protocol benchmarks.
pub struct Synthetic {
    /// Training rows.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// Seed of the rows (the test rows use `seed + 1`).
    pub seed: u64,
}

impl DatasetSource for Synthetic {
    fn dataset(&self) -> &str {
        "synthetic"
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            Ok(SourceTable {
                data: LocalData {
                    train: learn::synthetic::logistic(self.seed, self.rows, self.features),
                    test: learn::synthetic::logistic(self.seed + 1, 8, self.features),
                },
                excluded_by_consent: 0,
                incomplete: 0,
            })
        })
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

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let name = learn::heart::CENTRES[self.centre];
            let data = self.read(&format!("processed.{name}.data"))?;
            let split = self.read("flamby-split.csv")?;
            let centre = learn::heart::load_centre(self.centre, &data, &split)
                .map_err(|e| SourceError::Invalid(format!("heart-disease centre {name}: {e}")))?;
            Ok(SourceTable {
                data: LocalData {
                    train: centre.train,
                    test: centre.test,
                },
                excluded_by_consent: 0,
                incomplete: 0,
            })
        })
    }
}
