//! The secure-aggregation messages: `fed::secure_round`'s tasks, messages and
//! parameters ⇄ their protobuf messages, field by field.

use fed::secure_round::{SecureMessage, SecureRoundParams, SecureTask, Topology};
use privacy::secagg;

use super::{WireError, invalid};
use crate::v1;

fn usize_of(field: &'static str, value: u64) -> Result<usize, WireError> {
    usize::try_from(value).map_err(|_| invalid(field, format!("{value} is too large")))
}

fn key_of(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], WireError> {
    bytes
        .try_into()
        .map_err(|_| invalid(field, format!("{} bytes, expected 32", bytes.len())))
}

impl From<&SecureRoundParams> for v1::SecureRoundParams {
    fn from(p: &SecureRoundParams) -> Self {
        let topology = match &p.topology {
            Topology::Complete => v1::secure_round_params::Topology::Complete(v1::CompleteGraph {}),
            Topology::Harary { num_shares, seed } => {
                v1::secure_round_params::Topology::Harary(v1::HararyGraph {
                    num_shares: u32::try_from(*num_shares).unwrap_or(u32::MAX),
                    seed: seed.to_vec(),
                })
            }
        };
        v1::SecureRoundParams {
            round_id: p.round_id,
            participants: p.participants.clone(),
            threshold: u32::try_from(p.threshold).unwrap_or(u32::MAX),
            topology: Some(topology),
            vector_len: p.vector_len as u64,
            range: p.range,
            client_clip_norm: p.client_clip_norm,
        }
    }
}

impl TryFrom<v1::SecureRoundParams> for SecureRoundParams {
    type Error = WireError;

    /// Decodes the fields; whether they make a valid round is
    /// [`SecureRoundParams::validate`]'s (the node's secure client checks it).
    fn try_from(p: v1::SecureRoundParams) -> Result<Self, WireError> {
        let topology = match p
            .topology
            .ok_or(WireError::Missing("secure round topology"))?
        {
            v1::secure_round_params::Topology::Complete(_) => Topology::Complete,
            v1::secure_round_params::Topology::Harary(h) => Topology::Harary {
                num_shares: usize_of("harary.num_shares", u64::from(h.num_shares))?,
                seed: key_of("harary.seed", &h.seed)?,
            },
        };
        if !p.range.is_finite() {
            return Err(invalid("range", "not a finite number".into()));
        }
        if p.client_clip_norm.is_some_and(|c| !c.is_finite()) {
            return Err(invalid("client_clip_norm", "not a finite number".into()));
        }
        Ok(SecureRoundParams {
            round_id: p.round_id,
            participants: p.participants,
            threshold: usize_of("threshold", u64::from(p.threshold))?,
            topology,
            vector_len: usize_of("vector_len", p.vector_len)?,
            range: p.range,
            client_clip_norm: p.client_clip_norm,
        })
    }
}

impl From<&secagg::AdvertiseKeys> for v1::AdvertisedKeys {
    fn from(k: &secagg::AdvertiseKeys) -> Self {
        v1::AdvertisedKeys {
            round_id: k.round_id,
            sender: k.sender,
            cipher_public_key: k.cipher_public_key.to_vec(),
            mask_public_key: k.mask_public_key.to_vec(),
        }
    }
}

impl TryFrom<v1::AdvertisedKeys> for secagg::AdvertiseKeys {
    type Error = WireError;

    fn try_from(k: v1::AdvertisedKeys) -> Result<Self, WireError> {
        Ok(secagg::AdvertiseKeys {
            round_id: k.round_id,
            sender: k.sender,
            cipher_public_key: key_of("cipher_public_key", &k.cipher_public_key)?,
            mask_public_key: key_of("mask_public_key", &k.mask_public_key)?,
        })
    }
}

fn share_message(s: &secagg::EncryptedShare) -> v1::EncryptedShare {
    v1::EncryptedShare {
        sender: s.sender,
        recipient: s.recipient,
        ciphertext: s.ciphertext.clone(),
    }
}

fn share_of(s: v1::EncryptedShare) -> secagg::EncryptedShare {
    secagg::EncryptedShare {
        sender: s.sender,
        recipient: s.recipient,
        ciphertext: s.ciphertext,
    }
}

impl From<&SecureTask> for v1::secure_step_request::Task {
    fn from(task: &SecureTask) -> Self {
        use v1::secure_step_request::Task;
        match task {
            SecureTask::AdvertiseKeys { params } => Task::AdvertiseKeys(params.into()),
            SecureTask::ShareKeys { directory } => Task::ShareKeys(v1::KeyDirectory {
                round_id: directory.round_id,
                recipient: directory.recipient,
                keys: directory.keys.iter().map(Into::into).collect(),
            }),
            SecureTask::MaskInput { delivery } => Task::MaskInput(v1::ShareDelivery {
                round_id: delivery.round_id,
                recipient: delivery.recipient,
                shares: delivery.shares.iter().map(share_message).collect(),
            }),
            SecureTask::Unmask { request } => Task::Unmask(v1::UnmaskingRequest {
                round_id: request.round_id,
                survivors: request.survivors.clone(),
            }),
        }
    }
}

