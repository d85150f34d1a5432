//! Canonical encoding of statements: `kind (u8) || version (u8) || fields`,
//! fields in declaration order (see `docs/ledger.md` for the table).

use super::codec::{Decoder, Encoder};
use super::error::{DecodeError, ValueError};
use super::ids::PartyId;
use super::public_key::PublicKey;
use super::statement::*;
use super::values::{
    Delta, Epsilon, MetricKind, Number, ObjectionReason, RevocationReason, Role, SampleBucket,
    Strategy, Weight,
};

impl Statement {
    /// The canonical bytes of the statement.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        let (kind, version) = self.kind_code();
        e.u8(kind);
        e.u8(version);
        match self {
            Self::Genesis(s) => {
                e.list(s.parties(), put_party_key);
                put_witness_policy(&mut e, &s.witnesses);
            }
            Self::PolicyUpdate(s) => put_witness_policy(&mut e, &s.witnesses),
            Self::KeyEnrolled(s) => put_party_key(&mut e, &s.enrolled),
            Self::KeyRotated(s) => {
                e.short_str(s.party.as_str());
                e.raw(&s.new_key.to_bytes());
            }
            Self::KeyRevoked(s) => {
                e.short_str(s.party.as_str());
                e.u8(s.reason.code());
            }
            Self::PlanRegistered(s) => {
                e.hash(&s.plan);
                e.hash(&s.code_hash);
                e.hash(&s.hyperparameters_hash);
                e.u8(s.strategy.code());
                e.u32(s.rounds);
                e.u64(s.dp_budget.epsilon.micro());
                e.u64(s.dp_budget.delta.to_bits());
                e.list(s.eligible.parties(), |e, p| e.short_str(p.as_str()));
            }
            Self::PlanApproved(s) => {
                e.hash(&s.plan);
                e.hash(&s.registration);
            }
            Self::RoundOpened(s) => {
                e.hash(&s.plan);
                e.u32(s.round);
                e.hash(&s.input_model);
            }
            Self::Contribution(s) => {
                e.hash(&s.plan);
                e.u32(s.round);
                e.hash(&s.update_hash);
                e.u64(s.samples.value());
                e.list(s.metrics.as_slice(), |e, m| {
                    e.u8(m.kind.code());
                    e.u64(m.value.to_bits());
                });
                e.u64(s.epsilon_round.micro());
                e.u64(s.epsilon_total.micro());
                e.hash(&s.code_hash);
            }
            Self::RoundAggregated(s) => {
                e.hash(&s.plan);
                e.u32(s.round);
                e.list(&s.consumed, |e, c| {
                    e.hash(&c.contribution);
                    e.u32(c.weight.ppb());
                });
                e.hash(&s.output_model);
            }
            Self::ModelReleased(s) => {
                e.hash(&s.plan);
                e.hash(&s.model);
            }
            Self::Objection(s) => {
                e.hash(&s.entry);
                e.u8(s.reason.code());
            }
            Self::DatasetPrepared(s) => {
                e.hash(&s.plan);
                e.hash(&s.registration);
                e.u64(s.records.value());
                e.u32(s.excluded_by_consent);
                e.u32(s.incomplete);
            }
        }
        e.finish()
    }

    /// Decode canonical bytes (all of them).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let statement = Self::read(&mut d)?;
        d.finish()?;
        Ok(statement)
    }

    /// Read one statement from the front of a decoder.
    pub(crate) fn read(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let kind = d.u8()?;
        let version = d.u8()?;
        if version != 1 {
            return Err(DecodeError::UnknownStatement { kind, version });
        }
        Ok(match kind {
            1 => {
                let parties = d.list(get_party_key)?;
                let witnesses = get_witness_policy(d)?;
                check_sorted("genesis parties", &parties, |p| p.party.clone())?;
                Self::Genesis(Genesis::new(parties, witnesses)?)
            }
            2 => Self::PolicyUpdate(PolicyUpdate {
                witnesses: get_witness_policy(d)?,
            }),
            3 => Self::KeyEnrolled(KeyEnrolled {
                enrolled: get_party_key(d)?,
            }),
            4 => Self::KeyRotated(KeyRotated {
                party: get_party(d)?,
                new_key: get_public_key(d)?,
            }),
            5 => Self::KeyRevoked(KeyRevoked {
                party: get_party(d)?,
                reason: RevocationReason::from_code(d.u8()?)?,
            }),
            6 => Self::PlanRegistered(PlanRegistered {
                plan: d.hash()?,
                code_hash: d.hash()?,
                hyperparameters_hash: d.hash()?,
                strategy: Strategy::from_code(d.u8()?)?,
                rounds: d.u32()?,
                dp_budget: DpBudget {
                    epsilon: Epsilon::from_micro(d.u64()?),
                    delta: Delta::from_bits(d.u64()?)?,
                },
                eligible: {
                    let parties = d.list(get_party)?;
                    check_sorted("party set", &parties, Clone::clone)?;
                    PartySet::new(parties)?
                },
            }),
            7 => Self::PlanApproved(PlanApproved {
                plan: d.hash()?,
                registration: d.hash()?,
            }),
            8 => Self::RoundOpened(RoundOpened {
                plan: d.hash()?,
                round: d.u32()?,
                input_model: d.hash()?,
            }),
            9 => Self::Contribution(Contribution {
                plan: d.hash()?,
                round: d.u32()?,
                update_hash: d.hash()?,
                samples: SampleBucket::from_value(d.u64()?)?,
                metrics: {
                    let metrics = d.list(|d| {
                        Ok(Metric {
                            kind: MetricKind::from_code(d.u8()?)?,
                            value: Number::from_bits(d.u64()?)?,
                        })
                    })?;
                    check_sorted("metrics", &metrics, |m| m.kind)?;
                    Metrics::new(metrics)?
                },
                epsilon_round: Epsilon::from_micro(d.u64()?),
                epsilon_total: Epsilon::from_micro(d.u64()?),
                code_hash: d.hash()?,
            }),
            10 => Self::RoundAggregated(RoundAggregated {
                plan: d.hash()?,
                round: d.u32()?,
                consumed: d.list(|d| {
                    let contribution = d.hash()?;
                    let ppb = d.u32()?;
                    let weight = Weight::from_ppb(ppb).ok_or(ValueError::Weight(ppb))?;
                    Ok(Consumed {
                        contribution,
                        weight,
                    })
                })?,
                output_model: d.hash()?,
            }),
            11 => Self::ModelReleased(ModelReleased {
                plan: d.hash()?,
                model: d.hash()?,
            }),
            12 => Self::Objection(Objection {
                entry: d.hash()?,
                reason: ObjectionReason::from_code(d.u8()?)?,
            }),
            13 => Self::DatasetPrepared(DatasetPrepared {
                plan: d.hash()?,
                registration: d.hash()?,
                records: SampleBucket::from_value(d.u64()?)?,
                excluded_by_consent: d.u32()?,
                incomplete: d.u32()?,
            }),
            _ => return Err(DecodeError::UnknownStatement { kind, version }),
        })
    }
}

