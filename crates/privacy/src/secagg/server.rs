//! The server side of a secure-aggregation round: it routes keys and encrypted shares, sums the
//! masked inputs and removes the masks, learning only the sum.

use std::collections::{BTreeMap, BTreeSet};
use std::mem;

use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::envelope::ENVELOPE_LEN;
use super::graph::Graph;
use super::keys::{KeyUse, pair_key, public_bytes};
use super::messages::{
    AdvertiseKeys, EncryptedShare, KeyDirectory, MaskedInput, ShareDelivery, ShareKeys, ShareKind,
    UnmaskingRequest, UnmaskingResponse,
};
use super::prg::{Mask, Purpose, Sign, apply_masks};
use super::shamir::{self, Share};
use super::{ClientId, RoundConfig, SecAggError};

/// What a successful round gives the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateOutcome {
    /// Σ inputs of the contributors, in Z_2^32.
    pub sum: Vec<u32>,
    /// The clients whose inputs are in the sum, sorted.
    pub contributors: Vec<ClientId>,
}

enum Stage {
    CollectingKeys {
        keys: BTreeMap<ClientId, AdvertiseKeys>,
    },
    CollectingShares {
        keys: BTreeMap<ClientId, AdvertiseKeys>,
        envelopes: BTreeMap<ClientId, Vec<EncryptedShare>>,
    },
    CollectingInputs {
        keys: BTreeMap<ClientId, AdvertiseKeys>,
        share_senders: BTreeSet<ClientId>,
        sum: Vec<u32>,
        input_senders: BTreeSet<ClientId>,
    },
    CollectingUnmasking {
        keys: BTreeMap<ClientId, AdvertiseKeys>,
        share_senders: BTreeSet<ClientId>,
        sum: Vec<u32>,
        survivors: BTreeSet<ClientId>,
        responders: BTreeSet<ClientId>,
        /// Revealed shares per owner: (holder, share).
        revealed: BTreeMap<ClientId, Vec<(ClientId, Share)>>,
    },
    Finished,
    Failed,
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Stage::CollectingKeys { .. } => "collecting keys",
            Stage::CollectingShares { .. } => "collecting shares",
            Stage::CollectingInputs { .. } => "collecting masked inputs",
            Stage::CollectingUnmasking { .. } => "collecting unmasking responses",
            Stage::Finished => "finished",
            Stage::Failed => "failed",
        }
    }
}

/// The server's state machine for one round.
///
/// Each step collects client messages with a `receive_*` method and is closed (when every
/// client answered, or at the caller's deadline) by the method that builds the next message to
/// the clients: [`key_directories`](Self::key_directories),
/// [`share_deliveries`](Self::share_deliveries), [`unmasking_request`](Self::unmasking_request)
/// and finally [`finish`](Self::finish). A refused message changes nothing; a step closed with
/// fewer than the threshold of clients fails the round, which then accepts nothing more and
/// reveals no sum.
pub struct SecAggServer {
    config: RoundConfig,
    graph: Graph,
    stage: Stage,
}

impl SecAggServer {
    /// The server of the round `config`.
    ///
    /// # Errors
    /// [`SecAggError::InvalidConfig`] when the configuration is invalid.
    pub fn new(config: RoundConfig) -> Result<SecAggServer, SecAggError> {
        config.validate()?;
        Ok(SecAggServer {
            graph: Graph::new(&config),
            config,
            stage: Stage::CollectingKeys {
                keys: BTreeMap::new(),
            },
        })
    }

    fn unexpected(&self, message: &'static str) -> SecAggError {
        match self.stage {
            Stage::Failed => SecAggError::RoundFailed,
            _ => SecAggError::UnexpectedMessage {
                message,
                stage: self.stage.name(),
            },
        }
    }

    fn check_round(&self, round_id: u64) -> Result<(), SecAggError> {
        if round_id == self.config.round_id {
            Ok(())
        } else {
            Err(SecAggError::WrongRound {
                expected: self.config.round_id,
                got: round_id,
            })
        }
    }

    fn fail(&mut self, step: &'static str, available: usize) -> SecAggError {
        self.stage = Stage::Failed;
        SecAggError::TooFewClients {
            step,
            available,
            threshold: self.config.threshold,
        }
    }

