//! The gRPC `cohort.fed.v1.Coordinator` service: authenticates the caller by
//! its certificate, decodes and checks messages, hands them to the plan's
//! state machine and persists the result before acknowledging.

use std::sync::Arc;
use std::time::Duration;

use fed::contribution::SignedContribution;
use fed::plan_run::{Rejection, Review, TaskKind};
use fed::secure_round::SecureMessage;
use learn::FeatureStats;
use ledger::entry::SignedEntry;
use protocol::convert::{
    WireError, decode_metrics, decode_model, model_message, standardization_message,
};
use protocol::v1::{self, task::Kind};
use tonic::{Request, Response, Status};

use crate::registry::Refusal;
use crate::{Shared, now_unix_ms};

/// Longest a `NextTask` call is held open.
const MAX_POLL: Duration = Duration::from_secs(20);

/// The service over the coordinator's shared state.
pub struct CoordinatorService {
    pub(crate) shared: Arc<Shared>,
}

fn refusal_status(r: Refusal) -> Status {
    match r {
        Refusal::NoCertificate => Status::unauthenticated(r.to_string()),
        Refusal::Revoked(_) | Refusal::Unknown(_) => Status::permission_denied(r.to_string()),
    }
}

fn rejection_status(r: Rejection) -> Status {
    match r {
        Rejection::OutOfPhase(m) => Status::failed_precondition(m),
        Rejection::NotParticipant(m) => Status::permission_denied(m),
        Rejection::Invalid(m) => Status::invalid_argument(m),
        Rejection::Duplicate(m) => Status::already_exists(m),
    }
}

/// The answer to `node`'s message, once its effect is stored (logged at debug
/// level: one line per acknowledged message).
fn acked(node: &str, message: &str) -> Response<v1::Ack> {
    tracing::debug!(%node, "{message}");
    Response::new(v1::Ack {
        message: message.to_string(),
    })
}

fn invalid(message: String) -> Status {
    Status::invalid_argument(message)
}

fn malformed(error: WireError) -> Status {
    Status::invalid_argument(error.to_string())
}

impl CoordinatorService {
    /// `node` asked for a task: if it had been marked absent, it is back (stored, and
    /// pollers woken).
    async fn mark_present(&self, node: &str) -> Result<(), Status> {
        let mut run = self.shared.run.lock().await;
        if !run.on_poll(node) {
            return Ok(());
        }
        tracing::info!(%node, "absent node is back");
        self.shared
            .persist(&mut run, now_unix_ms())
            .await
            .map_err(|e| Status::internal(format!("could not store the plan state: {e}")))?;
        drop(run);
        self.shared.publish(Vec::new());
        Ok(())
    }

    /// Decode a ledger entry the caller signed, and check the signature.
    fn signed_entry(
        &self,
        party: &crate::registry::Party,
        bytes: &[u8],
    ) -> Result<SignedEntry, Status> {
        let entry = SignedEntry::from_bytes(bytes)
            .map_err(|e| invalid(format!("the ledger entry does not decode: {e}")))?;
        self.verify_entry(party, &entry)?;
        Ok(entry)
    }

    /// Check that `entry` is signed by `party`'s enrolled key.
    fn verify_entry(
        &self,
        party: &crate::registry::Party,
        entry: &SignedEntry,
    ) -> Result<(), Status> {
        let key = ledger::entry::PublicKey::from_bytes(&party.public_key.0)
            .map_err(|e| Status::internal(format!("enrolled key of {}: {e}", party.name)))?;
        if !entry.verify(&self.shared.ledger_origin, &key) {
            return Err(Status::unauthenticated(format!(
                "the ledger entry's signature does not verify with {}'s key",
                party.name
            )));
        }
        Ok(())
    }

