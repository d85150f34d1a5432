//! Clinical coding for cohort: a multi-label code model over hashed word n-grams (candle),
//! ranked ICD-10 code suggestions with the text spans that support them, the CodiEsp corpus
//! layout, and the CodiEsp metrics.
//!
//! The model's parameters are a [`Weights`] (`embedding.weight`, `output.weight`,
//! `output.bias`), the form the federation exchanges. `docs/billing.md` describes the model,
//! the evidence and the measured figures.

#![warn(missing_docs)]

pub mod claim;
pub mod coded;
pub mod codiesp;
pub mod corpus;
pub mod encounter;
mod error;
pub mod features;
pub mod federated;
pub mod metrics;
mod model;
pub mod rules;
pub mod rules_fr;
mod suggest;
mod train;

pub use error::Error;
pub use learn::Weights;
pub use model::{Coder, CoderSpec, Label, label_space};
pub use suggest::Suggestion;
pub use train::{DpSgd, Example, TrainConfig, TrainReport, examples, train};
