//! A whole round in one process, every client and the server exchanging the real messages:
//! for tests, benchmarks and simulations.

use std::collections::BTreeMap;

use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use super::{AggregateOutcome, ClientId, RoundConfig, SecAggClient, SecAggError, SecAggServer};

/// A protocol step, in order. A client that drops at a step sends nothing from it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    /// Sending its public keys.
    AdvertiseKeys,
    /// Sending its encrypted shares.
    ShareKeys,
    /// Sending its masked input.
    MaskedInput,
    /// Answering the unmasking request.
    Unmasking,
}

/// Runs one round over `inputs` (quantised words, one vector per client of `config.clients`,
/// in that order), each client in `dropouts` going silent at the given step.
///
/// # Errors
/// [`SecAggError::WrongLength`] when `inputs` does not have one vector per client; otherwise
/// the first error of a client or of the server (for instance
/// [`SecAggError::TooFewClients`] when dropouts leave fewer than the threshold).
pub fn run_round<R: CryptoRng + ?Sized>(
    config: &RoundConfig,
    inputs: &[Vec<u32>],
    dropouts: &BTreeMap<ClientId, Step>,
    rng: &mut R,
) -> Result<AggregateOutcome, SecAggError> {
    if inputs.len() != config.clients.len() {
        return Err(SecAggError::WrongLength {
            what: "inputs (one per client)",
            expected: config.clients.len(),
            got: inputs.len(),
        });
    }
    let active = |id: ClientId, step: Step| dropouts.get(&id).is_none_or(|&dropped| step < dropped);
    let mut server = SecAggServer::new(config.clone())?;
    let mut clients = BTreeMap::new();
    for (&id, input) in config.clients.iter().zip(inputs) {
        clients.insert(id, (SecAggClient::new(config.clone(), id, rng)?, input));
    }
    for (&id, (client, _)) in &mut clients {
        if active(id, Step::AdvertiseKeys) {
            server.receive_keys(client.advertise_keys()?)?;
        }
    }
    for directory in server.key_directories()? {
        if let Some((client, _)) = clients.get_mut(&directory.recipient)
            && active(directory.recipient, Step::ShareKeys)
        {
            server.receive_shares(client.share_keys(&directory, rng)?)?;
        }
    }
    for delivery in server.share_deliveries()? {
        if let Some((client, input)) = clients.get_mut(&delivery.recipient)
            && active(delivery.recipient, Step::MaskedInput)
        {
            server.receive_masked_input(client.mask_input(&delivery, input)?)?;
        }
    }
    let request = server.unmasking_request()?;
    for &id in &request.survivors {
        if let Some((client, _)) = clients.get_mut(&id)
            && active(id, Step::Unmasking)
        {
            server.receive_unmasking(client.unmask(&request)?)?;
        }
    }
    server.finish()
}