    /// Step 0: a client's public keys.
    ///
    /// # Errors
    /// Refuses keys at the wrong step, for another round, from a client not selected for it,
    /// a second time from the same client, or with one key used for both purposes.
    pub fn receive_keys(&mut self, message: AdvertiseKeys) -> Result<(), SecAggError> {
        const MESSAGE: &str = "advertise keys";
        if !matches!(self.stage, Stage::CollectingKeys { .. }) {
            return Err(self.unexpected(MESSAGE));
        }
        self.check_round(message.round_id)?;
        if !self.graph.contains(message.sender) {
            return Err(SecAggError::UnknownSender {
                message: MESSAGE,
                sender: message.sender,
            });
        }
        if message.cipher_public_key == message.mask_public_key {
            return Err(SecAggError::Malformed {
                message: MESSAGE,
                reason: "one key used for both purposes".into(),
            });
        }
        let Stage::CollectingKeys { keys } = &mut self.stage else {
            return Err(SecAggError::RoundFailed);
        };
        if keys.contains_key(&message.sender) {
            return Err(SecAggError::Replayed {
                message: MESSAGE,
                sender: message.sender,
            });
        }
        keys.insert(message.sender, message);
        Ok(())
    }

    /// Closes step 0: one directory per client that advertised keys, with its holders' keys.
    ///
    /// # Errors
    /// [`SecAggError::TooFewClients`] (the round fails) when fewer than the threshold advertised.
    pub fn key_directories(&mut self) -> Result<Vec<KeyDirectory>, SecAggError> {
        if !matches!(self.stage, Stage::CollectingKeys { .. }) {
            return Err(self.unexpected("close of key advertisement"));
        }
        let Stage::CollectingKeys { keys } = mem::replace(&mut self.stage, Stage::Failed) else {
            return Err(SecAggError::RoundFailed);
        };
        if keys.len() < self.config.threshold {
            return Err(self.fail("advertise keys", keys.len()));
        }
        let directories = keys
            .keys()
            .map(|&recipient| KeyDirectory {
                round_id: self.config.round_id,
                recipient,
                keys: keys
                    .values()
                    .filter(|k| self.graph.adjacent(recipient, k.sender))
                    .cloned()
                    .collect(),
            })
            .collect();
        self.stage = Stage::CollectingShares {
            keys,
            envelopes: BTreeMap::new(),
        };
        Ok(directories)
    }

    /// Step 1: a client's encrypted shares, one per other holder that advertised keys.
    ///
    /// # Errors
    /// Refuses shares at the wrong step, for another round, from a client that did not
    /// advertise keys, a second time from the same client, with envelopes that are not exactly
    /// one per expected holder, claim another sender, or have the wrong length.
    pub fn receive_shares(&mut self, message: ShareKeys) -> Result<(), SecAggError> {
        const MESSAGE: &str = "share keys";
        if !matches!(self.stage, Stage::CollectingShares { .. }) {
            return Err(self.unexpected(MESSAGE));
        }
        self.check_round(message.round_id)?;
        let graph = &self.graph;
        let Stage::CollectingShares { keys, envelopes } = &mut self.stage else {
            return Err(SecAggError::RoundFailed);
        };
        if !keys.contains_key(&message.sender) {
            return Err(SecAggError::UnknownSender {
                message: MESSAGE,
                sender: message.sender,
            });
        }
        if envelopes.contains_key(&message.sender) {
            return Err(SecAggError::Replayed {
                message: MESSAGE,
                sender: message.sender,
            });
        }
        let malformed = |reason: String| SecAggError::Malformed {
            message: MESSAGE,
            reason,
        };
        let expected: BTreeSet<ClientId> = keys
            .keys()
            .copied()
            .filter(|&holder| holder != message.sender && graph.adjacent(holder, message.sender))
            .collect();
        let mut seen = BTreeSet::new();
        for envelope in &message.shares {
            if envelope.sender != message.sender {
                return Err(malformed(format!(
                    "envelope claims sender {}",
                    envelope.sender
                )));
            }
            if !expected.contains(&envelope.recipient) || !seen.insert(envelope.recipient) {
                return Err(malformed(format!(
                    "unexpected or repeated recipient {}",
                    envelope.recipient
                )));
            }
            if envelope.ciphertext.len() != ENVELOPE_LEN {
                return Err(SecAggError::WrongLength {
                    what: "encrypted share",
                    expected: ENVELOPE_LEN,
                    got: envelope.ciphertext.len(),
                });
            }
        }
        if seen.len() != expected.len() {
            return Err(malformed(format!(
                "{} envelopes for {} holders",
                seen.len(),
                expected.len()
            )));
        }
        envelopes.insert(message.sender, message.shares);
        Ok(())
    }