impl TryFrom<v1::secure_step_request::Task> for SecureTask {
    type Error = WireError;

    fn try_from(task: v1::secure_step_request::Task) -> Result<Self, WireError> {
        use v1::secure_step_request::Task;
        Ok(match task {
            Task::AdvertiseKeys(params) => SecureTask::AdvertiseKeys {
                params: params.try_into()?,
            },
            Task::ShareKeys(d) => SecureTask::ShareKeys {
                directory: secagg::KeyDirectory {
                    round_id: d.round_id,
                    recipient: d.recipient,
                    keys: d
                        .keys
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                },
            },
            Task::MaskInput(d) => SecureTask::MaskInput {
                delivery: secagg::ShareDelivery {
                    round_id: d.round_id,
                    recipient: d.recipient,
                    shares: d.shares.into_iter().map(share_of).collect(),
                },
            },
            Task::Unmask(r) => SecureTask::Unmask {
                request: secagg::UnmaskingRequest {
                    round_id: r.round_id,
                    survivors: r.survivors,
                },
            },
        })
    }
}

fn share_kind(kind: secagg::ShareKind) -> v1::ShareKind {
    match kind {
        secagg::ShareKind::SelfMaskSeed => v1::ShareKind::SelfMaskSeed,
        secagg::ShareKind::MaskSecretKey => v1::ShareKind::MaskSecretKey,
    }
}

fn share_kind_of(kind: i32) -> Result<secagg::ShareKind, WireError> {
    match v1::ShareKind::try_from(kind) {
        Ok(v1::ShareKind::SelfMaskSeed) => Ok(secagg::ShareKind::SelfMaskSeed),
        Ok(v1::ShareKind::MaskSecretKey) => Ok(secagg::ShareKind::MaskSecretKey),
        Ok(v1::ShareKind::Unspecified) | Err(_) => Err(invalid(
            "revealed share kind",
            format!("{kind} is not a share kind"),
        )),
    }
}

impl From<&SecureMessage> for v1::secure_submission::Message {
    fn from(message: &SecureMessage) -> Self {
        use v1::secure_submission::Message;
        match message {
            SecureMessage::AdvertiseKeys(k) => Message::AdvertiseKeys(k.into()),
            SecureMessage::ShareKeys(k) => Message::ShareKeys(v1::SharedKeys {
                round_id: k.round_id,
                sender: k.sender,
                shares: k.shares.iter().map(share_message).collect(),
            }),
            SecureMessage::MaskedInput(m) => Message::MaskedInput(v1::MaskedInput {
                round_id: m.round_id,
                sender: m.sender,
                words: m.words.clone(),
            }),
            SecureMessage::Unmasking(u) => Message::Unmasking(v1::UnmaskingResponse {
                round_id: u.round_id,
                sender: u.sender,
                shares: u
                    .shares
                    .iter()
                    .map(|s| v1::RevealedShare {
                        owner: s.owner,
                        kind: share_kind(s.kind).into(),
                        share: s.share.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

impl TryFrom<v1::secure_submission::Message> for SecureMessage {
    type Error = WireError;

    fn try_from(message: v1::secure_submission::Message) -> Result<Self, WireError> {
        use v1::secure_submission::Message;
        Ok(match message {
            Message::AdvertiseKeys(k) => SecureMessage::AdvertiseKeys(k.try_into()?),
            Message::ShareKeys(k) => SecureMessage::ShareKeys(secagg::ShareKeys {
                round_id: k.round_id,
                sender: k.sender,
                shares: k.shares.into_iter().map(share_of).collect(),
            }),
            Message::MaskedInput(m) => SecureMessage::MaskedInput(secagg::MaskedInput {
                round_id: m.round_id,
                sender: m.sender,
                words: m.words,
            }),
            Message::Unmasking(u) => SecureMessage::Unmasking(secagg::UnmaskingResponse {
                round_id: u.round_id,
                sender: u.sender,
                shares: u
                    .shares
                    .into_iter()
                    .map(|s| {
                        Ok(secagg::RevealedShare {
                            owner: s.owner,
                            kind: share_kind_of(s.kind)?,
                            share: s.share,
                        })
                    })
                    .collect::<Result<_, WireError>>()?,
            }),
        })
    }
}
