//! The ledger statements of a plan's operations, built from fed's own types.
//!
//! Nodes build and sign the statements they author (PlanApproved,
//! Contribution); the coordinator builds its own (PlanRegistered, RoundOpened,
//! RoundAggregated, ModelReleased). [`expected_entries`] derives the whole
//! ordered list from a [`PlanState`]: Ed25519 signatures are deterministic and
//! hospitals' entries are kept in the state, so the coordinator can rebuild
//! exactly what the log must hold after a restart.

use ed25519_dalek::SigningKey;
use ledger::entry::{
    Consumed, Contribution, Delta, DpBudget, Epsilon, LogOrigin, Metric, MetricKind, Metrics,
    ModelReleased, Number, PartyId, PartySet, PlanApproved, PlanRegistered, RoundAggregated,
    RoundOpened, SampleBucket, SignedEntry, Statement, Strategy, ValueError, Weight,
};
use ledger::hash::Hash;

use crate::plan::TrainingPlan;
use crate::plan_run::{Phase, PlanState};

/// Why a statement could not be built or checked.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A value does not fit the ledger's schema.
    #[error("ledger value: {0}")]
    Value(#[from] ValueError),
    /// A hash is not 64 hex digits.
    #[error("not a SHA-256 hex digest: {0:?}")]
    Hash(String),
    /// An entry does not say what it should.
    #[error("{0}")]
    Mismatch(String),
}

/// A SHA-256 given in hex as a ledger hash.
pub fn hash_from_hex(hex_digest: &str) -> Result<Hash, RecordError> {
    let bytes = hex::decode(hex_digest).map_err(|_| RecordError::Hash(hex_digest.into()))?;
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| RecordError::Hash(hex_digest.into()))?;
    Ok(Hash(array))
}

/// The ledger's name for a plan's strategy.
fn strategy(plan: &TrainingPlan) -> Result<Strategy, RecordError> {
    Strategy::from_name(plan.strategy.name()).ok_or_else(|| {
        RecordError::Mismatch(format!("no ledger code for {}", plan.strategy.name()))
    })
}