    /// Decode a contribution and check that its entry is the caller's signed
    /// Contribution stating exactly its facts (for the active plan; other
    /// plans are refused later).
    fn contribution(
        &self,
        party: &crate::registry::Party,
        plan_id: &str,
        message: Option<protocol::v1::Contribution>,
    ) -> Result<SignedContribution, Status> {
        let signed = SignedContribution::try_from(
            message
                .ok_or(WireError::Missing("contribution"))
                .map_err(malformed)?,
        )
        .map_err(malformed)?;
        self.verify_entry(party, &signed.entry)?;
        if plan_id == self.shared.plan_id {
            fed::record::check_contribution(
                &signed.entry,
                &party.name,
                &self.shared.plan,
                &signed.contribution,
            )
            .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(signed)
    }

    /// Check a hospital's DatasetPrepared entry for the active plan.
    fn check_dataset(
        &self,
        party: &crate::registry::Party,
        bytes: &[u8],
    ) -> Result<SignedEntry, Status> {
        let entry = self.signed_entry(party, bytes)?;
        let registration = &self.shared.registration;
        let plan = fed::record::hash_from_hex(&self.shared.plan_id)
            .map_err(|e| Status::internal(e.to_string()))?;
        match entry.statement().dataset_prepared() {
            Some(d)
                if d.plan == plan
                    && d.registration == registration.entry_hash()
                    && entry.author().as_str() == party.name =>
            {
                Ok(entry)
            }
            _ => Err(invalid(format!(
                "the dataset entry is not {}'s DatasetPrepared for plan {}",
                party.name, self.shared.plan_id
            ))),
        }
    }

    /// Check a hospital's PlanApproved entry for the active plan.
    fn check_approval(
        &self,
        party: &crate::registry::Party,
        bytes: &[u8],
    ) -> Result<SignedEntry, Status> {
        let entry = self.signed_entry(party, bytes)?;
        let expected = fed::record::approval(&self.shared.plan_id, &self.shared.registration)
            .map_err(|e| Status::internal(e.to_string()))?;
        match entry.statement() {
            ledger::entry::Statement::PlanApproved(a)
                if *a == expected && entry.author().as_str() == party.name =>
            {
                Ok(entry)
            }
            _ => Err(invalid(format!(
                "the approval entry is not {}'s PlanApproved of plan {}",
                party.name, self.shared.plan_id
            ))),
        }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<crate::registry::Party, Status> {
        let fingerprint = protocol::tls::peer_fingerprint(request);
        self.shared
            .registry
            .identify(fingerprint.as_deref())
            .cloned()
            .map_err(refusal_status)
    }

    fn task_message(&self, task: TaskKind) -> Option<v1::Task> {
        let plan_id = self.shared.plan_id.clone();
        let kind = match task {
            TaskKind::Wait => return None,
            TaskKind::Review => Kind::ReviewPlan(v1::PlanOffer {
                plan_id,
                plan_json: self.shared.plan_json.clone(),
                code_hash: self.shared.code_hash.clone(),
                registration_entry: self.shared.registration.bytes().to_vec(),
            }),
            TaskKind::Statistics => Kind::ComputeStatistics(v1::StatisticsRequest { plan_id }),
            TaskKind::Train {
                round,
                global,
                standardizer,
                deadline_unix_ms,
                secure,
            } => Kind::Train(v1::TrainRequest {
                plan_id,
                round,
                global_model: Some(model_message(&global)),
                standardization: standardizer.map(standardization_message),
                deadline_unix_ms,
                secure: secure.as_ref().map(Into::into),
            }),
            TaskKind::SecureStep { round, task } => Kind::Secure(v1::SecureStepRequest {
                plan_id,
                round,
                task: Some((&task).into()),
            }),
            TaskKind::Evaluate {
                round,
                model,
                standardizer,
            } => Kind::Evaluate(v1::EvaluateRequest {
                plan_id,
                round,
                model: Some(model_message(&model)),
                standardization: standardizer.map(standardization_message),
            }),
            TaskKind::Finished { outcome } => Kind::Finished(v1::PlanFinished {
                plan_id,
                outcome,
                final_model_sha256: String::new(),
            }),
        };
        Some(v1::Task { kind: Some(kind) })
    }
}

#[tonic::async_trait]
impl v1::coordinator_server::Coordinator for CoordinatorService {
    async fn join(
        &self,
        request: Request<v1::JoinRequest>,
    ) -> Result<Response<v1::JoinResponse>, Status> {
        let party = self.caller(&request)?;
        let join = request.into_inner();
        if join.protocol_version != protocol::PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported; this coordinator speaks {}",
                join.protocol_version,
                protocol::PROTOCOL_VERSION
            )));
        }
        tracing::info!(node = %party.name, software = %join.software, "node joined");
        let ledger = self.shared.ledger.lock().await;
        Ok(Response::new(v1::JoinResponse {
            node_id: party.name,
            federation: self.shared.federation.clone(),
            ledger_origin: ledger.origin().to_string(),
            ledger_key: ledger.log_key_hex(),
        }))
    }

    async fn next_task(
        &self,
        request: Request<v1::NextTaskRequest>,
    ) -> Result<Response<v1::Task>, Status> {
        let party = self.caller(&request)?;
        let wait = Duration::from_millis(u64::from(request.into_inner().wait_ms)).min(MAX_POLL);
        let mut changed = self.shared.changed.subscribe();
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            // A node waiting here is present, also when a round that marked it absent
            // closed during this long poll.
            self.mark_present(&party.name).await?;
            changed.borrow_and_update();
            let task = {
                // The plan state and the ledger staged from it are read under
                // the run's lock (taken before the ledger's, as `persist` does):
                // a node must never be told the plan is over before it was asked
                // to cosign the checkpoint that the same change staged.
                let run = self.shared.run.lock().await;
                let cosign = self.shared.ledger.lock().await.cosign_request(&party.name);
                if let Some(add_checkpoint) = cosign {
                    return Ok(Response::new(v1::Task {
                        kind: Some(Kind::Cosign(v1::CosignRequest { add_checkpoint })),
                    }));
                }
                let mut task = self.task_message(run.task_for(&party.name));
                if let Some(v1::Task {
                    kind: Some(Kind::Finished(f)),
                }) = &mut task
                {
                    f.final_model_sha256 = run.state().global_sha256.clone();
                    if self.shared.released.lock().await.insert(party.name.clone()) {
                        self.shared.changed.send_modify(|v| *v += 1);
                    }
                }
                task
            };
            if let Some(task) = task {
                return Ok(Response::new(task));
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep_until(give_up) => {
                    return Ok(Response::new(v1::Task {
                        kind: Some(Kind::Wait(v1::Wait { retry_after_ms: 0 })),
                    }));
                }
            }
        }
    }

    async fn submit_review(
        &self,
        request: Request<v1::PlanReview>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let review = request.into_inner();
        if !review.approved {
            tracing::warn!(node = %party.name, reason = %review.reason, "plan declined");
        }
        let (approval_entry, dataset_entry) = if review.approved {
            let approval = self.check_approval(&party, &review.approval_entry)?;
            let dataset = if review.dataset_entry.is_empty() {
                None
            } else {
                Some(self.check_dataset(&party, &review.dataset_entry)?)
            };
            (Some(approval), dataset)
        } else {
            (None, None)
        };
        self.shared
            .apply(|run, now| {
                run.on_review(
                    &party.name,
                    &review.plan_id,
                    Review {
                        approved: review.approved,
                        reason: review.reason.clone(),
                        approval_entry,
                        dataset_entry,
                    },
                    now,
                )
            })
            .await
            .map(|_| acked(&party.name, "review recorded"))
    }

    async fn submit_statistics(
        &self,
        request: Request<v1::FeatureStatistics>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let s = request.into_inner();
        let stats = FeatureStats {
            count: s.count,
            sum: s.sum,
            sum_sq: s.sum_sq,
        };
        self.shared
            .apply(|run, now| run.on_statistics(&party.name, &s.plan_id, stats.clone(), now))
            .await
            .map(|_| acked(&party.name, "statistics recorded"))
    }

    async fn submit_update(
        &self,
        request: Request<v1::ModelUpdate>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let u = request.into_inner();
        let weights = decode_model(u.weights).map_err(invalid)?;
        let contribution = self.contribution(&party, &u.plan_id, u.contribution)?;
        let round = contribution.contribution.round;
        self.shared
            .apply(|run, now| run.on_update(&party.name, &u.plan_id, contribution, weights, now))
            .await
            .inspect_err(|status| {
                tracing::warn!(node = %party.name, round, error = %status.message(), "update refused");
            })?;
        tracing::debug!(node = %party.name, round, "update accepted");
        Ok(Response::new(v1::Ack {
            message: format!("update for round {round} stored"),
        }))
    }

    async fn submit_secure(
        &self,
        request: Request<v1::SecureSubmission>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let s = request.into_inner();
        let message = SecureMessage::try_from(
            s.message
                .ok_or(WireError::Missing("secure-aggregation message"))
                .map_err(malformed)?,
        )
        .map_err(|e| invalid(format!("malformed secure-aggregation message: {e}")))?;
        let update = match s.contribution {
            None => None,
            Some(c) => Some(self.contribution(&party, &s.plan_id, Some(c))?),
        };
        // A secure step's messages live in the round's in-memory state (a
        // restarted coordinator starts a new attempt), so only the first one,
        // which states the node's update, and the ones that close a step need
        // the plan state stored.
        let store = if update.is_some() {
            Store::Always
        } else {
            Store::OnEvents
        };
        self.shared
            .apply_storing(store, |run, now| {
                run.on_secure(&party.name, &s.plan_id, s.round, message, update, now)
            })
            .await
            .map(|_| acked(&party.name, "secure-aggregation message recorded"))
    }

    async fn submit_cosignature(
        &self,
        request: Request<v1::Cosignature>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let c = request.into_inner();
        let mut ledger = self.shared.ledger.lock().await;
        ledger
            .on_cosignature(&party.name, &c.line, c.witness_size, &c.error)
            .map_err(|e| invalid(format!("cosignature refused: {e}")))?;
        drop(ledger);
        self.shared.publish(Vec::new());
        Ok(acked(&party.name, "cosignature recorded"))
    }

    async fn read_log(
        &self,
        request: Request<v1::LogRead>,
    ) -> Result<Response<v1::LogData>, Status> {
        self.caller(&request)?;
        let path = request.into_inner().path;
        let data = self
            .shared
            .ledger
            .lock()
            .await
            .read(&path)
            .map_err(Status::not_found)?;
        Ok(Response::new(v1::LogData { data }))
    }

    async fn withdraw(
        &self,
        request: Request<v1::PlanWithdrawal>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let w = request.into_inner();
        self.shared
            .withdraw(&party.name, &w.plan_id, &w.reason)
            .await?;
        Ok(acked(&party.name, "withdrawal recorded"))
    }

    async fn submit_evaluation(
        &self,
        request: Request<v1::Evaluation>,
    ) -> Result<Response<v1::Ack>, Status> {
        let party = self.caller(&request)?;
        let e = request.into_inner();
        let metrics = decode_metrics(e.test_metrics, "test").map_err(invalid)?;
        self.shared
            .apply(|run, now| {
                run.on_evaluation(&party.name, &e.plan_id, &e.model_sha256, metrics, now)
            })
            .await
            .map(|_| acked(&party.name, "evaluation recorded"))
    }
}

