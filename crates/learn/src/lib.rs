//! Models, local training, evaluation metrics and datasets for cohort, on candle tensors (CPU).
//!
//! `learn` does no I/O: parsers take text or bytes, and weights travel as safetensors bytes.
//! Without its default `candle` feature only weights, datasets, the DP-SGD settings and
//! [`sparse`] (the linear softmax over hashed features) compile: what `deid` depends on.
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
mod dp_sgd;
mod error;
pub mod heart;
mod metrics;
#[cfg(feature = "candle")]
mod model;
#[cfg(feature = "candle")]
mod per_example;
mod scaling;
pub mod sparse;
pub mod synthetic;
#[cfg(feature = "candle")]
mod train;
mod weights;

pub use dataset::Dataset;
pub use dp_sgd::DpSgd;
pub use error::Error;
pub use metrics::Metrics;
#[cfg(feature = "candle")]
pub use metrics::evaluate;
#[cfg(feature = "candle")]
pub use model::ModelSpec;
pub use scaling::{FeatureStats, Standardizer};
#[cfg(feature = "candle")]
pub use train::{Optimizer, TrainConfig, TrainReport, train};
pub use weights::Weights;
