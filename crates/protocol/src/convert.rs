//! Conversions between wire messages and domain types, with the checks every
//! receiver must make (hashes recomputed, numbers finite).

use learn::{Metrics, Standardizer, Weights};

use crate::v1;

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