    /// Closes step 1: for every client that sent its shares, the envelopes addressed to it.
    ///
    /// # Errors
    /// [`SecAggError::TooFewClients`] (the round fails) when fewer than the threshold shared.
    pub fn share_deliveries(&mut self) -> Result<Vec<ShareDelivery>, SecAggError> {
        if !matches!(self.stage, Stage::CollectingShares { .. }) {
            return Err(self.unexpected("close of key sharing"));
        }
        let Stage::CollectingShares { keys, envelopes } =
            mem::replace(&mut self.stage, Stage::Failed)
        else {
            return Err(SecAggError::RoundFailed);
        };
        if envelopes.len() < self.config.threshold {
            return Err(self.fail("share keys", envelopes.len()));
        }
        let share_senders: BTreeSet<ClientId> = envelopes.keys().copied().collect();
        let mut deliveries: BTreeMap<ClientId, Vec<EncryptedShare>> =
            share_senders.iter().map(|&id| (id, Vec::new())).collect();
        for envelope in envelopes.into_values().flatten() {
            if let Some(inbox) = deliveries.get_mut(&envelope.recipient) {
                inbox.push(envelope);
            }
        }
        self.stage = Stage::CollectingInputs {
            keys,
            share_senders,
            sum: vec![0; self.config.vector_len],
            input_senders: BTreeSet::new(),
        };
        Ok(deliveries
            .into_iter()
            .map(|(recipient, shares)| ShareDelivery {
                round_id: self.config.round_id,
                recipient,
                shares,
            })
            .collect())
    }

    /// Step 2: a client's masked input, added to the running sum.
    ///
    /// # Errors
    /// Refuses an input at the wrong step, for another round, from a client that did not send
    /// its shares, a second time from the same client, or of the wrong length.
    pub fn receive_masked_input(&mut self, message: MaskedInput) -> Result<(), SecAggError> {
        const MESSAGE: &str = "masked input";
        if !matches!(self.stage, Stage::CollectingInputs { .. }) {
            return Err(self.unexpected(MESSAGE));
        }
        self.check_round(message.round_id)?;
        let Stage::CollectingInputs {
            share_senders,
            sum,
            input_senders,
            ..
        } = &mut self.stage
        else {
            return Err(SecAggError::RoundFailed);
        };
        if !share_senders.contains(&message.sender) {
            return Err(SecAggError::UnknownSender {
                message: MESSAGE,
                sender: message.sender,
            });
        }
        if input_senders.contains(&message.sender) {
            return Err(SecAggError::Replayed {
                message: MESSAGE,
                sender: message.sender,
            });
        }
        if message.words.len() != sum.len() {
            return Err(SecAggError::WrongLength {
                what: "masked input",
                expected: sum.len(),
                got: message.words.len(),
            });
        }
        sum.iter_mut()
            .zip(&message.words)
            .for_each(|(acc, &w)| *acc = acc.wrapping_add(w));
        input_senders.insert(message.sender);
        Ok(())
    }

    /// Closes step 2: the request naming the clients whose masked input arrived.
    ///
    /// # Errors
    /// [`SecAggError::TooFewClients`] (the round fails) when fewer than the threshold sent input.
    pub fn unmasking_request(&mut self) -> Result<UnmaskingRequest, SecAggError> {
        if !matches!(self.stage, Stage::CollectingInputs { .. }) {
            return Err(self.unexpected("close of masked inputs"));
        }
        let Stage::CollectingInputs {
            keys,
            share_senders,
            sum,
            input_senders,
        } = mem::replace(&mut self.stage, Stage::Failed)
        else {
            return Err(SecAggError::RoundFailed);
        };
        if input_senders.len() < self.config.threshold {
            return Err(self.fail("masked input", input_senders.len()));
        }
        let request = UnmaskingRequest {
            round_id: self.config.round_id,
            survivors: input_senders.iter().copied().collect(),
        };
        self.stage = Stage::CollectingUnmasking {
            keys,
            share_senders,
            sum,
            survivors: input_senders,
            responders: BTreeSet::new(),
            revealed: BTreeMap::new(),
        };
        Ok(request)
    }

