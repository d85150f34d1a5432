//! What entries state. Every field is a hash, a count, a number, a code from
//! a fixed table or a validated party identifier: the schema has no place for
//! free text, so no patient data can be written into the log through it.
//!
//! Each variant is one version of its statement kind (version 1, except
//! [`TextDatasetPrepared`], version 2 of `DatasetPrepared`). A format is never
//! rewritten: a changed statement becomes a new variant with a new version
//! (see [`Statement::kind_code`]).

use super::error::ValueError;
use super::ids::PartyId;
use super::public_key::PublicKey;
use super::values::{
    Delta, Epsilon, MetricKind, Number, ObjectionReason, PhiCategory, RevocationReason, Role,
    SampleBucket, Strategy, TextKind, Weight,
};
use crate::hash::Hash;

/// Most items in any list of an entry.
pub const MAX_LIST_LEN: usize = 1024;

fn check_len(what: &'static str, len: usize) -> Result<(), ValueError> {
    if len > MAX_LIST_LEN {
        return Err(ValueError::ListTooLong {
            what,
            len,
            max: MAX_LIST_LEN,
        });
    }
    Ok(())
}

/// Sort by `key` and reject repeated keys.
fn sorted_unique<T, K: Ord>(
    what: &'static str,
    mut items: Vec<T>,
    key: impl Fn(&T) -> K,
) -> Result<Vec<T>, ValueError> {
    check_len(what, items.len())?;
    items.sort_by_key(|item| key(item));
    if items.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
        return Err(ValueError::Duplicate(what));
    }
    Ok(items)
}

/// A party's role and signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyKey {
    /// The party.
    pub party: PartyId,
    /// What it may do.
    pub role: Role,
    /// Its Ed25519 key.
    pub key: PublicKey,
}

/// A witness: the hospital that runs it and its cosigning key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessKey {
    /// The hospital running the witness.
    pub party: PartyId,
    /// Its Ed25519 cosigning key (C2SP tlog-cosignature, type 0x04).
    pub key: PublicKey,
}

/// The witnesses of the log and how many must cosign a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<WitnessKey>,
    quorum: u16,
}

impl WitnessPolicy {
    /// A policy: witnesses (one per party), and a quorum between 1 and their number.
    pub fn new(witnesses: Vec<WitnessKey>, quorum: u16) -> Result<Self, ValueError> {
        let witnesses = sorted_unique("witnesses", witnesses, |w| w.party.clone())?;
        if quorum == 0 || usize::from(quorum) > witnesses.len() {
            return Err(ValueError::Quorum {
                quorum,
                witnesses: witnesses.len(),
            });
        }
        Ok(Self { witnesses, quorum })
    }

    /// The witnesses, sorted by party.
    pub fn witnesses(&self) -> &[WitnessKey] {
        &self.witnesses
    }

    /// Cosignatures a checkpoint needs.
    pub fn quorum(&self) -> u16 {
        self.quorum
    }
}

/// A set of parties, sorted, without repetition, not empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartySet(Vec<PartyId>);

impl PartySet {
    /// Sort and check a set of parties.
    pub fn new(parties: Vec<PartyId>) -> Result<Self, ValueError> {
        if parties.is_empty() {
            return Err(ValueError::Empty("party set"));
        }
        Ok(Self(sorted_unique("party set", parties, Clone::clone)?))
    }

    /// The parties, sorted.
    pub fn parties(&self) -> &[PartyId] {
        &self.0
    }

    /// Whether `party` is a member.
    pub fn contains(&self, party: &PartyId) -> bool {
        self.0.binary_search(party).is_ok()
    }
}

/// One metric value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Which metric.
    pub kind: MetricKind,
    /// Its value.
    pub value: Number,
}

/// A contribution's metrics, one per kind, sorted by kind.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Metrics(Vec<Metric>);

impl Metrics {
    /// Sort and check metrics.
    pub fn new(metrics: Vec<Metric>) -> Result<Self, ValueError> {
        Ok(Self(sorted_unique("metrics", metrics, |m| m.kind)?))
    }

    /// The metrics, sorted by kind.
    pub fn as_slice(&self) -> &[Metric] {
        &self.0
    }

    /// The value of one metric.
    pub fn get(&self, kind: MetricKind) -> Option<f64> {
        self.0
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.value.get())
    }
}

/// The first entry: who is in the federation and who witnesses the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    parties: Vec<PartyKey>,
    /// The initial witness policy.
    pub witnesses: WitnessPolicy,
}

impl Genesis {
    /// The founding parties (one key each) and witness policy.
    pub fn new(parties: Vec<PartyKey>, witnesses: WitnessPolicy) -> Result<Self, ValueError> {
        if parties.is_empty() {
            return Err(ValueError::Empty("genesis parties"));
        }
        let parties = sorted_unique("genesis parties", parties, |p| p.party.clone())?;
        Ok(Self { parties, witnesses })
    }

    /// The founding parties, sorted.
    pub fn parties(&self) -> &[PartyKey] {
        &self.parties
    }
}

