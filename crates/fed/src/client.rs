//! A node's side of a plan: the local computations it performs for each task.
//! Pure functions of the plan, the received model and the node's own data.

use learn::{Dataset, FeatureStats, Metrics, Standardizer, Weights};

use crate::plan::TrainingPlan;

/// A node's training and test tables for one plan.
#[derive(Clone, Debug)]
pub struct LocalData {
    /// Rows the node trains on.
    pub train: Dataset,
    /// Held-out rows the node evaluates on.
    pub test: Dataset,
}

/// A node's answer to a training task.
#[derive(Clone, Debug)]
pub struct LocalUpdate {
    /// The locally trained weights.
    pub weights: Weights,
    /// Training rows behind them.
    pub num_samples: u64,
    /// The trained weights on the node's training rows.
    pub train: Metrics,
    /// The incoming global model on the node's test rows.
    pub global_test: Metrics,
    /// The DP-SGD mechanism that ran, for the node's accountant (None without DP).
    pub privacy: Option<privacy::accountant::SampledGaussian>,
}

/// Why a local step failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node's data does not fit the plan's model.
    #[error("local data has {got} features but the plan's model takes {expected}")]
    FeatureMismatch {
        /// Model inputs.
        expected: usize,
        /// Columns in the data.
        got: usize,
    },
    /// The node has no training rows.
    #[error("the node has no training records for this plan")]
    NoTrainingData,
    /// Training or evaluation failed.
    #[error(transparent)]
    Learn(#[from] learn::Error),
}

impl LocalData {
    /// Check the data against the plan's model.
    pub fn check(&self, plan: &TrainingPlan) -> Result<(), ClientError> {
        let expected = plan.model.inputs();
        for d in [&self.train, &self.test] {
            if d.features != expected {
                return Err(ClientError::FeatureMismatch {
                    expected,
                    got: d.features,
                });
            }
        }
        if self.train.is_empty() {
            return Err(ClientError::NoTrainingData);
        }
        Ok(())
    }

    /// Per-feature sums of the training rows (sent for federated standardisation).
    pub fn statistics(&self) -> FeatureStats {
        FeatureStats::of(&self.train)
    }

    /// Both tables standardised with the federation's means and deviations.
    pub fn standardized(&self, s: &Standardizer) -> Result<LocalData, ClientError> {
        Ok(LocalData {
            train: s.apply(&self.train)?,
            test: s.apply(&self.test)?,
        })
    }
}

/// Evaluate `global` on the test rows, then train from it on the training rows
/// with the plan's hyper-parameters and this node's seed for the round.
/// `data` must already be standardised when the plan asks for it.
///
/// `secret` is mixed into the seed when given: DP-SGD's sampling and noise must
/// come from a seed the coordinator cannot derive from the public plan, or it
/// could subtract the noise. Nodes pass their own secret key for DP plans.
pub fn train_round(
    plan: &TrainingPlan,
    node: &str,
    round: u32,
    global: &Weights,
    data: &LocalData,
    secret: Option<&[u8; 32]>,
) -> Result<LocalUpdate, ClientError> {
    data.check(plan)?;
    let global_test = learn::evaluate(&plan.model, global, &data.test)?;
    let public_seed = plan.local_seed(round, node);
    let seed = match secret {
        None => public_seed,
        Some(key) => {
            let mut bytes = key.to_vec();
            bytes.extend_from_slice(&public_seed.to_be_bytes());
            let digest = crate::sha256(&bytes);
            u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
        }
    };
    let (weights, report) = learn::train(&plan.model, global, &data.train, &plan.training, seed)?;
    let train = learn::evaluate(&plan.model, &weights, &data.train)?;
    Ok(LocalUpdate {
        weights,
        num_samples: data.train.len() as u64,
        train,
        global_test,
        privacy: report.privacy,
    })
}
