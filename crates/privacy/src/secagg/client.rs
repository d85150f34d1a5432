//! The client side of a secure-aggregation round.

use std::collections::{BTreeMap, BTreeSet};

use rand::CryptoRng;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::envelope::{self, SharePair};
use super::graph::Graph;
use super::keys::{KeyUse, pair_key, public_bytes, random_secret};
use super::messages::{
    AdvertiseKeys, EncryptedShare, KeyDirectory, MaskedInput, RevealedShare, ShareDelivery,
    ShareKeys, ShareKind, UnmaskingRequest, UnmaskingResponse,
};
use super::prg::{Mask, Purpose, Sign, apply_masks};
use super::shamir;
use super::{ClientId, RoundConfig, SecAggError};

/// What a client keeps about another share holder between steps 1 and 2.
struct Peer {
    /// The pair's share-encryption key (from the c keys), to open the holder's envelope.
    share_key: Zeroizing<[u8; 32]>,
    /// The holder's s^PK, for the pairwise mask seed.
    mask_public_key: [u8; 32],
}

enum Stage {
    Created,
    KeysAdvertised,
    SharesSent {
        /// The other holders that advertised keys.
        peers: BTreeMap<ClientId, Peer>,
        /// This client's own shares of its secrets.
        own: SharePair,
    },
    InputMasked {
        /// Shares held, per owner (this client and every peer whose shares arrived).
        held: BTreeMap<ClientId, SharePair>,
    },
    Finished,
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Stage::Created => "created",
            Stage::KeysAdvertised => "keys advertised",
            Stage::SharesSent { .. } => "shares sent",
            Stage::InputMasked { .. } => "input masked",
            Stage::Finished => "finished",
        }
    }
}

/// One client's state machine for one round.
///
/// Call, in order: [`advertise_keys`](Self::advertise_keys), [`share_keys`](Self::share_keys),
/// [`mask_input`](Self::mask_input), [`unmask`](Self::unmask). Each step takes the server's
/// message and returns the client's; a message that is malformed, for another round or client,
/// or arrives at the wrong step is refused with an error and changes nothing.
pub struct SecAggClient {
    id: ClientId,
    config: RoundConfig,
    graph: Graph,
    cipher_key: StaticSecret,
    mask_key: StaticSecret,
    self_seed: Zeroizing<[u8; 32]>,
    stage: Stage,
}