/// The PlanRegistered statement of a plan.
pub fn registration(plan: &TrainingPlan) -> Result<PlanRegistered, RecordError> {
    let hyperparameters = serde_json::to_vec(&(&plan.training, &plan.strategy, plan.rounds))
        .expect("plan parts serialise");
    let (epsilon, delta) = match plan.privacy_budget {
        Some(b) => (Epsilon::from_f64_ceil(b.epsilon)?, Delta::new(b.delta)?),
        None => (Epsilon::from_micro(0), Delta::new(1e-5)?),
    };
    let eligible = plan
        .hospitals
        .iter()
        .map(|h| PartyId::new(h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PlanRegistered {
        plan: hash_from_hex(&plan.plan_id())?,
        code_hash: hash_from_hex(&plan.code_hash())?,
        hyperparameters_hash: Hash::of_bytes(&hyperparameters),
        strategy: strategy(plan)?,
        rounds: plan.rounds,
        dp_budget: DpBudget { epsilon, delta },
        eligible: PartySet::new(eligible)?,
    })
}

/// A hospital's approval of a registered plan.
pub fn approval(plan_id: &str, registration: &SignedEntry) -> Result<PlanApproved, RecordError> {
    Ok(PlanApproved {
        plan: hash_from_hex(plan_id)?,
        registration: registration.entry_hash(),
    })
}

/// The Contribution statement of `update`, an update for `plan`.
pub fn contribution(
    plan: &TrainingPlan,
    update: &crate::contribution::Contribution,
) -> Result<Contribution, RecordError> {
    Ok(Contribution {
        plan: hash_from_hex(&plan.plan_id())?,
        round: update.round,
        update_hash: hash_from_hex(&update.update_sha256)?,
        samples: SampleBucket::of(update.num_samples)?,
        metrics: Metrics::new(vec![
            Metric {
                kind: MetricKind::Loss,
                value: Number::new(update.train.loss)?,
            },
            Metric {
                kind: MetricKind::Accuracy,
                value: Number::new(update.train.accuracy)?,
            },
        ])?,
        epsilon_round: Epsilon::from_micro(update.epsilon_round_micro),
        epsilon_total: Epsilon::from_micro(update.epsilon_total_micro),
        code_hash: hash_from_hex(&plan.code_hash())?,
    })
}

/// `author`'s signed Contribution entry stating `update`.
pub fn sign_contribution(
    plan: &TrainingPlan,
    update: &crate::contribution::Contribution,
    origin: &LogOrigin,
    author: PartyId,
    key: &SigningKey,
) -> Result<SignedEntry, RecordError> {
    let statement = Statement::Contribution(contribution(plan, update)?);
    Ok(SignedEntry::sign(origin, author, statement, key)?)
}

/// Check that a signed entry is `author`'s Contribution stating exactly `update`.
pub fn check_contribution(
    entry: &SignedEntry,
    author: &str,
    plan: &TrainingPlan,
    update: &crate::contribution::Contribution,
) -> Result<(), RecordError> {
    if entry.author().as_str() != author {
        return Err(RecordError::Mismatch(format!(
            "the contribution entry is authored by {}, not {author}",
            entry.author()
        )));
    }
    let expected = contribution(plan, update)?;
    match entry.statement() {
        Statement::Contribution(c) if *c == expected => Ok(()),
        Statement::Contribution(_) => Err(RecordError::Mismatch(
            "the contribution entry does not state this update (hash, round, samples, metrics, epsilon or code differ)"
                .into(),
        )),
        other => Err(RecordError::Mismatch(format!(
            "expected a Contribution entry, got {}",
            other.kind_name()
        ))),
    }
}

/// An entry the log must hold: one the coordinator signs, one a hospital
/// signed, or one before the requested tail (counted, not built).
enum Expected {
    ByCoordinator(Statement),
    ByHospital(SignedEntry),
    InLog,
}

/// What the log must hold for a state beyond its first `skip` plan entries.
pub struct ExpectedTail {
    /// How many plan entries the state explains in all.
    pub total: usize,
    /// The entries from position `skip` on, signed.
    pub entries: Vec<SignedEntry>,
}

/// Everything the log must hold for `state`, after its genesis, in order:
/// the registration, the approvals and the dataset statements (once review is
/// over, by hospital name), then per finished round its opening, its
/// contributions (by hospital name) and its aggregate, and the release once
/// the plan completed. Only the entries from position `skip` on are signed
/// and returned: the ones before are already in the log.
pub fn expected_entries(
    state: &PlanState,
    origin: &LogOrigin,
    coordinator: &PartyId,
    key: &SigningKey,
    skip: usize,
) -> Result<ExpectedTail, RecordError> {
    let plan = &state.plan;
    let plan_hash = hash_from_hex(&state.plan_id)?;
    let mut out = vec![Expected::ByCoordinator(Statement::PlanRegistered(
        registration(plan)?,
    ))];
    if state.phase != Phase::Review {
        let approved: Vec<_> = state.reviews.values().filter(|r| r.approved).collect();
        for entry in approved
            .iter()
            .filter_map(|r| r.approval_entry.as_ref())
            .chain(approved.iter().filter_map(|r| r.dataset_entry.as_ref()))
        {
            out.push(Expected::ByHospital(entry.clone()));
        }
        let rule = strategy(plan)?;
        for record in &state.history {
            // A round's entries: its opening, its contributions, its aggregate.
            let entries = 2 + record.contributions.len();
            if out.len() + entries <= skip {
                out.extend(std::iter::repeat_with(|| Expected::InLog).take(entries));
                continue;
            }
            out.push(Expected::ByCoordinator(Statement::RoundOpened(
                RoundOpened {
                    plan: plan_hash,
                    round: record.round,
                    input_model: hash_from_hex(&record.input_sha256)?,
                },
            )));
            let contributions: Vec<SignedEntry> = record
                .contributions
                .values()
                .map(|c| c.entry.clone())
                .collect();
            let buckets = record
                .contributions
                .values()
                .map(|c| SampleBucket::of(c.contribution.num_samples))
                .collect::<Result<Vec<_>, _>>()?;
            let weights = Weight::for_buckets(rule, &buckets);
            let consumed = contributions
                .iter()
                .zip(weights)
                .map(|(c, weight)| Consumed {
                    contribution: c.entry_hash(),
                    weight,
                })
                .collect();
            out.extend(contributions.into_iter().map(Expected::ByHospital));
            out.push(Expected::ByCoordinator(Statement::RoundAggregated(
                RoundAggregated {
                    plan: plan_hash,
                    round: record.round,
                    consumed,
                    output_model: hash_from_hex(&record.output_sha256)?,
                },
            )));
        }
        if state.phase == Phase::Completed {
            out.push(Expected::ByCoordinator(Statement::ModelReleased(
                ModelReleased {
                    plan: plan_hash,
                    model: hash_from_hex(&state.global_sha256)?,
                },
            )));
        }
    }
    let total = out.len();
    let entries = out
        .into_iter()
        .skip(skip)
        .filter_map(|e| match e {
            Expected::ByCoordinator(statement) => Some(
                SignedEntry::sign(origin, coordinator.clone(), statement, key)
                    .map_err(RecordError::from),
            ),
            Expected::ByHospital(entry) => Some(Ok(entry)),
            Expected::InLog => None,
        })
        .collect::<Result<Vec<_>, RecordError>>()?;
    Ok(ExpectedTail { total, entries })
}
