//! Canonical encoding of statements: `kind (u8) || version (u8) || fields`,
//! fields in declaration order (see `docs/ledger.md` for the table).

use super::codec::{Decoder, Encoder};
use super::error::{DecodeError, ValueError};
use super::ids::PartyId;
use super::public_key::PublicKey;
use super::statement::*;
use super::values::{
    Delta, Epsilon, MetricKind, Number, ObjectionReason, PhiCategory, RevocationReason, Role,
    SampleBucket, Strategy, TextKind, Weight,
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
            Self::DatasetPrepared(s) => put_dataset(&mut e, s),
            Self::TextDatasetPrepared(s) => {
                put_dataset(&mut e, &s.dataset);
                e.list(s.text.documents(), |e, c| {
                    e.u8(c.kind.code());
                    e.u32(c.count);
                });
                e.list(s.text.removed(), |e, c| {
                    e.u8(c.kind.code());
                    e.u32(c.count);
                });
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
        if (kind, version) == (13, 2) {
            return Ok(Self::TextDatasetPrepared(TextDatasetPrepared {
                dataset: get_dataset(d)?,
                text: {
                    let documents = d.list(|d| get_count(d, TextKind::from_code))?;
                    let removed = d.list(|d| get_count(d, PhiCategory::from_code))?;
                    check_canonical_counts("text documents", &documents)?;
                    check_canonical_counts("removed spans", &removed)?;
                    TextPrepared::new(documents, removed)?
                },
            }));
        }
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
            13 => Self::DatasetPrepared(get_dataset(d)?),
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

fn put_dataset(e: &mut Encoder, s: &DatasetPrepared) {
    e.hash(&s.plan);
    e.hash(&s.registration);
    e.u64(s.records.value());
    e.u32(s.excluded_by_consent);
    e.u32(s.incomplete);
}

fn get_dataset(d: &mut Decoder<'_>) -> Result<DatasetPrepared, DecodeError> {
    Ok(DatasetPrepared {
        plan: d.hash()?,
        registration: d.hash()?,
        records: SampleBucket::from_value(d.u64()?)?,
        excluded_by_consent: d.u32()?,
        incomplete: d.u32()?,
    })
}

fn get_count<K>(
    d: &mut Decoder<'_>,
    kind: impl Fn(u8) -> Result<K, DecodeError>,
) -> Result<TextCount<K>, DecodeError> {
    Ok(TextCount {
        kind: kind(d.u8()?)?,
        count: d.u32()?,
    })
}

/// Text counts arrive sorted by code, without repeats or zeros (the one
/// encoding [`TextPrepared::new`] would give them).
fn check_canonical_counts<K: Ord + Copy>(
    what: &'static str,
    counts: &[TextCount<K>],
) -> Result<(), DecodeError> {
    if counts.iter().any(|c| c.count == 0) {
        return Err(DecodeError::ZeroCount(what));
    }
    check_sorted(what, counts, |c| c.kind)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    fn dataset() -> DatasetPrepared {
        DatasetPrepared {
            plan: Hash::of_bytes(b"plan"),
            registration: Hash::of_bytes(b"registration"),
            records: SampleBucket::of(1_234).unwrap(),
            excluded_by_consent: 17,
            incomplete: 3,
        }
    }

    fn text() -> TextPrepared {
        TextPrepared::new(
            vec![
                TextCount {
                    kind: TextKind::Transcript,
                    count: 12,
                },
                TextCount {
                    kind: TextKind::Note,
                    count: 340,
                },
                TextCount {
                    kind: TextKind::CompositionSection,
                    count: 0,
                },
            ],
            vec![
                TextCount {
                    kind: PhiCategory::Date,
                    count: 2_100,
                },
                TextCount {
                    kind: PhiCategory::Name,
                    count: 905,
                },
                TextCount {
                    kind: PhiCategory::Nir,
                    count: 4,
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn text_counts_round_trip_as_version_2_of_the_dataset_statement() {
        let statement = Statement::TextDatasetPrepared(TextDatasetPrepared {
            dataset: dataset(),
            text: text(),
        });
        assert_eq!(statement.kind_code(), (13, 2));
        let bytes = statement.encode();
        let decoded = Statement::decode(&bytes).unwrap();
        assert_eq!(decoded, statement);
        assert_eq!(decoded.encode(), bytes);
        assert_eq!(decoded.dataset_prepared(), Some(&dataset()));
        // Version 1's fields, then the two lists: kinds 1 and 2 (zero left out), then
        // categories name (1), date (2), NIR (14), each with a u32 count.
        let v1 = Statement::DatasetPrepared(dataset()).encode();
        assert_eq!(bytes[..2], [13, 2]);
        assert_eq!(bytes[2..v1.len()], v1[2..]);
        let mut lists = vec![0, 2, 1, 0, 0, 1, 84, 2, 0, 0, 0, 12];
        lists.extend([0, 3, 1, 0, 0, 3, 137, 2, 0, 0, 8, 52, 14, 0, 0, 0, 4]);
        assert_eq!(bytes[v1.len()..], lists);
    }

    #[test]
    fn version_1_dataset_statements_still_decode_as_signed() {
        let v1 = Statement::DatasetPrepared(dataset());
        let bytes = v1.encode();
        assert_eq!(bytes[..2], [13, 1]);
        assert_eq!(Statement::decode(&bytes).unwrap(), v1);
        assert_eq!(v1.dataset_prepared(), Some(&dataset()));
        // A version 1 entry followed by text counts is not a version 1 entry.
        let text = Statement::TextDatasetPrepared(TextDatasetPrepared {
            dataset: dataset(),
            text: text(),
        })
        .encode();
        let mut relabelled = text.clone();
        relabelled[1] = 1;
        assert!(matches!(
            Statement::decode(&relabelled),
            Err(DecodeError::TrailingBytes(_))
        ));
        let mut future = text;
        future[1] = 3;
        assert_eq!(
            Statement::decode(&future),
            Err(DecodeError::UnknownStatement {
                kind: 13,
                version: 3
            })
        );
    }

    #[test]
    fn text_counts_have_one_encoding() {
        let statement = Statement::TextDatasetPrepared(TextDatasetPrepared {
            dataset: dataset(),
            text: text(),
        });
        let bytes = statement.encode();
        let lists = Statement::DatasetPrepared(dataset()).encode().len();
        // The categories' list starts after the kinds' (2 + 2 x 5 bytes).
        let removed = lists + 12;
        let mut unsorted = bytes.clone();
        unsorted[removed + 2] = 2;
        unsorted[removed + 7] = 1;
        assert_eq!(
            Statement::decode(&unsorted),
            Err(DecodeError::NotCanonicalOrder("removed spans"))
        );
        let mut zero = bytes.clone();
        zero[removed + 3..removed + 7].copy_from_slice(&[0; 4]);
        assert_eq!(
            Statement::decode(&zero),
            Err(DecodeError::ZeroCount("removed spans"))
        );
        let mut unknown = bytes.clone();
        unknown[removed + 12] = 99;
        assert!(matches!(
            Statement::decode(&unknown),
            Err(DecodeError::UnknownCode {
                what: "PHI category",
                code: 99
            })
        ));
        assert!(Statement::decode(&bytes[..bytes.len() - 1]).is_err());
        let twice = TextPrepared::new(
            vec![],
            vec![
                TextCount {
                    kind: PhiCategory::Name,
                    count: 1,
                },
                TextCount {
                    kind: PhiCategory::Name,
                    count: 2,
                },
            ],
        );
        assert!(twice.is_err());
    }

    #[test]
    fn categories_are_named_as_the_text_de_identifier_tags_them() {
        for tag in [
            "NAME", "DATE", "AGE", "PHONE", "EMAIL", "URL", "IP", "ADDRESS", "ZIP", "CITY",
            "HOSPITAL", "IPP", "NDA", "NIR", "SSN", "MRN", "ACCOUNT", "ID",
        ] {
            let category = PhiCategory::from_name(&tag.to_ascii_lowercase()).unwrap();
            assert_eq!(category.name().to_ascii_uppercase(), tag);
        }
        assert_eq!(PhiCategory::ALL.len(), 18);
        assert_eq!(
            TextKind::from_name("composition-section"),
            Some(TextKind::CompositionSection)
        );
    }
}
