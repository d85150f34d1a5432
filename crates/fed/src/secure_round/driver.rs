//! A whole secure round in one process, through the real state machines and messages: for
//! tests, benchmarks and simulations.

use std::collections::{BTreeMap, BTreeSet};

use privacy::secagg::Step;
use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use super::{
    SecureRoundClient, SecureRoundError, SecureRoundParams, SecureRoundServer, SecureSum, Topology,
    encode_update,
};

/// The round settings [`run_secure_round`] does not derive from its inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecureRoundSettings {
    /// Round attempt number.
    pub round_id: u64,
    /// Shamir threshold; `None` for the smallest accepted
    /// ([`SecureRoundParams::minimal_threshold`]).
    pub threshold: Option<usize>,
    /// Who shares with whom.
    pub topology: Topology,
    /// Quantisation range (see [`super::weighted_mean_range`]).
    pub range: f64,
}

/// Runs one secure weighted-mean round: every party of `updates` (name, local weights, sample
/// count; any order) encodes its update with [`encode_update`] against `global`, and the
/// parties and a [`SecureRoundServer`] exchange the real messages. A party listed in
/// `dropouts` goes silent from the given step on (`Step::Unmasking`: it sent its masked input,
/// so it is still a contributor). Each step is closed once every live party has answered.
///
/// The result is the sum of the contributors' encoded updates; [`SecureSum::mean_model`] and
/// [`super::aggregate_secure_sum`] turn it into the next model.
///
/// # Errors
/// [`SecureRoundError::InvalidParams`] for fewer than two parties, a name given twice or bad
/// settings; [`SecureRoundError::UnknownParty`] for a dropout that is not a party; an error of
/// [`encode_update`] or of a node; [`SecureRoundError::TooFewParties`] when the dropouts leave
/// fewer than the threshold (the round fails and reveals nothing).
pub fn run_secure_round<R: CryptoRng + ?Sized>(
    global: &[f32],
    updates: &[(String, Vec<f32>, u64)],
    dropouts: &BTreeMap<String, Step>,
    settings: &SecureRoundSettings,
    rng: &mut R,
) -> Result<SecureSum, SecureRoundError> {
    let names: BTreeSet<&str> = updates.iter().map(|(name, _, _)| name.as_str()).collect();
    if names.len() != updates.len() {
        return Err(SecureRoundError::InvalidParams(
            "a party appears twice among the updates".into(),
        ));
    }
    if let Some(stranger) = dropouts.keys().find(|name| !names.contains(name.as_str())) {
        return Err(SecureRoundError::UnknownParty {
            party: stranger.clone(),
        });
    }
    let participants: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
    let threshold = settings.threshold.unwrap_or_else(|| {
        SecureRoundParams::minimal_threshold(participants.len(), &settings.topology)
    });
    let params = SecureRoundParams::new(
        settings.round_id,
        participants,
        threshold,
        settings.topology.clone(),
        global.len() + 1,
        settings.range,
    )?;
    let mut server = SecureRoundServer::new(params.clone())?;
    let mut nodes = BTreeMap::new();
    for (name, weights, num_samples) in updates {
        let client = SecureRoundClient::new(params.clone(), name)?;
        let encoded = encode_update(global, weights, *num_samples)?;
        nodes.insert(name.as_str(), (client, encoded));
    }
    let active = |name: &str, step: Step| dropouts.get(name).is_none_or(|&dropped| step < dropped);
    for step in [
        Step::AdvertiseKeys,
        Step::ShareKeys,
        Step::MaskedInput,
        Step::Unmasking,
    ] {
        for (&name, (client, encoded)) in &mut nodes {
            if !active(name, step) {
                continue;
            }
            if let Some(task) = server.task_for(name) {
                let message = client.respond(&task, encoded, rng)?;
                server.receive(name, message)?;
            }
        }
        server.close_step()?;
    }
    server
        .result()
        .cloned()
        .ok_or_else(|| SecureRoundError::RoundFailed {
            reason: "the round ended without a sum".into(),
        })
}