/// A new witness policy, in force from this entry on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyUpdate {
    /// The new policy.
    pub witnesses: WitnessPolicy,
}

/// A party joins with a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEnrolled {
    /// The party, its role and key.
    pub enrolled: PartyKey,
}

/// A party replaces its key (signed with the old key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRotated {
    /// The party.
    pub party: PartyId,
    /// Its key from the next entry on.
    pub new_key: PublicKey,
}

/// A party's key stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRevoked {
    /// The party.
    pub party: PartyId,
    /// Why.
    pub reason: RevocationReason,
}

/// A plan's differential-privacy budget per hospital.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpBudget {
    /// Most epsilon a hospital may spend on the plan, all rounds together.
    pub epsilon: Epsilon,
    /// The delta of the guarantee.
    pub delta: Delta,
}

/// A training plan is proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRegistered {
    /// The plan's id (SHA-256 of its canonical description).
    pub plan: Hash,
    /// Hash of the algorithm's code that hospitals must run.
    pub code_hash: Hash,
    /// Hash of the hyper-parameters.
    pub hyperparameters_hash: Hash,
    /// Aggregation rule.
    pub strategy: Strategy,
    /// Number of rounds planned.
    pub rounds: u32,
    /// Privacy budget per hospital.
    pub dp_budget: DpBudget,
    /// Hospitals invited to take part.
    pub eligible: PartySet,
}

/// A hospital approves a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanApproved {
    /// The plan's id.
    pub plan: Hash,
    /// Entry hash of the `PlanRegistered` entry approved.
    pub registration: Hash,
}

/// A hospital has prepared its training table for a plan. Only counts: how
/// many rows it trains on (bucketed, as contributions are), and how many
/// patients it left out because their consent denies research or AI-training
/// use, or for missing data; never who.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetPrepared {
    /// The plan's id.
    pub plan: Hash,
    /// Entry hash of the plan's `PlanRegistered` entry.
    pub registration: Hash,
    /// Rows in the training table, bucketed.
    pub records: SampleBucket,
    /// Patients left out because their consent denies the use (a count).
    pub excluded_by_consent: u32,
    /// Patients left out for missing data (a count).
    pub incomplete: u32,
}

/// A hospital has prepared de-identified free text for a plan (version 2 of
/// `DatasetPrepared`): the dataset counts, and what the text gate let out and
/// removed, in numbers only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextDatasetPrepared {
    /// The counts every dataset statement has.
    pub dataset: DatasetPrepared,
    /// The free text's counts.
    pub text: TextPrepared,
}

/// One count of a [`TextPrepared`] list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextCount<K> {
    /// What is counted.
    pub kind: K,
    /// How many.
    pub count: u32,
}

/// Documents let out per kind and spans of protected health information
/// removed per category: counts, never text. Kinds and categories with a zero
/// count are left out; each list is sorted by code, without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextPrepared {
    documents: Vec<TextCount<TextKind>>,
    removed: Vec<TextCount<PhiCategory>>,
}

impl TextPrepared {
    /// Sort and check the counts (zero counts dropped).
    pub fn new(
        documents: Vec<TextCount<TextKind>>,
        removed: Vec<TextCount<PhiCategory>>,
    ) -> Result<Self, ValueError> {
        let documents = documents.into_iter().filter(|c| c.count > 0).collect();
        let removed = removed.into_iter().filter(|c| c.count > 0).collect();
        Ok(Self {
            documents: sorted_unique("text documents", documents, |c| c.kind)?,
            removed: sorted_unique("removed spans", removed, |c| c.kind)?,
        })
    }

    /// Documents per kind, sorted.
    pub fn documents(&self) -> &[TextCount<TextKind>] {
        &self.documents
    }

    /// Spans removed per category, sorted.
    pub fn removed(&self) -> &[TextCount<PhiCategory>] {
        &self.removed
    }

    /// Documents of every kind.
    pub fn total_documents(&self) -> u64 {
        self.documents.iter().map(|c| u64::from(c.count)).sum()
    }

    /// Spans removed, every category.
    pub fn total_removed(&self) -> u64 {
        self.removed.iter().map(|c| u64::from(c.count)).sum()
    }
}

/// A round starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundOpened {
    /// The plan's id.
    pub plan: Hash,
    /// Round number, from 1.
    pub round: u32,
    /// Hash of the global model the round starts from.
    pub input_model: Hash,
}

/// A hospital's update for a round (signed by the hospital).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution {
    /// The plan's id.
    pub plan: Hash,
    /// The round.
    pub round: u32,
    /// Hash of the (masked or clear) model update sent.
    pub update_hash: Hash,
    /// Sample count, bucketed.
    pub samples: SampleBucket,
    /// Local metrics.
    pub metrics: Metrics,
    /// Epsilon spent in this round.
    pub epsilon_round: Epsilon,
    /// Epsilon spent on this plan so far, this round included.
    pub epsilon_total: Epsilon,
    /// Hash of the code actually run.
    pub code_hash: Hash,
}

/// One contribution consumed by an aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumed {
    /// Entry hash of the `Contribution` entry.
    pub contribution: Hash,
    /// Its weight in the aggregate.
    pub weight: Weight,
}

