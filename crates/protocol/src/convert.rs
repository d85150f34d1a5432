//! Conversions between wire messages and domain types, with the checks every
//! receiver must make (hashes recomputed, numbers finite, fixed-size fields
//! of their size). Every protocol step has a typed message: no JSON travels
//! inside protobuf. Domain → wire is `From`, wire → domain `TryFrom` (or a
//! `decode_*` function) returning a [`WireError`] that says what is wrong.

use fed::contribution::{Contribution, SignedContribution};
use learn::{Metrics, Standardizer, Weights};
use ledger::entry::SignedEntry;

use crate::v1;

mod secure;

#[cfg(test)]
mod tests;

/// Why a wire message does not decode into its domain value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// A required field or message is absent.
    #[error("the message carries no {0}")]
    Missing(&'static str),
    /// A field's value is malformed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: String) -> WireError {
    WireError::Invalid { field, reason }
}

/// Weights as a `Model` message (safetensors bytes and their SHA-256).
pub fn model_message(weights: &Weights) -> v1::Model {
    v1::Model {
        safetensors: weights.to_safetensors(),
        sha256: weights.sha256_hex(),
    }
}

/// Decode a `Model` message, recomputing its hash. The error says what is wrong.
pub fn decode_model(model: Option<v1::Model>) -> Result<Weights, String> {
    let model = model.ok_or("the message carries no model")?;
    let actual = weights_hash(&model.safetensors);
    if actual != model.sha256 {
        return Err(format!(
            "model bytes hash to {actual} but the message claims {}",
            model.sha256
        ));
    }
    Weights::from_safetensors(&model.safetensors)
        .map_err(|e| format!("model is not valid safetensors: {e}"))
}

fn weights_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Metrics as a message.
pub fn metrics_message(m: Metrics) -> v1::Metrics {
    v1::Metrics {
        loss: m.loss,
        accuracy: m.accuracy,
        samples: m.samples,
    }
}

impl From<&SignedContribution> for v1::Contribution {
    fn from(c: &SignedContribution) -> Self {
        let f = &c.contribution;
        v1::Contribution {
            round: f.round,
            update_sha256: f.update_sha256.clone(),
            num_samples: f.num_samples,
            train_metrics: Some(metrics_message(f.train)),
            global_test_metrics: Some(metrics_message(f.global_test)),
            code_hash: f.code_hash.clone(),
            epsilon_round_micro: f.epsilon_round_micro,
            epsilon_total_micro: f.epsilon_total_micro,
            contribution_entry: c.entry.bytes().to_vec(),
        }
    }
}

impl TryFrom<v1::Contribution> for SignedContribution {
    type Error = WireError;

    /// Decodes the facts and the signed entry; whether the entry's signature
    /// and statement match them is the receiver's check (it knows the author's
    /// key and the plan).
    fn try_from(c: v1::Contribution) -> Result<Self, WireError> {
        let train = decode_metrics(c.train_metrics, "training")
            .map_err(|reason| invalid("train_metrics", reason))?;
        let global_test = decode_metrics(c.global_test_metrics, "test")
            .map_err(|reason| invalid("global_test_metrics", reason))?;
        if c.contribution_entry.is_empty() {
            return Err(WireError::Missing("contribution entry"));
        }
        let entry = SignedEntry::from_bytes(&c.contribution_entry)
            .map_err(|e| invalid("contribution_entry", format!("does not decode: {e}")))?;
        Ok(SignedContribution {
            contribution: Contribution {
                round: c.round,
                update_sha256: c.update_sha256,
                num_samples: c.num_samples,
                train,
                global_test,
                code_hash: c.code_hash,
                epsilon_round_micro: c.epsilon_round_micro,
                epsilon_total_micro: c.epsilon_total_micro,
            },
            entry,
        })
    }
}

/// Decode metrics named `what` in errors; refuses missing or non-finite values.
pub fn decode_metrics(m: Option<v1::Metrics>, what: &str) -> Result<Metrics, String> {
    let m = m.ok_or_else(|| format!("{what} metrics are missing"))?;
    if !(m.loss.is_finite() && m.accuracy.is_finite()) {
        return Err(format!("{what} metrics are not finite numbers"));
    }
    Ok(Metrics {
        loss: m.loss,
        accuracy: m.accuracy,
        samples: m.samples,
    })
}

/// A standardisation as a message.
pub fn standardization_message(s: Standardizer) -> v1::Standardization {
    v1::Standardization {
        mean: s.mean,
        std: s.std,
    }
}

/// Decode a standardisation message.
pub fn decode_standardization(s: v1::Standardization) -> Standardizer {
    Standardizer {
        mean: s.mean,
        std: s.std,
    }
}
