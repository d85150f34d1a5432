//! Secure aggregation of one training round, independent of any transport.
//!
//! With secure aggregation the coordinator learns only the **sum** of the hospitals' updates,
//! never one hospital's update. This module wraps the SecAgg+ protocol of
//! [`privacy::secagg`] into two state machines that speak in party names and in plain
//! message values, which the `protocol` crate maps one to one onto typed protobuf messages:
//!
//! - [`SecureRoundServer`] (coordinator, one per round attempt) collects each step's messages
//!   with [`receive`](SecureRoundServer::receive), tells every party what to do next with
//!   [`task_for`](SecureRoundServer::task_for), and moves on with
//!   [`close_step`](SecureRoundServer::close_step) when every live party answered
//!   ([`step_complete`](SecureRoundServer::step_complete)) or at the caller's deadline.
//! - [`SecureRoundClient`] (node) answers each [`SecureTask`] with one [`SecureMessage`].
//!
//! | step | task (server → node) | message (node → server) |
//! |---|---|---|
//! | [`SecureStep::AdvertiseKeys`] | [`SecureTask::AdvertiseKeys`] (the parameters) | [`SecureMessage::AdvertiseKeys`] |
//! | [`SecureStep::ShareKeys`] | [`SecureTask::ShareKeys`] (the holders' keys) | [`SecureMessage::ShareKeys`] (encrypted shares) |
//! | [`SecureStep::MaskedInput`] | [`SecureTask::MaskInput`] (shares addressed to it) | [`SecureMessage::MaskedInput`] |
//! | [`SecureStep::Unmasking`] | [`SecureTask::Unmask`] (the survivors) | [`SecureMessage::Unmasking`] (revealed shares) |
//!
//! A step closed with fewer than `threshold` answers fails the round: nothing more is accepted
//! and no sum is revealed. Parties that drop out after sending their shares are recovered:
//! the sum is then over the parties whose masked input arrived
//! ([`SecureSum::contributors`]).
//!
//! # Party names and client ids
//!
//! [`SecureRoundParams::participants`] is sorted and distinct; the party at index `i` is
//! [`ClientId`] `i + 1` in the underlying protocol (0 is never used), see
//! [`SecureRoundParams::client_id`]. The transport authenticates parties (mutual TLS); the
//! server refuses a message whose protocol `sender` is not the id of the party that sent it.
//!
//! # Weighted means
//!
//! The FedAvg family needs the sample-weighted mean of the updates. Each node masks
//! [`encode_update`]`(global, weights, n)` = `[n·(w − global)…, n]`; the sum of these is
//! `[Σ nᵢ·Δᵢ…, Σ nᵢ]`, from which [`weighted_mean_delta`] and [`mean_model`] recover the
//! weighted mean. The coordinator so learns the total sample count and the weighted mean of
//! the contributors, nothing per hospital. [`aggregate_from_mean`] applies a FedAvg-family
//! [`Strategy`](crate::strategy::Strategy) to that mean; robust rules (median, trimmed mean,
//! Krum) need individual updates and cannot run on it ([`supports_secure_aggregation`]).
//! See [`weighted_mean_range`] for the choice of the quantisation range.
//!
//! # Limits
//!
//! The underlying [`privacy::secagg::SecAggServer`] is not serialisable, so neither is
//! [`SecureRoundServer`]: a coordinator that restarts during a secure round starts a new round
//! attempt (with a new `round_id`). Keys are not signed by the hospitals' identities; the
//! transport's mutual TLS stands for that (see [`privacy::secagg`] for the threat model).

mod client;
mod driver;
mod encoding;
mod error;
mod server;

#[cfg(test)]
mod tests;

use privacy::secagg::{
    AdvertiseKeys, ClientId, KeyDirectory, MaskedInput, Quantizer, RoundConfig, ShareDelivery,
    ShareKeys, UnmaskingRequest, UnmaskingResponse,
};
use serde::{Deserialize, Serialize};

pub use client::SecureRoundClient;
pub use driver::{SecureRoundSettings, run_secure_round};
pub use encoding::{
    aggregate_from_mean, aggregate_secure_sum, encode_update, mean_model,
    supports_secure_aggregation, total_samples, weighted_mean_delta, weighted_mean_range,
};
pub use error::SecureRoundError;
pub use privacy::secagg::{Step, Topology};
pub use server::{SecureRoundServer, StepOutcome};

