//! In-process federation for scale runs: many virtual clients drive the same
//! [`PlanRun`] state machine and [`client`] steps as the
//! networked coordinator and nodes, without a transport (as Flower's
//! simulation engine does). Plan time is a virtual clock, so deadlines never
//! fire; only the rounds' wall time, reported to the caller, reads the clock.
//! Each virtual client signs its contributions with a key derived from its
//! name, as a real node signs with its identity.

use std::time::{Duration, Instant};

use crate::client::{self, ClientError, LocalData};
use crate::contribution::{Contribution, SignedContribution};
use crate::plan::TrainingPlan;
use crate::plan_run::{PlanEvent, PlanRun, Rejection, Review, RoundRecord, RunError, TaskKind};
use crate::record::RecordError;

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// The plan could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A client's local step failed.
    #[error("client {client}: {source}")]
    Client {
        /// The client.
        client: String,
        /// What failed.
        source: ClientError,
    },
    /// The state machine refused a message.
    #[error("client {client}: message refused: {source}")]
    Refused {
        /// The client.
        client: String,
        /// Why.
        source: Rejection,
    },
    /// The plan failed.
    #[error("plan failed: {0}")]
    Failed(String),
    /// A contribution could not be signed.
    #[error("client {client}: contribution entry: {source}")]
    Record {
        /// The client.
        client: String,
        /// Why.
        source: RecordError,
    },
}

/// A virtual client's signing identity: a key derived from its name.
fn identity(
    name: &str,
) -> Result<(ledger::entry::PartyId, ed25519_dalek::SigningKey), RecordError> {
    let party = ledger::entry::PartyId::new(name)?;
    let seed = crate::sha256(format!("cohort simulation identity {name}").as_bytes());
    Ok((party, ed25519_dalek::SigningKey::from_bytes(&seed)))
}

/// Run `plan` to completion with `clients` (name and data), calling
/// `on_round` after each aggregation with the round's wall time.
pub fn run(
    plan: TrainingPlan,
    clients: &[(String, LocalData)],
    mut on_round: impl FnMut(&RoundRecord, Duration),
) -> Result<PlanRun, SimulationError> {
    let plan_id = plan.plan_id();
    let code_hash = plan.code_hash();
    let mut clock: i64 = 0;
    let mut run = PlanRun::new(plan.clone(), clock)?;
    let origin = ledger::entry::LogOrigin::new("cohort.simulation/log")
        .map_err(|e| SimulationError::Failed(format!("log origin: {e}")))?;
    let identities = clients
        .iter()
        .map(|(name, _)| {
            identity(name).map_err(|source| SimulationError::Record {
                client: name.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut prepared: Option<Vec<LocalData>> = None;
    let mut round_started = Instant::now();
    while !run.is_finished() {
        for (index, (name, raw)) in clients.iter().enumerate() {
            clock += 1;
            let refused = |source| SimulationError::Refused {
                client: name.clone(),
                source,
            };
            let failed = |source| SimulationError::Client {
                client: name.clone(),
                source,
            };
            let events = match run.task_for(name) {
                TaskKind::Wait | TaskKind::Finished { .. } | TaskKind::SecureStep { .. } => {
                    continue;
                }
                TaskKind::Review => run
                    .on_review(
                        name,
                        &plan_id,
                        Review {
                            approved: true,
                            reason: String::new(),
                            approval_entry: None,
                            dataset_entry: None,
                        },
                        clock,
                    )
                    .map_err(refused)?,
                TaskKind::Statistics => run
                    .on_statistics(name, &plan_id, raw.statistics(), clock)
                    .map_err(refused)?,
                TaskKind::Train {
                    round,
                    global,
                    standardizer,
                    ..
                } => {
                    let data = match (&standardizer, &mut prepared) {
                        (None, _) => raw,
                        (Some(s), slot) => {
                            if slot.is_none() {
                                let all: Result<Vec<_>, _> =
                                    clients.iter().map(|(_, d)| d.standardized(s)).collect();
                                *slot = Some(all.map_err(failed)?);
                            }
                            &slot.as_ref().expect("prepared")[index]
                        }
                    };
                    let update = client::train_round(&plan, name, round, &global, data, None)
                        .map_err(failed)?;
                    let contribution = Contribution {
                        round,
                        update_sha256: update.weights.sha256_hex(),
                        num_samples: update.num_samples,
                        train: update.train,
                        global_test: update.global_test,
                        code_hash: code_hash.clone(),
                        epsilon_round_micro: 0,
                        epsilon_total_micro: 0,
                    };
                    let (party, key) = &identities[index];
                    let entry = crate::record::sign_contribution(
                        &plan,
                        &contribution,
                        &origin,
                        party.clone(),
                        key,
                    )
                    .map_err(|source| SimulationError::Record {
                        client: name.clone(),
                        source,
                    })?;
                    let signed = SignedContribution {
                        contribution,
                        entry,
                    };
                    run.on_update(name, &plan_id, signed, update.weights, clock)
                        .map_err(refused)?
                }
                TaskKind::Evaluate { model, .. } => {
                    let data = prepared.as_ref().map_or(raw, |p| &p[index]);
                    let metrics = learn::evaluate(&plan.model, &model, &data.test)
                        .map_err(|e| failed(e.into()))?;
                    let sha = model.sha256_hex();
                    run.on_evaluation(name, &plan_id, &sha, metrics, clock)
                        .map_err(refused)?
                }
            };
            run.take_unsaved();
            for event in events {
                match event {
                    PlanEvent::RoundAggregated(record) => {
                        on_round(&record, round_started.elapsed());
                        round_started = Instant::now();
                    }
                    PlanEvent::Failed(reason) => return Err(SimulationError::Failed(reason)),
                    _ => {}
                }
            }
        }
    }
    Ok(run)
}
