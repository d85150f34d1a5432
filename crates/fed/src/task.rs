//! The seam between the round logic and what a node learns: a plan's
//! [`LocalTask`]. The round logic (the node's client loop, [`crate::client`]'s
//! `prepare_update`, the coordinator's [`crate::plan_run::PlanRun`]) only ever
//! sees [`Weights`], sample counts and [`Metrics`]; everything about the data
//! and the model is behind this trait.
//!
//! [`Tabular`] (UCI Heart Disease and other tables through `learn`) is the
//! first implementation. Another task — say a text classifier whose
//! parameters are a `learn::Weights` — implements [`LocalTask`] in its own
//! crate and is chosen from the plan where the node builds its task
//! (`node::task::for_plan`): one implementation and one match arm, nothing in
//! the round logic.

use learn::{FeatureStats, Metrics, Standardizer, Weights};

use crate::client::{ClientError, LocalData, LocalUpdate};
use crate::plan::TrainingPlan;

/// What a node trains, evaluates and summarises for one plan, on its own data.
pub trait LocalTask: Send + Sync {
    /// Per-feature sums of the training rows, for plans that standardise
    /// features across the federation (`TrainingPlan::standardize`).
    ///
    /// # Errors
    /// [`ClientError::Unsupported`] for a task without tabular features (the
    /// default).
    fn statistics(&self) -> Result<FeatureStats, ClientError> {
        Err(ClientError::Unsupported("feature statistics"))
    }

    /// Apply the federation's standardisation to the task's data from now on.
    ///
    /// # Errors
    /// [`ClientError::Unsupported`] for a task without tabular features (the
    /// default), or the data's own error.
    fn standardize(&mut self, _standardizer: &Standardizer) -> Result<(), ClientError> {
        Err(ClientError::Unsupported("standardisation"))
    }

    /// Evaluate `global` on the held-out data, then train from it with `seed`
    /// (derived by the caller from the plan, the round, the node and, for DP,
    /// the node's secret). Same inputs, same update, bit for bit.
    ///
    /// # Errors
    /// The task's failure (shapes, empty data, training).
    fn train(&mut self, global: &Weights, seed: u64) -> Result<LocalUpdate, ClientError>;

    /// `model`'s metrics on the held-out data.
    ///
    /// # Errors
    /// The task's failure (shapes, evaluation).
    fn evaluate(&self, model: &Weights) -> Result<Metrics, ClientError>;
}

/// A tabular task: a `learn` model (logistic regression, MLP) on a node's
/// training and test tables, with the plan's training configuration.
#[derive(Clone, Debug)]
pub struct Tabular {
    plan: TrainingPlan,
    raw: LocalData,
    standardized: Option<(Standardizer, LocalData)>,
}

impl Tabular {
    /// The task of `plan` on `data`, checked against the plan's model.
    ///
    /// # Errors
    /// As [`LocalData::check`].
    pub fn new(plan: &TrainingPlan, data: LocalData) -> Result<Self, ClientError> {
        data.check(plan)?;
        Ok(Tabular {
            plan: plan.clone(),
            raw: data,
            standardized: None,
        })
    }

    /// The tables training and evaluation use now.
    pub fn data(&self) -> &LocalData {
        self.standardized.as_ref().map_or(&self.raw, |(_, d)| d)
    }
}

impl LocalTask for Tabular {
    fn statistics(&self) -> Result<FeatureStats, ClientError> {
        Ok(self.raw.statistics())
    }

    fn standardize(&mut self, standardizer: &Standardizer) -> Result<(), ClientError> {
        if self.standardized.as_ref().map(|(s, _)| s) != Some(standardizer) {
            let data = self.raw.standardized(standardizer)?;
            self.standardized = Some((standardizer.clone(), data));
        }
        Ok(())
    }

    fn train(&mut self, global: &Weights, seed: u64) -> Result<LocalUpdate, ClientError> {
        crate::client::train_tabular(&self.plan, global, self.data(), seed)
    }

    fn evaluate(&self, model: &Weights) -> Result<Metrics, ClientError> {
        Ok(learn::evaluate(&self.plan.model, model, &self.data().test)?)
    }
}
