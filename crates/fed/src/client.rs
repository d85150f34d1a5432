//! A node's side of a plan: the local computations it performs for each task.
//! Pure functions of the plan, the received model and the node's own data:
//! [`round_seed`] and a [`crate::task::LocalTask`] train, [`prepare_update`]
//! turns the trained update into what the node commits to and sends. The node
//! then charges the privacy mechanisms to its accountant, logs the disclosure
//! and sends (in that order), which is I/O and stays in the node.

use learn::{Dataset, FeatureStats, Metrics, Standardizer, Weights};
use privacy::accountant::SampledGaussian;

use crate::contribution::Contribution;
use crate::plan::TrainingPlan;
use crate::secure_round::{SecureRoundError, SecureRoundParams};

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
    /// The task cannot do what the plan asks (e.g. standardise a text task).
    #[error("the plan's task does not support {0}")]
    Unsupported(&'static str),
    /// A task implemented outside this crate failed.
    #[error("local task: {0}")]
    Task(String),
    /// Client-level DP or the secure encoding failed.
    #[error(transparent)]
    Secure(#[from] SecureRoundError),
    /// The plan asks for client-level DP but the round is not secure.
    #[error("client-level DP needs a secure round")]
    ClientDpWithoutSecureRound,
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

/// This node's training seed for `round` of `plan`. `secret` is mixed in when
/// given: DP-SGD's sampling and noise must come from a seed the coordinator
/// cannot derive from the public plan, or it could subtract the noise. Nodes
/// pass their own secret key for DP plans.
pub fn round_seed(plan: &TrainingPlan, node: &str, round: u32, secret: Option<&[u8; 32]>) -> u64 {
    let public_seed = plan.local_seed(round, node);
    match secret {
        None => public_seed,
        Some(key) => {
            let mut bytes = key.to_vec();
            bytes.extend_from_slice(&public_seed.to_be_bytes());
            let digest = crate::sha256(&bytes);
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(first)
        }
    }
}

/// Evaluate `global` on the test rows, then train from it on the training rows
/// with the plan's hyper-parameters and `seed` ([`crate::task::Tabular`]'s step).
/// `data` must already be standardised when the plan asks for it.
pub(crate) fn train_tabular(
    plan: &TrainingPlan,
    global: &Weights,
    data: &LocalData,
    seed: u64,
) -> Result<LocalUpdate, ClientError> {
    data.check(plan)?;
    let global_test = learn::evaluate(&plan.model, global, &data.test)?;
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

/// Evaluate `global` on the test rows, then train from it on the training rows
/// with the plan's hyper-parameters and this node's seed for the round
/// ([`round_seed`]). `data` must already be standardised when the plan asks
/// for it.
pub fn train_round(
    plan: &TrainingPlan,
    node: &str,
    round: u32,
    global: &Weights,
    data: &LocalData,
    secret: Option<&[u8; 32]>,
) -> Result<LocalUpdate, ClientError> {
    train_tabular(plan, global, data, round_seed(plan, node, round, secret))
}

/// An update ready to be charged, committed to and sent.
#[derive(Clone, Debug)]
pub struct PreparedUpdate {
    /// The weights the contribution commits to (noised under client-level DP).
    pub weights: Weights,
    /// Under secure aggregation, what the node masks: `[n·(w − global)…, n]`,
    /// or under client-level DP `[clip(Δ) + noise…, 1]` and its clipping report.
    pub masked_input: Option<Vec<f32>>,
    /// Training rows behind it.
    pub num_samples: u64,
    /// Local training metrics.
    pub train: Metrics,
    /// The incoming global model's test metrics.
    pub global_test: Metrics,
    /// Every privacy mechanism that ran on the node's data for this update,
    /// to be charged to its accountant before anything is sent.
    pub privacy: Vec<SampledGaussian>,
}

impl PreparedUpdate {
    /// The contribution the node states for it, once the privacy spent is known.
    pub fn contribution(
        &self,
        plan: &TrainingPlan,
        round: u32,
        epsilon_round_micro: u64,
        epsilon_total_micro: u64,
    ) -> Contribution {
        Contribution {
            round,
            update_sha256: self.weights.sha256_hex(),
            num_samples: self.num_samples,
            train: self.train,
            global_test: self.global_test,
            code_hash: plan.code_hash(),
            epsilon_round_micro,
            epsilon_total_micro,
        }
    }
}

/// Turn a trained update into what the node sends: under client-level DP,
/// the delta clipped and noised with the node's noise stream (`noise_secret`,
/// the node's own secret) and the mechanism added to the ones to charge;
/// under secure aggregation, the vector to mask. Pure: same inputs, same output.
///
/// # Errors
/// [`ClientError::ClientDpWithoutSecureRound`] for client-level DP without a
/// secure round or without a secret; [`ClientError::Secure`] when clipping,
/// noising or encoding fails.
pub fn prepare_update(
    plan: &TrainingPlan,
    round: u32,
    global: &Weights,
    update: LocalUpdate,
    secure: Option<&SecureRoundParams>,
    noise_secret: Option<&[u8; 32]>,
) -> Result<PreparedUpdate, ClientError> {
    let mut privacy: Vec<SampledGaussian> = update.privacy.into_iter().collect();
    let mut weights = update.weights;
    let mut dp_encoded = None;
    if let Some(dp) = plan.client_dp {
        let (Some(params), Some(secret)) = (secure, noise_secret) else {
            return Err(ClientError::ClientDpWithoutSecureRound);
        };
        let clip = params.client_clip_norm.unwrap_or(dp.clip_norm);
        let mut rng = crate::client_dp::node_noise_rng(secret, &plan.plan_id(), round);
        let private = dp.privatize(
            clip,
            params.threshold,
            global.values(),
            weights.values(),
            &mut rng,
        )?;
        weights = weights
            .with_values(private.weights)
            .map_err(|e| SecureRoundError::InvalidParams(e.to_string()))?;
        dp_encoded = Some(private.encoded);
        privacy.push(dp.record_level_event());
    }
    let masked_input = match (secure, dp_encoded) {
        (None, _) => None,
        (Some(_), Some(encoded)) => Some(encoded),
        (Some(_), None) => Some(crate::secure_round::encode_update(
            global.values(),
            weights.values(),
            update.num_samples,
        )?),
    };
    Ok(PreparedUpdate {
        weights,
        masked_input,
        num_samples: update.num_samples,
        train: update.train,
        global_test: update.global_test,
        privacy,
    })
}
