//! What the state machine says to its caller: the next task of a node, why a
//! message was refused, what happened while advancing.

use learn::{Standardizer, Weights};

use crate::plan_run::RoundRecord;
use crate::secure_round::{SecureRoundParams, SecureTask};

/// What a node should do next (the transport maps it to the wire).
#[derive(Clone, Debug, PartialEq)]
pub enum TaskKind {
    /// Nothing to do now.
    Wait,
    /// Review the plan.
    Review,
    /// Send feature sums.
    Statistics,
    /// Train from the global model in this round.
    Train {
        /// The open round.
        round: u32,
        /// The model to start from.
        global: Weights,
        /// Standardisation to apply.
        standardizer: Option<Standardizer>,
        /// Updates after this are refused.
        deadline_unix_ms: i64,
        /// The secure-aggregation round to mask the update in, when the plan uses one.
        secure: Option<SecureRoundParams>,
    },
    /// A step of the round's secure aggregation.
    SecureStep {
        /// The open round.
        round: u32,
        /// What to do.
        task: SecureTask,
    },
    /// Evaluate the final model.
    Evaluate {
        /// Rounds done.
        round: u32,
        /// The final model.
        model: Weights,
        /// Standardisation to apply.
        standardizer: Option<Standardizer>,
    },
    /// The plan is over.
    Finished {
        /// `completed` or `failed: ...`.
        outcome: String,
    },
}

/// Why a message was refused. The variants map to gRPC status codes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Rejection {
    /// The message does not fit the plan's current phase or round.
    #[error("{0}")]
    OutOfPhase(String),
    /// The sender does not take part in this plan.
    #[error("{0}")]
    NotParticipant(String),
    /// The message content is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The same message was already accepted.
    #[error("{0}")]
    Duplicate(String),
}

/// Something that happened while advancing, for progress display and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanEvent {
    /// Review ended with these participants.
    Approved(Vec<String>),
    /// Standardisation computed.
    Standardized,
    /// A round was aggregated.
    RoundAggregated(Box<RoundRecord>),
    /// A phase missed its quorum and was reopened.
    Reopened {
        /// Phase reopened.
        phase: String,
        /// Attempt number now starting.
        attempt: u32,
    },
    /// A secure-aggregation step of the round opened.
    SecureStep {
        /// The round.
        round: u32,
        /// The step now expected from the parties.
        step: &'static str,
        /// Parties dropped when the previous step closed.
        dropped: Vec<String>,
    },
    /// The final evaluation is in.
    Completed,
    /// The plan failed.
    Failed(String),
}

/// Errors restoring or creating a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A stored artifact is missing.
    #[error("artifact {0} referenced by the plan state is missing")]
    MissingArtifact(String),
    /// The strategy could not be rebuilt.
    #[error("strategy: {0}")]
    Strategy(#[from] crate::strategy::AggregationError),
}