/// The public parameters of one secure round, shared by the coordinator and every node (the
/// coordinator sends them in [`SecureTask::AdvertiseKeys`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecureRoundParams {
    /// Round attempt number; every protocol message carries it and other rounds' messages are
    /// refused. Use a fresh value for each attempt (a retried round must not reuse keys).
    pub round_id: u64,
    /// The parties selected for the round, sorted and distinct; index `i` is client id `i + 1`.
    pub participants: Vec<String>,
    /// Shamir threshold: the fewest parties the round goes on with at every step. It must be a
    /// strict majority of each party's share holders
    /// ([`SecureRoundParams::minimal_threshold`]).
    pub threshold: usize,
    /// Who shares with whom: [`Topology::Complete`] or SecAgg+'s [`Topology::Harary`].
    pub topology: Topology,
    /// Length of every summed vector (for weighted means: the model length + 1).
    pub vector_len: usize,
    /// Quantisation range R: every coordinate must lie in [−R, R] (see
    /// [`weighted_mean_range`]). The quantiser is `Quantizer::new(R, participants.len())`, so
    /// the sum of all participants cannot overflow.
    pub range: f64,
    /// Under client-level DP, the clip norm of this round's updates (it moves
    /// between rounds under adaptive clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_clip_norm: Option<f64>,
}

impl SecureRoundParams {
    /// Checked parameters.
    ///
    /// # Errors
    /// [`SecureRoundError::InvalidParams`] as [`SecureRoundParams::validate`].
    pub fn new(
        round_id: u64,
        participants: Vec<String>,
        threshold: usize,
        topology: Topology,
        vector_len: usize,
        range: f64,
    ) -> Result<SecureRoundParams, SecureRoundError> {
        let params = SecureRoundParams {
            round_id,
            participants,
            threshold,
            topology,
            vector_len,
            range,
            client_clip_norm: None,
        };
        params.validate()?;
        Ok(params)
    }

    /// The smallest threshold accepted for `participants` parties on `topology`: a strict
    /// majority of each party's share holders.
    pub fn minimal_threshold(participants: usize, topology: &Topology) -> usize {
        let holders = match topology {
            Topology::Complete => participants,
            Topology::Harary { num_shares, .. } => (*num_shares).min(participants),
        };
        holders / 2 + 1
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`SecureRoundError::InvalidParams`] when participants are fewer than two, unsorted,
    /// repeated, empty names or 2^31 or more; when the range is not positive and finite; or
    /// when the protocol refuses the configuration (threshold, topology, vector length).
    pub fn validate(&self) -> Result<(), SecureRoundError> {
        let invalid = |reason: String| Err(SecureRoundError::InvalidParams(reason));
        if self.participants.iter().any(String::is_empty) {
            return invalid("party names must not be empty".into());
        }
        if self.participants.windows(2).any(|pair| pair[0] >= pair[1]) {
            return invalid("participants must be sorted and distinct".into());
        }
        if self.participants.len() >= 1 << 31 {
            return invalid(format!(
                "{} participants: fewer than 2^31 are supported",
                self.participants.len()
            ));
        }
        self.quantizer()?;
        self.round_config()
            .validate()
            .map_err(|e| SecureRoundError::InvalidParams(e.to_string()))
    }

    /// The protocol id of `party`: its index in [`Self::participants`] plus one.
    pub fn client_id(&self, party: &str) -> Option<ClientId> {
        let index = self
            .participants
            .binary_search_by(|p| p.as_str().cmp(party))
            .ok()?;
        ClientId::try_from(index + 1).ok()
    }

    /// The party whose protocol id is `id`.
    pub fn party(&self, id: ClientId) -> Option<&str> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.participants.get(index).map(String::as_str)
    }

    /// The protocol configuration: clients `1..=n`.
    pub fn round_config(&self) -> RoundConfig {
        RoundConfig {
            round_id: self.round_id,
            clients: (1..=self.participants.len())
                .filter_map(|id| ClientId::try_from(id).ok())
                .collect(),
            threshold: self.threshold,
            topology: self.topology.clone(),
            vector_len: self.vector_len,
        }
    }

    /// The quantiser: coordinates in [−range, range], at most `participants.len()` summands.
    ///
    /// # Errors
    /// [`SecureRoundError::InvalidParams`] when the range is not positive and finite or there
    /// are no participants.
    pub fn quantizer(&self) -> Result<Quantizer, SecureRoundError> {
        let count = u32::try_from(self.participants.len()).map_err(|_| {
            SecureRoundError::InvalidParams(format!(
                "{} participants: too many",
                self.participants.len()
            ))
        })?;
        Quantizer::new(self.range, count)
            .map_err(|e| SecureRoundError::InvalidParams(e.to_string()))
    }
}

/// A step of the secure round, in order, and its two end states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecureStep {
    /// Collecting the parties' public keys.
    AdvertiseKeys,
    /// Collecting the encrypted shares of the parties' secrets.
    ShareKeys,
    /// Collecting the masked inputs.
    MaskedInput,
    /// Collecting the revealed shares that remove the masks.
    Unmasking,
    /// Done: the sum is available.
    Finished,
    /// Failed: nothing more is accepted and no sum is revealed.
    Failed,
}

