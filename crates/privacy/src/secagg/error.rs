//! Errors of the secure-aggregation protocol.

use super::ClientId;

/// Why a secure-aggregation step refused a message or could not go on.
///
/// A refused message leaves the state machine where it was (the caller can drop the message and
/// wait for a valid one), except where the variant says the round failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SecAggError {
    /// The round configuration is unusable.
    #[error("invalid secure-aggregation configuration: {0}")]
    InvalidConfig(String),
    /// A message belongs to another round (stale or replayed from an earlier round).
    #[error("message for round {got} refused: this is round {expected}")]
    WrongRound {
        /// The round this party is in.
        expected: u64,
        /// The round the message names.
        got: u64,
    },
    /// A message arrived at a step where it is not expected (replayed, or out of order).
    #[error("{message} refused: the protocol is at step '{stage}'")]
    UnexpectedMessage {
        /// The kind of message.
        message: &'static str,
        /// The step the party is at.
        stage: &'static str,
    },
    /// The sender is not one of the clients allowed to send this message.
    #[error("{message} from client {sender} refused: not a participant of this step")]
    UnknownSender {
        /// The kind of message.
        message: &'static str,
        /// The claimed sender.
        sender: ClientId,
    },
    /// The same client sent the same step twice.
    #[error("{message} from client {sender} refused: already received (replay)")]
    Replayed {
        /// The kind of message.
        message: &'static str,
        /// The sender.
        sender: ClientId,
    },
    /// A message is addressed to another client.
    #[error("{message} addressed to client {got} refused by client {expected}")]
    WrongRecipient {
        /// The kind of message.
        message: &'static str,
        /// This client.
        expected: ClientId,
        /// The recipient the message names.
        got: ClientId,
    },
    /// A vector, key or share has the wrong length.
    #[error("{what} has length {got}, expected {expected}")]
    WrongLength {
        /// What was measured.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A message is well-formed but breaks the protocol's rules.
    #[error("malformed {message}: {reason}")]
    Malformed {
        /// The kind of message.
        message: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A peer's public key gives a non-contributory (low-order) key agreement.
    #[error("public key of client {client} refused: low-order point")]
    WeakPublicKey {
        /// The client whose key is weak.
        client: ClientId,
    },
    /// An encrypted share failed authentication.
    #[error("encrypted share from client {sender} failed authentication")]
    ShareAuthenticationFailed {
        /// The sender of the share.
        sender: ClientId,
    },
    /// Too few clients remain: the round has failed and reveals nothing.
    #[error("round failed at step '{step}': {available} clients left, threshold is {threshold}")]
    TooFewClients {
        /// The step at which the round failed.
        step: &'static str,
        /// How many clients (or shares) were available.
        available: usize,
        /// The threshold that was needed.
        threshold: usize,
    },
    /// An unmasking request names this client as dropped although it sent its masked input.
    #[error(
        "unmasking request refused: it lists client {client} as dropped, but it sent its masked input"
    )]
    ClaimedDropped {
        /// This client.
        client: ClientId,
    },
    /// A client reveals shares once per round; a second unmasking request is refused.
    #[error("unmasking request refused: client {client} already answered one in this round")]
    AlreadyUnmasked {
        /// This client.
        client: ClientId,
    },
    /// Reconstructed secrets do not match what the owner committed to: the round has failed.
    #[error("round failed: the shares of client {owner} are inconsistent")]
    InconsistentShares {
        /// The client whose secret could not be reconstructed consistently.
        owner: ClientId,
    },
    /// The round has already failed; nothing more is accepted.
    #[error("the round has failed; nothing more is accepted")]
    RoundFailed,
    /// An input value is NaN or infinite.
    #[error("input value at index {index} is not finite")]
    NonFiniteInput {
        /// Position of the value.
        index: usize,
    },
}