/// A round ends with an aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundAggregated {
    /// The plan's id.
    pub plan: Hash,
    /// The round.
    pub round: u32,
    /// The contributions consumed, with their weights.
    pub consumed: Vec<Consumed>,
    /// Hash of the resulting global model.
    pub output_model: Hash,
}

/// A model is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelReleased {
    /// The plan's id.
    pub plan: Hash,
    /// Hash of the released model.
    pub model: Hash,
}

/// A party objects to an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Objection {
    /// Entry hash of the entry objected to.
    pub entry: Hash,
    /// Why, as a code.
    pub reason: ObjectionReason,
}

/// A statement of the log (each variant is version 1 of its kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// See [`Genesis`].
    Genesis(Genesis),
    /// See [`PolicyUpdate`].
    PolicyUpdate(PolicyUpdate),
    /// See [`KeyEnrolled`].
    KeyEnrolled(KeyEnrolled),
    /// See [`KeyRotated`].
    KeyRotated(KeyRotated),
    /// See [`KeyRevoked`].
    KeyRevoked(KeyRevoked),
    /// See [`PlanRegistered`].
    PlanRegistered(PlanRegistered),
    /// See [`PlanApproved`].
    PlanApproved(PlanApproved),
    /// See [`RoundOpened`].
    RoundOpened(RoundOpened),
    /// See [`Contribution`].
    Contribution(Contribution),
    /// See [`RoundAggregated`].
    RoundAggregated(RoundAggregated),
    /// See [`ModelReleased`].
    ModelReleased(ModelReleased),
    /// See [`Objection`].
    Objection(Objection),
    /// See [`DatasetPrepared`].
    DatasetPrepared(DatasetPrepared),
    /// See [`TextDatasetPrepared`].
    TextDatasetPrepared(TextDatasetPrepared),
}

impl Statement {
    /// The kind's name, for reports.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Genesis(_) => "Genesis",
            Self::PolicyUpdate(_) => "PolicyUpdate",
            Self::KeyEnrolled(_) => "KeyEnrolled",
            Self::KeyRotated(_) => "KeyRotated",
            Self::KeyRevoked(_) => "KeyRevoked",
            Self::PlanRegistered(_) => "PlanRegistered",
            Self::PlanApproved(_) => "PlanApproved",
            Self::RoundOpened(_) => "RoundOpened",
            Self::Contribution(_) => "Contribution",
            Self::RoundAggregated(_) => "RoundAggregated",
            Self::ModelReleased(_) => "ModelReleased",
            Self::Objection(_) => "Objection",
            Self::DatasetPrepared(_) => "DatasetPrepared",
            Self::TextDatasetPrepared(_) => "TextDatasetPrepared",
        }
    }

    /// The wire `(kind, version)` codes: kinds 1 to 13 in the order of the
    /// variants, at version 1; [`TextDatasetPrepared`] is kind 13 (a dataset
    /// statement) at version 2.
    pub fn kind_code(&self) -> (u8, u8) {
        let kind = match self {
            Self::Genesis(_) => 1,
            Self::PolicyUpdate(_) => 2,
            Self::KeyEnrolled(_) => 3,
            Self::KeyRotated(_) => 4,
            Self::KeyRevoked(_) => 5,
            Self::PlanRegistered(_) => 6,
            Self::PlanApproved(_) => 7,
            Self::RoundOpened(_) => 8,
            Self::Contribution(_) => 9,
            Self::RoundAggregated(_) => 10,
            Self::ModelReleased(_) => 11,
            Self::Objection(_) => 12,
            Self::DatasetPrepared(_) => 13,
            Self::TextDatasetPrepared(_) => return (13, 2),
        };
        (kind, 1)
    }

    /// The dataset counts of a `DatasetPrepared` statement, either version.
    pub fn dataset_prepared(&self) -> Option<&DatasetPrepared> {
        match self {
            Self::DatasetPrepared(d) => Some(d),
            Self::TextDatasetPrepared(t) => Some(&t.dataset),
            _ => None,
        }
    }

    /// Which roles may author this statement (before any further rule of the
    /// auditor): the coordinator runs the federation, hospitals approve,
    /// prepare their data and contribute, anyone enrolled may object. A key rotation or revocation by
    /// the party itself is also allowed (see the registry).
    pub fn authorised_roles(&self) -> &'static [Role] {
        match self {
            Self::Genesis(_)
            | Self::PolicyUpdate(_)
            | Self::KeyEnrolled(_)
            | Self::PlanRegistered(_)
            | Self::RoundOpened(_)
            | Self::RoundAggregated(_)
            | Self::ModelReleased(_) => &[Role::Coordinator],
            Self::PlanApproved(_)
            | Self::DatasetPrepared(_)
            | Self::TextDatasetPrepared(_)
            | Self::Contribution(_) => &[Role::Hospital],
            Self::KeyRotated(_) => &[],
            Self::KeyRevoked(_) => &[Role::Coordinator],
            Self::Objection(_) => &[Role::Coordinator, Role::Hospital, Role::Auditor],
        }
    }
}