impl SecureStep {
    /// A human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            SecureStep::AdvertiseKeys => "advertise keys",
            SecureStep::ShareKeys => "share keys",
            SecureStep::MaskedInput => "masked input",
            SecureStep::Unmasking => "unmasking",
            SecureStep::Finished => "finished",
            SecureStep::Failed => "failed",
        }
    }
}

impl std::fmt::Display for SecureStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server asks of one party at the current step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum SecureTask {
    /// Create a [`SecureRoundClient`] from `params` and send its public keys.
    AdvertiseKeys {
        /// The round's public parameters.
        params: SecureRoundParams,
    },
    /// Share the party's secrets with the holders listed in `directory`.
    ShareKeys {
        /// The share holders' public keys.
        directory: KeyDirectory,
    },
    /// Mask the party's input with the shares in `delivery`.
    MaskInput {
        /// The encrypted shares addressed to the party.
        delivery: ShareDelivery,
    },
    /// Reveal the shares that remove the survivors' and the dropped parties' masks.
    Unmask {
        /// The parties whose masked input arrived.
        request: UnmaskingRequest,
    },
}

impl SecureTask {
    /// The step this task belongs to.
    pub fn step(&self) -> SecureStep {
        match self {
            SecureTask::AdvertiseKeys { .. } => SecureStep::AdvertiseKeys,
            SecureTask::ShareKeys { .. } => SecureStep::ShareKeys,
            SecureTask::MaskInput { .. } => SecureStep::MaskedInput,
            SecureTask::Unmask { .. } => SecureStep::Unmasking,
        }
    }
}

/// A party's message to the server, one kind per step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum SecureMessage {
    /// Step [`SecureStep::AdvertiseKeys`]: the party's two public keys.
    AdvertiseKeys(AdvertiseKeys),
    /// Step [`SecureStep::ShareKeys`]: encrypted shares, one per other holder.
    ShareKeys(ShareKeys),
    /// Step [`SecureStep::MaskedInput`]: the masked, quantised input.
    MaskedInput(MaskedInput),
    /// Step [`SecureStep::Unmasking`]: the revealed shares.
    Unmasking(UnmaskingResponse),
}

impl SecureMessage {
    /// The step this message answers.
    pub fn step(&self) -> SecureStep {
        match self {
            SecureMessage::AdvertiseKeys(_) => SecureStep::AdvertiseKeys,
            SecureMessage::ShareKeys(_) => SecureStep::ShareKeys,
            SecureMessage::MaskedInput(_) => SecureStep::MaskedInput,
            SecureMessage::Unmasking(_) => SecureStep::Unmasking,
        }
    }

    /// The protocol id the message claims as its sender.
    pub fn sender(&self) -> ClientId {
        match self {
            SecureMessage::AdvertiseKeys(m) => m.sender,
            SecureMessage::ShareKeys(m) => m.sender,
            SecureMessage::MaskedInput(m) => m.sender,
            SecureMessage::Unmasking(m) => m.sender,
        }
    }

    /// The round the message names.
    pub fn round_id(&self) -> u64 {
        match self {
            SecureMessage::AdvertiseKeys(m) => m.round_id,
            SecureMessage::ShareKeys(m) => m.round_id,
            SecureMessage::MaskedInput(m) => m.round_id,
            SecureMessage::Unmasking(m) => m.round_id,
        }
    }
}

/// What a finished round reveals: the dequantised sum of the contributors' vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecureSum {
    /// Σ of the contributors' vectors (for weighted means: `[Σ nᵢ·Δᵢ…, Σ nᵢ]`), within
    /// `contributors / (2·scale)` per coordinate of the exact sum of the quantised inputs'
    /// originals (see [`privacy::secagg::Quantizer::sum_error_bound`]).
    pub sum: Vec<f32>,
    /// The parties whose input is in the sum, sorted: those whose masked input arrived.
    pub contributors: Vec<String>,
}

impl SecureSum {
    /// For a sum of [`encode_update`] vectors: the total sample count of the contributors.
    ///
    /// # Errors
    /// As [`total_samples`].
    pub fn total_samples(&self) -> Result<u64, SecureRoundError> {
        total_samples(&self.sum)
    }

    /// For a sum of [`encode_update`] vectors: the sample-weighted mean of the deltas.
    ///
    /// # Errors
    /// As [`weighted_mean_delta`].
    pub fn mean_delta(&self) -> Result<Vec<f32>, SecureRoundError> {
        weighted_mean_delta(&self.sum)
    }

    /// For a sum of [`encode_update`] vectors: `global` + the weighted mean delta, i.e. the
    /// FedAvg model.
    ///
    /// # Errors
    /// As [`mean_model`].
    pub fn mean_model(&self, global: &[f32]) -> Result<Vec<f32>, SecureRoundError> {
        mean_model(global, &self.sum)
    }
}
