//! Models, local training, evaluation metrics and datasets for cohort, on candle tensors (CPU).
//!
//! `learn` does no I/O: parsers take text or bytes, and weights travel as safetensors bytes.
//!
//! ```
//! use learn::{evaluate, synthetic, train, ModelSpec, TrainConfig, Weights};
//!
//! let data = synthetic::logistic(1, 200, 5);
//! let spec = ModelSpec::LogisticRegression { inputs: 5 };
//! let cfg = TrainConfig { epochs: 20, ..TrainConfig::default() };
//! let (weights, report) = train(&spec, &spec.init(0), &data, &cfg, 7)?;
//! assert_eq!(report.samples, 200);
//! let metrics = evaluate(&spec, &weights, &data)?;
//! assert!(metrics.accuracy > 0.6);
//! assert_eq!(Weights::from_safetensors(&weights.to_safetensors())?, weights);
//! # Ok::<(), learn::Error>(())
//! ```

#![warn(missing_docs)]

mod dataset;
mod error;
pub mod heart;
mod metrics;
mod model;
mod per_example;
mod scaling;
pub mod sparse;
pub mod synthetic;
mod train;
mod weights;

pub use dataset::Dataset;
pub use error::Error;
pub use metrics::{Metrics, evaluate};
pub use model::ModelSpec;
pub use scaling::{FeatureStats, Standardizer};
pub use train::{DpSgd, Optimizer, TrainConfig, TrainReport, train};
pub use weights::Weights;