/// When a message's effect on the plan state is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// Always, before the message is acknowledged.
    Always,
    /// Only when it moved the plan (produced events).
    OnEvents,
}

impl crate::Shared {
    /// Record that a hospital left the plan.
    async fn withdraw(&self, node: &str, plan_id: &str, reason: &str) -> Result<(), Status> {
        tracing::warn!(%node, %reason, "hospital withdrew from the plan");
        self.apply(|run, now| run.on_withdraw(node, plan_id, reason, now))
            .await
    }

    /// Apply a message to the plan, persist, wake pollers; map refusals.
    async fn apply(
        &self,
        f: impl FnOnce(
            &mut fed::plan_run::PlanRun,
            i64,
        ) -> Result<Vec<fed::plan_run::PlanEvent>, Rejection>,
    ) -> Result<(), Status> {
        self.apply_storing(Store::Always, f).await
    }

    /// [`Self::apply`], storing the plan state as `store` says.
    async fn apply_storing(
        &self,
        store: Store,
        f: impl FnOnce(
            &mut fed::plan_run::PlanRun,
            i64,
        ) -> Result<Vec<fed::plan_run::PlanEvent>, Rejection>,
    ) -> Result<(), Status> {
        let mut run = self.run.lock().await;
        let now = now_unix_ms();
        let events = f(&mut run, now).map_err(rejection_status)?;
        if store == Store::Always || !events.is_empty() {
            self.persist(&mut run, now)
                .await
                .map_err(|e| Status::internal(format!("could not store the message: {e}")))?;
        }
        drop(run);
        self.publish(events);
        Ok(())
    }
}