/// Sets must arrive in canonical (strictly increasing) order; the
/// constructors would silently sort them otherwise.
fn check_sorted<T, K: Ord>(
    what: &'static str,
    items: &[T],
    key: impl Fn(&T) -> K,
) -> Result<(), DecodeError> {
    if items.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        Ok(())
    } else {
        Err(DecodeError::NotCanonicalOrder(what))
    }
}

fn put_party_key(e: &mut Encoder, p: &PartyKey) {
    e.short_str(p.party.as_str());
    e.u8(p.role.code());
    e.raw(&p.key.to_bytes());
}

fn get_party_key(d: &mut Decoder<'_>) -> Result<PartyKey, DecodeError> {
    Ok(PartyKey {
        party: get_party(d)?,
        role: Role::from_code(d.u8()?)?,
        key: get_public_key(d)?,
    })
}

fn put_witness_policy(e: &mut Encoder, w: &WitnessPolicy) {
    e.list(w.witnesses(), |e, w| {
        e.short_str(w.party.as_str());
        e.raw(&w.key.to_bytes());
    });
    e.u16(w.quorum());
}

fn get_witness_policy(d: &mut Decoder<'_>) -> Result<WitnessPolicy, DecodeError> {
    let witnesses = d.list(|d| {
        Ok(WitnessKey {
            party: get_party(d)?,
            key: get_public_key(d)?,
        })
    })?;
    check_sorted("witnesses", &witnesses, |w| w.party.clone())?;
    Ok(WitnessPolicy::new(witnesses, d.u16()?)?)
}

pub(crate) fn get_party(d: &mut Decoder<'_>) -> Result<PartyId, DecodeError> {
    Ok(PartyId::new(d.short_str()?)?)
}

fn get_public_key(d: &mut Decoder<'_>) -> Result<PublicKey, DecodeError> {
    Ok(PublicKey::from_bytes(&d.array32()?)?)
}
