//! Errors of the secure round.

use privacy::secagg::{ClientId, SecAggError};

use super::SecureStep;
use crate::strategy::AggregationError;

/// Why a secure-round call refused a message or could not go on.
///
/// A refused message ([`UnknownParty`](Self::UnknownParty), [`WrongStep`](Self::WrongStep),
/// [`Duplicate`](Self::Duplicate), [`Malformed`](Self::Malformed), [`Refused`](Self::Refused),
/// ...) leaves the state machine as it was: the caller drops the message and keeps waiting.
/// [`TooFewParties`](Self::TooFewParties) and [`RoundFailed`](Self::RoundFailed) mean the round
/// has failed and revealed nothing.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SecureRoundError {
    /// The round's parameters are unusable.
    #[error("invalid secure-round parameters: {0}")]
    InvalidParams(String),
    /// The party is not a participant of this round.
    #[error("party {party:?} is not a participant of this secure round")]
    UnknownParty {
        /// The party named.
        party: String,
    },
    /// The message belongs to another step than the current one.
    #[error("'{message}' message from party {party:?} refused: the round is at step '{step}'")]
    WrongStep {
        /// The sender.
        party: String,
        /// The kind of message.
        message: SecureStep,
        /// The current step.
        step: SecureStep,
    },
    /// The party dropped out at an earlier step, so it has no part in this one.
    #[error(
        "message from party {party:?} refused: it dropped out before step '{step}' and takes no part in it"
    )]
    NotInStep {
        /// The sender.
        party: String,
        /// The current step.
        step: SecureStep,
    },
    /// The party already answered this step.
    #[error("message from party {party:?} refused: it already answered step '{step}' (duplicate)")]
    Duplicate {
        /// The sender.
        party: String,
        /// The current step.
        step: SecureStep,
    },
    /// The message names another protocol sender than the party that sent it.
    #[error(
        "message from party {party:?} refused: it claims to be from client {claimed}, the party is client {expected}"
    )]
    SenderMismatch {
        /// The authenticated sender.
        party: String,
        /// The client id the message claims.
        claimed: ClientId,
        /// The party's client id.
        expected: ClientId,
    },
    /// The message names another round.
    #[error(
        "message from party {party:?} refused: it is for round {got}, this is round {expected}"
    )]
    WrongRound {
        /// The sender.
        party: String,
        /// This round.
        expected: u64,
        /// The round the message names.
        got: u64,
    },
    /// The message is malformed (for instance a masked input of the wrong length).
    #[error("malformed message from party {party:?}: {reason}")]
    Malformed {
        /// The sender.
        party: String,
        /// What is wrong.
        reason: String,
    },
    /// The secure-aggregation protocol refused the party's message (bad shares, weak key, ...).
    #[error("message from party {party:?} refused: {source}")]
    Refused {
        /// The sender.
        party: String,
        /// The protocol's reason.
        source: SecAggError,
    },
    /// A local step of the protocol failed (on the node, or when the server closes a step).
    #[error("secure aggregation: {0}")]
    Protocol(#[from] SecAggError),
    /// A vector handed to this module has the wrong length.
    #[error("{what} has length {got}, expected {expected}")]
    WrongLength {
        /// What was measured.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A value to be masked lies outside the quantisation range (it would be clipped, which
    /// would silently distort the sum).
    #[error("value {value} at index {index} is outside the quantisation range [-{range}, {range}]")]
    OutOfRange {
        /// Position of the value.
        index: usize,
        /// The value.
        value: f32,
        /// The range R.
        range: f64,
    },
    /// A value is NaN or infinite.
    #[error("{what} has a non-finite value at index {index}")]
    NonFinite {
        /// What holds the value.
        what: &'static str,
        /// Position of the value.
        index: usize,
    },
    /// The node was asked for a step it cannot take now (keys not yet advertised, advertised
    /// twice, a task of other parameters).
    #[error("secure-round client {party:?}: {reason}")]
    ClientState {
        /// This node's party name.
        party: String,
        /// What is out of order.
        reason: String,
    },
    /// Fewer than the threshold of parties answered a step: the round has failed and
    /// revealed nothing.
    #[error(
        "secure round failed at step '{step}': {available} parties (or shares) available, the threshold is {threshold}"
    )]
    TooFewParties {
        /// The step that could not be closed.
        step: SecureStep,
        /// How many parties answered (for unmasking: the fewest shares of one secret).
        available: usize,
        /// The threshold.
        threshold: usize,
    },
    /// The round has failed; nothing more is accepted.
    #[error("the secure round has failed ({reason}); nothing more is accepted")]
    RoundFailed {
        /// Why it failed.
        reason: String,
    },
    /// The round is finished; nothing more is accepted.
    #[error("the secure round is finished; nothing more is accepted")]
    RoundFinished,
    /// The summed vector has no positive sample count (last coordinate).
    #[error("the secure sum's sample count {count} is not a positive number")]
    ZeroSamples {
        /// The decoded count.
        count: f32,
    },
    /// The aggregation rule needs individual updates, which secure aggregation hides.
    #[error(
        "aggregation rule {rule:?} needs individual updates and cannot run with secure aggregation \
         (use fedavg, fedprox, fedadam, fedyogi or fedadagrad)"
    )]
    IncompatibleStrategy {
        /// The rule's name.
        rule: String,
    },
    /// The aggregation rule failed on the weighted mean.
    #[error(transparent)]
    Aggregation(#[from] AggregationError),
}

impl SecureRoundError {
    /// Whether the error means the round has failed (as opposed to one refused message).
    pub fn is_round_failure(&self) -> bool {
        matches!(
            self,
            SecureRoundError::TooFewParties { .. } | SecureRoundError::RoundFailed { .. }
        )
    }
}