    /// Step 3: a survivor's revealed shares.
    ///
    /// # Errors
    /// Refuses a response at the wrong step, for another round, from a client that is not a
    /// survivor, a second time from the same client, or whose shares are not exactly one per
    /// client it holds shares of, of the right kind (b for survivors, s^SK for dropped clients)
    /// and of the right form.
    pub fn receive_unmasking(&mut self, message: UnmaskingResponse) -> Result<(), SecAggError> {
        const MESSAGE: &str = "unmasking response";
        if !matches!(self.stage, Stage::CollectingUnmasking { .. }) {
            return Err(self.unexpected(MESSAGE));
        }
        self.check_round(message.round_id)?;
        let graph = &self.graph;
        let Stage::CollectingUnmasking {
            share_senders,
            survivors,
            responders,
            revealed,
            ..
        } = &mut self.stage
        else {
            return Err(SecAggError::RoundFailed);
        };
        let sender = message.sender;
        if !survivors.contains(&sender) {
            return Err(SecAggError::UnknownSender {
                message: MESSAGE,
                sender,
            });
        }
        if responders.contains(&sender) {
            return Err(SecAggError::Replayed {
                message: MESSAGE,
                sender,
            });
        }
        let malformed = |reason: String| SecAggError::Malformed {
            message: MESSAGE,
            reason,
        };
        let expected: BTreeSet<ClientId> = share_senders
            .iter()
            .copied()
            .filter(|&owner| graph.adjacent(sender, owner))
            .collect();
        let mut parsed = BTreeMap::new();
        for revealed_share in &message.shares {
            let owner = revealed_share.owner;
            if !expected.contains(&owner) {
                return Err(malformed(format!(
                    "client {sender} holds no shares of client {owner}"
                )));
            }
            let kind = if survivors.contains(&owner) {
                ShareKind::SelfMaskSeed
            } else {
                ShareKind::MaskSecretKey
            };
            if revealed_share.kind != kind {
                return Err(malformed(format!(
                    "share of client {owner} must be {kind:?}"
                )));
            }
            let share = Share::from_bytes(&revealed_share.share).ok_or_else(|| {
                malformed(format!("share of client {owner} is not a valid share"))
            })?;
            if parsed.insert(owner, share).is_some() {
                return Err(malformed(format!("two shares of client {owner}")));
            }
        }
        if parsed.len() != expected.len() {
            return Err(malformed(format!(
                "{} shares for {} owners",
                parsed.len(),
                expected.len()
            )));
        }
        for (owner, share) in parsed {
            revealed.entry(owner).or_default().push((sender, share));
        }
        responders.insert(sender);
        Ok(())
    }

    /// Closes the round: rebuilds each survivor's b and each dropped client's s^SK from the
    /// revealed shares and removes the masks from the sum.
    ///
    /// # Errors
    /// The round fails ([`SecAggError::TooFewClients`]) when some secret has fewer than the
    /// threshold of shares, or ([`SecAggError::InconsistentShares`]) when a rebuilt s^SK does
    /// not match its advertised public key.
    pub fn finish(&mut self) -> Result<AggregateOutcome, SecAggError> {
        if !matches!(self.stage, Stage::CollectingUnmasking { .. }) {
            return Err(self.unexpected("close of unmasking"));
        }
        let Stage::CollectingUnmasking {
            keys,
            share_senders,
            mut sum,
            survivors,
            revealed,
            ..
        } = mem::replace(&mut self.stage, Stage::Failed)
        else {
            return Err(SecAggError::RoundFailed);
        };
        let threshold = self.config.threshold;
        let round_id = self.config.round_id;
        let rebuild = |owner: ClientId| -> Result<[u8; 32], SecAggError> {
            let points = revealed.get(&owner).map(Vec::as_slice).unwrap_or_default();
            if points.len() < threshold {
                return Err(SecAggError::TooFewClients {
                    step: "unmasking",
                    available: points.len(),
                    threshold,
                });
            }
            shamir::reconstruct(points, threshold).ok_or(SecAggError::InconsistentShares { owner })
        };
        let mut masks = Vec::new();
        for &owner in &survivors {
            masks.push(Mask {
                seed: Zeroizing::new(rebuild(owner)?),
                purpose: Purpose::SelfMask,
                sign: Sign::Subtract,
            });
        }
        for &owner in share_senders.difference(&survivors) {
            let secret = StaticSecret::from(rebuild(owner)?);
            let advertised = keys.get(&owner).map(|k| k.mask_public_key);
            if advertised != Some(public_bytes(&secret)) {
                return Err(SecAggError::InconsistentShares { owner });
            }
            for &survivor in survivors.iter().filter(|&&s| self.graph.adjacent(s, owner)) {
                let Some(peer) = keys.get(&survivor) else {
                    continue;
                };
                let seed = pair_key(
                    &secret,
                    &peer.mask_public_key,
                    KeyUse::PairwiseMask,
                    round_id,
                    owner,
                    survivor,
                )?;
                // The survivor added its mask with `Add` when its id is the smaller one.
                let sign = if survivor < owner {
                    Sign::Subtract
                } else {
                    Sign::Add
                };
                masks.push(Mask {
                    seed,
                    purpose: Purpose::PairwiseMask,
                    sign,
                });
            }
        }
        apply_masks(&mut sum, &masks);
        self.stage = Stage::Finished;
        Ok(AggregateOutcome {
            sum,
            contributors: survivors.into_iter().collect(),
        })
    }
}