impl SecAggClient {
    /// A client `id` of the round `config`, with fresh keys and self-mask seed from `rng`.
    ///
    /// # Errors
    /// [`SecAggError::InvalidConfig`] when the configuration is invalid or does not list `id`.
    pub fn new<R: CryptoRng + ?Sized>(
        config: RoundConfig,
        id: ClientId,
        rng: &mut R,
    ) -> Result<SecAggClient, SecAggError> {
        config.validate()?;
        if config.clients.binary_search(&id).is_err() {
            return Err(SecAggError::InvalidConfig(format!(
                "client {id} is not selected for round {}",
                config.round_id
            )));
        }
        let mut self_seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(self_seed.as_mut());
        Ok(SecAggClient {
            id,
            graph: Graph::new(&config),
            config,
            cipher_key: random_secret(rng),
            mask_key: random_secret(rng),
            self_seed,
            stage: Stage::Created,
        })
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    fn unexpected(&self, message: &'static str) -> SecAggError {
        SecAggError::UnexpectedMessage {
            message,
            stage: self.stage.name(),
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

    fn check_recipient(
        &self,
        message: &'static str,
        recipient: ClientId,
    ) -> Result<(), SecAggError> {
        if recipient == self.id {
            Ok(())
        } else {
            Err(SecAggError::WrongRecipient {
                message,
                expected: self.id,
                got: recipient,
            })
        }
    }

    fn own_keys(&self) -> AdvertiseKeys {
        AdvertiseKeys {
            round_id: self.config.round_id,
            sender: self.id,
            cipher_public_key: public_bytes(&self.cipher_key),
            mask_public_key: public_bytes(&self.mask_key),
        }
    }

    /// Step 0: the client's public keys.
    ///
    /// # Errors
    /// [`SecAggError::UnexpectedMessage`] if the keys were already advertised.
    pub fn advertise_keys(&mut self) -> Result<AdvertiseKeys, SecAggError> {
        if !matches!(self.stage, Stage::Created) {
            return Err(self.unexpected("advertise keys"));
        }
        self.stage = Stage::KeysAdvertised;
        Ok(self.own_keys())
    }

    /// Step 1: shares b and s^SK among the holders listed in `directory`, one envelope each.
    ///
    /// # Errors
    /// Refuses a directory for another round or client, at the wrong step, listing a client
    /// that is not one of this client's holders or listing one twice, changing this client's own
    /// keys, or giving a weak key; [`SecAggError::TooFewClients`] when fewer than the threshold
    /// of holders advertised keys (the client's secrets could not be recovered).
    pub fn share_keys<R: CryptoRng + ?Sized>(
        &mut self,
        directory: &KeyDirectory,
        rng: &mut R,
    ) -> Result<ShareKeys, SecAggError> {
        const MESSAGE: &str = "key directory";
        if !matches!(self.stage, Stage::KeysAdvertised) {
            return Err(self.unexpected(MESSAGE));
        }
        self.check_round(directory.round_id)?;
        self.check_recipient(MESSAGE, directory.recipient)?;
        let malformed = |reason: String| SecAggError::Malformed {
            message: MESSAGE,
            reason,
        };
        let mut peer_keys = BTreeMap::new();
        let mut saw_self = false;
        for keys in &directory.keys {
            self.check_round(keys.round_id)?;
            if !self.graph.adjacent(self.id, keys.sender) {
                return Err(malformed(format!(
                    "client {} is not a share holder",
                    keys.sender
                )));
            }
            if keys.cipher_public_key == keys.mask_public_key {
                return Err(malformed(format!(
                    "client {} reuses one key for both uses",
                    keys.sender
                )));
            }
            if keys.sender == self.id {
                if *keys != self.own_keys() {
                    return Err(malformed("this client's own keys were altered".into()));
                }
                saw_self = true;
            } else if peer_keys.insert(keys.sender, keys).is_some() {
                return Err(malformed(format!("client {} listed twice", keys.sender)));
            }
        }
        if !saw_self {
            return Err(malformed("this client's own keys are missing".into()));
        }
        let threshold = self.config.threshold;
        if peer_keys.len() + 1 < threshold {
            return Err(SecAggError::TooFewClients {
                step: "share keys",
                available: peer_keys.len() + 1,
                threshold,
            });
        }
        let round_id = self.config.round_id;
        let mut peers = BTreeMap::new();
        for (&id, keys) in &peer_keys {
            let share_key = pair_key(
                &self.cipher_key,
                &keys.cipher_public_key,
                KeyUse::ShareEncryption,
                round_id,
                self.id,
                id,
            )?;
            let mask_public_key = keys.mask_public_key;
            peers.insert(
                id,
                Peer {
                    share_key,
                    mask_public_key,
                },
            );
        }
        let holders: Vec<ClientId> = peers.keys().copied().chain([self.id]).collect();
        let mask_secret = Zeroizing::new(self.mask_key.to_bytes());
        let seed_shares = shamir::split(&self.self_seed, threshold, &holders, rng);
        let key_shares = shamir::split(&mask_secret, threshold, &holders, rng);
        let mut shares = Vec::with_capacity(peers.len());
        let mut own = None;
        for ((&holder, self_seed), mask_key) in holders.iter().zip(seed_shares).zip(key_shares) {
            let pair = SharePair {
                self_seed,
                mask_key,
            };
            match peers.get(&holder) {
                None => own = Some(pair),
                Some(peer) => shares.push(EncryptedShare {
                    sender: self.id,
                    recipient: holder,
                    ciphertext: envelope::seal(&peer.share_key, round_id, self.id, holder, &pair),
                }),
            }
        }
        let own = own.ok_or_else(|| malformed("this client's own keys are missing".into()))?;
        self.stage = Stage::SharesSent { peers, own };
        Ok(ShareKeys {
            round_id,
            sender: self.id,
            shares,
        })
    }

    /// Step 2: masks `input` (quantised words) with the self mask and one pairwise mask per
    /// holder whose shares arrived in `delivery`.
    ///
    /// # Errors
    /// Refuses a delivery for another round or client, at the wrong step, with an envelope
    /// from a client that is not a holder or that appears twice, or that fails authentication;
    /// [`SecAggError::WrongLength`] for an input of the wrong length;
    /// [`SecAggError::TooFewClients`] when fewer than the threshold of holders sent shares.
    pub fn mask_input(
        &mut self,
        delivery: &ShareDelivery,
        input: &[u32],
    ) -> Result<MaskedInput, SecAggError> {
        const MESSAGE: &str = "share delivery";
        let Stage::SharesSent { peers, own } = &self.stage else {
            return Err(self.unexpected(MESSAGE));
        };
        self.check_round(delivery.round_id)?;
        self.check_recipient(MESSAGE, delivery.recipient)?;
        if input.len() != self.config.vector_len {
            return Err(SecAggError::WrongLength {
                what: "input",
                expected: self.config.vector_len,
                got: input.len(),
            });
        }
        let round_id = self.config.round_id;
        let mut held = BTreeMap::from([(self.id, *own)]);
        for envelope in &delivery.shares {
            self.check_recipient("encrypted share", envelope.recipient)?;
            let Some(peer) = peers.get(&envelope.sender) else {
                return Err(SecAggError::UnknownSender {
                    message: "encrypted share",
                    sender: envelope.sender,
                });
            };
            let pair = envelope::open(
                &peer.share_key,
                round_id,
                envelope.sender,
                self.id,
                &envelope.ciphertext,
            )?;
            if held.insert(envelope.sender, pair).is_some() {
                return Err(SecAggError::Replayed {
                    message: "encrypted share",
                    sender: envelope.sender,
                });
            }
        }
        if held.len() < self.config.threshold {
            return Err(SecAggError::TooFewClients {
                step: "masked input",
                available: held.len(),
                threshold: self.config.threshold,
            });
        }
        let mut masks = vec![Mask {
            seed: self.self_seed.clone(),
            purpose: Purpose::SelfMask,
            sign: Sign::Add,
        }];
        for (&peer_id, peer) in peers.iter().filter(|(id, _)| held.contains_key(id)) {
            let seed = pair_key(
                &self.mask_key,
                &peer.mask_public_key,
                KeyUse::PairwiseMask,
                round_id,
                self.id,
                peer_id,
            )?;
            let sign = if self.id < peer_id {
                Sign::Add
            } else {
                Sign::Subtract
            };
            masks.push(Mask {
                seed,
                purpose: Purpose::PairwiseMask,
                sign,
            });
        }
        let mut words = input.to_vec();
        apply_masks(&mut words, &masks);
        self.stage = Stage::InputMasked { held };
        Ok(MaskedInput {
            round_id,
            sender: self.id,
            words,
        })
    }

    /// Step 3: reveals, for every client it holds shares of, the share of b if the request
    /// lists it as a survivor and the share of s^SK otherwise.
    ///
    /// This is the double-masking defence: a client answers one unmasking request per round,
    /// and that answer never holds both seeds of one owner. Since the threshold is a strict
    /// majority of each owner's holders, a server that tells some holders "X survived" and
    /// others "X dropped" cannot gather the threshold of both kinds of share.
    ///
    /// # Errors
    /// [`SecAggError::AlreadyUnmasked`] for a second request; [`SecAggError::ClaimedDropped`]
    /// when this client is not among the survivors (it sent its masked input);
    /// [`SecAggError::TooFewClients`] when the survivors are fewer than the threshold (the sum
    /// of so few would reveal too much); [`SecAggError::Malformed`] for unsorted or unknown
    /// survivors, or a holder claimed as survivor that never sent its shares.
    pub fn unmask(&mut self, request: &UnmaskingRequest) -> Result<UnmaskingResponse, SecAggError> {
        const MESSAGE: &str = "unmasking request";
        let held = match &self.stage {
            Stage::InputMasked { held } => held,
            Stage::Finished => return Err(SecAggError::AlreadyUnmasked { client: self.id }),
            _ => return Err(self.unexpected(MESSAGE)),
        };
        self.check_round(request.round_id)?;
        let malformed = |reason: String| SecAggError::Malformed {
            message: MESSAGE,
            reason,
        };
        if request.survivors.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(malformed("survivors must be sorted and distinct".into()));
        }
        if let Some(stranger) = request
            .survivors
            .iter()
            .find(|&&id| !self.graph.contains(id))
        {
            return Err(malformed(format!("client {stranger} is not in this round")));
        }
        let survivors: BTreeSet<ClientId> = request.survivors.iter().copied().collect();
        if !survivors.contains(&self.id) {
            return Err(SecAggError::ClaimedDropped { client: self.id });
        }
        if survivors.len() < self.config.threshold {
            return Err(SecAggError::TooFewClients {
                step: "unmasking",
                available: survivors.len(),
                threshold: self.config.threshold,
            });
        }
        if let Some(ghost) = survivors
            .iter()
            .find(|&&id| self.graph.adjacent(self.id, id) && !held.contains_key(&id))
        {
            return Err(malformed(format!(
                "client {ghost} is listed as a survivor but never sent its shares"
            )));
        }
        let shares = held
            .iter()
            .map(|(&owner, pair)| {
                let (kind, share) = if survivors.contains(&owner) {
                    (ShareKind::SelfMaskSeed, pair.self_seed)
                } else {
                    (ShareKind::MaskSecretKey, pair.mask_key)
                };
                RevealedShare {
                    owner,
                    kind,
                    share: share.to_bytes().to_vec(),
                }
            })
            .collect();
        self.stage = Stage::Finished;
        Ok(UnmaskingResponse {
            round_id: self.config.round_id,
            sender: self.id,
            shares,
        })
    }
}
