//! The node's client loop: one session per connection to the coordinator,
//! long-polling tasks and answering each with a local computation. Failures
//! are told apart: the coordinator unreachable (reconnect with a backoff), a
//! local step that failed (logged, the task skipped, the session goes on), or
//! a refusal that stops the node.

use std::sync::Arc;
use std::time::Duration;

use console::node::{Decision, MemoryApprovals, PlanApprovals};
use fed::client::prepare_update;
use fed::contribution::SignedContribution;
use fed::plan::TrainingPlan;
use fed::secure_round::{SecureRoundClient, SecureRoundParams, SecureTask};
use fed::task::LocalTask;
use protocol::convert::{decode_model, decode_standardization, metrics_message, model_message};
use protocol::v1::{self, coordinator_client::CoordinatorClient, task::Kind};
use tonic::Code;
use tonic::transport::Channel;

use crate::config::Review;
use crate::store::{Charge, Disclosure, NodeStore};
use crate::{NodeError, NodeSettings, witness};

/// How long a node waits after a failed local step before asking for a task
/// again (the coordinator may hand out the same task).
const LOCAL_FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// The plan the node is working on, with its local task.
struct ActivePlan {
    plan_id: String,
    plan: TrainingPlan,
    task: Box<dyn LocalTask>,
}

/// The node's side of the open round's secure aggregation.
struct SecureSession {
    client: SecureRoundClient,
    /// What gets masked (see `fed::client::PreparedUpdate::masked_input`).
    masked_input: Vec<f32>,
}

/// How often a node that cannot take part in the open secure round (its secrets were lost in
/// a restart) asks for a task while the round goes on without it.
const ABANDONED_ROUND_POLL: Duration = Duration::from_secs(1);

struct Node {
    /// The console's plan approvals and allow-list, when the node has a console.
    approvals: Option<Arc<MemoryApprovals>>,
    secure: Option<SecureSession>,
    /// The secure round this node dropped out of, having no session for it.
    abandoned_round: Option<u32>,
    settings: NodeSettings,
    signing_key: ed25519_dalek::SigningKey,
    store: NodeStore,
    active: Option<ActivePlan>,
    ledger: Option<witness::NodeLedger>,
}

/// What ends a step of a session.
enum Interrupt {
    /// The coordinator is unreachable or the connection broke: reconnect.
    Transport(String),
    /// A local computation failed (data, training, encoding): skip the task.
    Local(String),
    /// The node cannot go on.
    Fatal(NodeError),
    /// The plan is over.
    Done(String),
}

fn local(what: &str) -> impl FnOnce(String) -> Interrupt + '_ {
    move |e| Interrupt::Local(format!("{what}: {e}"))
}

fn fatal(e: impl Into<NodeError>) -> Interrupt {
    Interrupt::Fatal(e.into())
}

/// A message the coordinator refused for its content or timing is logged and
/// the node goes on; anything else interrupts the session.
fn refused_is_not_fatal(
    round: u32,
    sent: Result<tonic::Response<v1::Ack>, tonic::Status>,
) -> Result<(), Interrupt> {
    match sent {
        Ok(_) => Ok(()),
        Err(status)
            if matches!(
                status.code(),
                Code::FailedPrecondition | Code::AlreadyExists | Code::InvalidArgument
            ) =>
        {
            tracing::warn!(round, error = %status.message(), "message refused by the coordinator");
            Ok(())
        }
        Err(status) => Err(from_status(status)),
    }
}

fn from_status(status: tonic::Status) -> Interrupt {
    match status.code() {
        Code::PermissionDenied | Code::Unauthenticated => {
            Interrupt::Fatal(NodeError::Refused(status.message().to_string()))
        }
        _ => Interrupt::Transport(format!("{}: {}", status.code(), status.message())),
    }
}

/// The federation client: connect, run sessions, reconnect with a backoff
/// whenever the coordinator is unreachable, until the plan is over.
pub(crate) async fn run(
    settings: NodeSettings,
    store: NodeStore,
    approvals: Option<Arc<MemoryApprovals>>,
) -> Result<String, NodeError> {
    let signing_key = {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&settings.tls.key_pem)
            .map_err(|e| NodeError::Refused(format!("identity key: {e}")))?
    };
    let mut node = Node {
        approvals,
        secure: None,
        abandoned_round: None,
        settings,
        signing_key,
        store,
        active: None,
        ledger: None,
    };
    let endpoint = protocol::tls::endpoint(
        &node.settings.coordinator,
        &node.settings.coordinator_name,
        &node.settings.tls,
    )?
    .connect_timeout(Duration::from_secs(5));
    let mut backoff = Duration::from_millis(50);
    loop {
        let outcome = match endpoint.connect().await {
            Ok(channel) => {
                backoff = Duration::from_millis(50);
                node.session(
                    CoordinatorClient::new(channel)
                        .max_decoding_message_size(protocol::MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(protocol::MAX_MESSAGE_BYTES),
                )
                .await
            }
            Err(e) => Interrupt::Transport(format!("cannot connect: {e}")),
        };
        match outcome {
            Interrupt::Done(outcome) => return Ok(outcome),
            Interrupt::Fatal(e) => return Err(e),
            Interrupt::Local(message) => {
                tracing::error!(node = %node.settings.name, %message, "local failure; reconnecting");
            }
            Interrupt::Transport(message) => {
                tracing::warn!(node = %node.settings.name, %message, retry_in = ?backoff, "coordinator unreachable");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl Node {
    async fn session(&mut self, mut client: CoordinatorClient<Channel>) -> Interrupt {
        let joined = client
            .join(v1::JoinRequest {
                protocol_version: protocol::PROTOCOL_VERSION,
                software: format!("cohort-node {}", env!("CARGO_PKG_VERSION")),
            })
            .await;
        match joined {
            Ok(r) => {
                let r = r.into_inner();
                if r.node_id != self.settings.name {
                    tracing::warn!(configured = %self.settings.name, certified = %r.node_id, "the coordinator knows this node under another name");
                }
                tracing::info!(node = %r.node_id, federation = %r.federation, "joined federation");
                if !self
                    .ledger
                    .as_ref()
                    .is_some_and(|l| l.is(&r.ledger_origin, &r.ledger_key))
                {
                    match witness::NodeLedger::new(
                        &r.ledger_origin,
                        &r.ledger_key,
                        &self.settings.name,
                        self.signing_key.clone(),
                        self.settings.data_dir.join("witness"),
                    ) {
                        Ok(l) => self.ledger = Some(l),
                        Err(e) => {
                            return Interrupt::Fatal(NodeError::Refused(format!("ledger: {e}")));
                        }
                    }
                }
            }
            Err(status) => return from_status(status),
        }
        loop {
            let task = match client
                .next_task(v1::NextTaskRequest { wait_ms: 15_000 })
                .await
            {
                Ok(t) => t.into_inner(),
                Err(status) => return from_status(status),
            };
            let step = match task.kind {
                None | Some(Kind::Wait(_)) => Ok(()),
                Some(Kind::ReviewPlan(offer)) => self.review(&mut client, offer).await,
                Some(Kind::ComputeStatistics(req)) => self.statistics(&mut client, req).await,
                Some(Kind::Train(req)) => self.train(&mut client, req).await,
                Some(Kind::Evaluate(req)) => self.evaluate(&mut client, req).await,
                Some(Kind::Cosign(req)) => self.cosign(&mut client, req).await,
                Some(Kind::Secure(req)) => self.secure_step(&mut client, req).await,
                Some(Kind::Finished(f)) => {
                    tracing::info!(plan = %f.plan_id, outcome = %f.outcome, model = %f.final_model_sha256, "plan finished");
                    if self.settings.exit_when_done {
                        return Interrupt::Done(f.outcome);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok(())
                }
            };
            match step {
                Ok(()) => {}
                Err(Interrupt::Local(message)) => {
                    tracing::error!(node = %self.settings.name, %message, "local step failed; the task is skipped");
                    tokio::time::sleep(LOCAL_FAILURE_PAUSE).await;
                }
                Err(interrupt) => return interrupt,
            }
        }
    }

    /// Decide on a plan offer: the plan must be well-formed, hash to its id,
    /// run approved code on a dataset this node serves, and name this node.
    fn decide(&self, offer: &v1::PlanOffer) -> Result<TrainingPlan, String> {
        let plan = TrainingPlan::from_json(&offer.plan_json).map_err(|e| e.to_string())?;
        if fed::sha256_hex(offer.plan_json.as_bytes()) != offer.plan_id {
            return Err("the plan's JSON does not hash to its id".into());
        }
        let code_hash = plan.code_hash();
        if code_hash != offer.code_hash {
            return Err(format!(
                "the offer claims code {} but the plan runs {code_hash}",
                offer.code_hash
            ));
        }
        if plan.dataset != self.settings.source.dataset() {
            return Err(format!(
                "this node serves dataset {}, not {}",
                self.settings.source.dataset(),
                plan.dataset
            ));
        }
        if !plan.hospitals.contains(&self.settings.name) {
            return Err("this hospital is not eligible for the plan".into());
        }
        Ok(plan)
    }

    /// Whether the hospital runs `code_hash`: under `review = "allow-list"`
    /// its allow-list (as the console keeps it when there is one, else as
    /// configured) is the approval; under `review = "dpo"` the officer sees the
    /// code hash with the plan and approving adds it to the list.
    async fn code_approved(&self, code_hash: &str) -> Result<(), String> {
        if self.settings.review == Review::Dpo {
            return Ok(());
        }
        let allowed = match &self.approvals {
            Some(approvals) => approvals
                .allow_list()
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .any(|h| h == code_hash),
            None => self
                .settings
                .approved_code_hashes
                .iter()
                .any(|h| h == code_hash),
        };
        match allowed {
            true => Ok(()),
            false => Err(format!(
                "code {code_hash} is not on this hospital's allow-list"
            )),
        }
    }

    /// With `review = "dpo"`, wait for the data protection officer's decision
    /// in the console until shortly before the plan's review deadline.
    async fn person_decides(
        &self,
        offer: &v1::PlanOffer,
        plan: &TrainingPlan,
    ) -> Result<(), String> {
        let (Review::Dpo, Some(approvals)) = (self.settings.review, &self.approvals) else {
            return Ok(());
        };
        approvals
            .offer(&offer.plan_id, &offer.plan_json)
            .map_err(|e| e.to_string())?;
        tracing::info!(plan = %offer.plan_id, "plan waiting for the data protection officer");
        let patience = Duration::from_secs(plan.round_deadline_secs.saturating_sub(2).max(1));
        match tokio::time::timeout(patience, approvals.wait(&offer.plan_id)).await {
            Ok(decided) => match decided.decision {
                Decision::Approve => Ok(()),
                Decision::Decline(reason) => Err(format!("declined by {}: {reason}", decided.by)),
            },
            Err(_) => Err("the data protection officer did not decide before the deadline".into()),
        }
    }

    async fn review(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        offer: v1::PlanOffer,
    ) -> Result<(), Interrupt> {
        let decision = match self.decide(&offer) {
            Ok(plan) => match self.code_approved(&plan.code_hash()).await {
                Ok(()) => match self.settings.source.load().await {
                    Ok(table) => crate::task::for_plan(&plan, table.data.clone())
                        .map(|task| (plan, table, task)),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let decision = match decision {
            Ok((plan, table, task)) => self
                .person_decides(&offer, &plan)
                .await
                .map(|()| (plan, table, task)),
            Err(e) => Err(e),
        };
        let decision = decision.and_then(|(plan, table, task)| {
            let ledger = self
                .ledger
                .as_ref()
                .ok_or("no ledger to record the approval in")?;
            let approval = ledger.approve(&plan, &offer.registration_entry)?;
            let dataset = ledger.dataset_prepared(&plan, &offer.registration_entry, &table)?;
            Ok((plan, task, approval, dataset))
        });
        let (approved, reason, approval_entry, dataset_entry) = match decision {
            Ok((plan, task, approval, dataset)) => {
                self.active = Some(ActivePlan {
                    plan_id: offer.plan_id.clone(),
                    plan,
                    task,
                });
                (true, String::new(), approval, dataset)
            }
            Err(reason) => {
                tracing::warn!(plan = %offer.plan_id, %reason, "declining plan");
                (false, reason, Vec::new(), Vec::new())
            }
        };
        self.store
            .record_review(
                &offer.plan_id,
                &offer.plan_json,
                approved,
                &reason,
                ehr::datetime::now_millis(),
            )
            .await
            .map_err(fatal)?;
        client
            .submit_review(v1::PlanReview {
                plan_id: offer.plan_id,
                approved,
                reason,
                approval_entry,
                dataset_entry,
            })
            .await
            .map_err(from_status)?;
        Ok(())
    }

    /// The active plan, reloaded from the node's database after a restart.
    /// Only plans this node approved are ever worked on.
    async fn active(&mut self, plan_id: &str) -> Result<&mut ActivePlan, Interrupt> {
        let loaded = match self.active.take() {
            Some(active) if active.plan_id == plan_id => active,
            _ => self.load_plan(plan_id).await?,
        };
        Ok(self.active.insert(loaded))
    }

    async fn load_plan(&self, plan_id: &str) -> Result<ActivePlan, Interrupt> {
        let json = self
            .store
            .approved_plan(plan_id)
            .await
            .map_err(fatal)?
            .ok_or_else(|| {
                Interrupt::Fatal(NodeError::Refused(format!(
                    "asked to work on plan {plan_id}, which this node never approved"
                )))
            })?;
        let plan = TrainingPlan::from_json(&json)
            .map_err(|e| Interrupt::Fatal(NodeError::Refused(e.to_string())))?;
        let data = self.settings.source.load().await.map_err(fatal)?.data;
        let task = crate::task::for_plan(&plan, data).map_err(local("the plan's task"))?;
        Ok(ActivePlan {
            plan_id: plan_id.to_string(),
            plan,
            task,
        })
    }

    async fn disclose(&self, d: Disclosure) -> Result<(), Interrupt> {
        self.store
            .record_disclosure(&d, ehr::datetime::now_millis())
            .await
            .map_err(fatal)
    }

    async fn statistics(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::StatisticsRequest,
    ) -> Result<(), Interrupt> {
        let stats = self
            .active(&req.plan_id)
            .await?
            .task
            .statistics()
            .map_err(|e| Interrupt::Local(format!("feature statistics: {e}")))?;
        self.disclose(Disclosure {
            plan_id: req.plan_id.clone(),
            round: 0,
            kind: "statistics".into(),
            sha256: String::new(),
            records: stats.count,
        })
        .await?;
        client
            .submit_statistics(v1::FeatureStatistics {
                plan_id: req.plan_id,
                count: stats.count,
                sum: stats.sum,
                sum_sq: stats.sum_sq,
            })
            .await
            .map_err(from_status)?;
        Ok(())
    }

    /// Train for a round: the plan's task trains (in a blocking task),
    /// `prepare_update` privatises and encodes, then the node charges its
    /// accountant, signs its contribution, logs the disclosure and sends.
    async fn train(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::TrainRequest,
    ) -> Result<(), Interrupt> {
        let round = req.round;
        let global = decode_model(req.global_model).map_err(Interrupt::Transport)?;
        let standardizer = req.standardization.map(decode_standardization);
        let secure = req
            .secure
            .map(SecureRoundParams::try_from)
            .transpose()
            .map_err(|e| Interrupt::Transport(format!("secure parameters: {e}")))?;
        self.active(&req.plan_id).await?;
        let Some(mut active) = self.active.take() else {
            return Err(Interrupt::Local("no active plan".into()));
        };
        let plan = active.plan.clone();
        let secret = match plan.privacy_budget {
            Some(_) => Some(self.store.secret().await.map_err(fatal)?),
            None => None,
        };
        let seed = fed::client::round_seed(&plan, &self.settings.name, round, secret.as_ref());
        let (active, global, trained) = tokio::task::spawn_blocking(move || {
            let trained = match &standardizer {
                Some(s) => active.task.standardize(s),
                None => Ok(()),
            }
            .and_then(|()| active.task.train(&global, seed));
            (active, global, trained)
        })
        .await
        .map_err(|e| Interrupt::Local(format!("training task failed: {e}")))?;
        self.active = Some(active);
        let update = trained.map_err(|e| Interrupt::Local(format!("local training: {e}")))?;
        let prepared = prepare_update(
            &plan,
            round,
            &global,
            update,
            secure.as_ref(),
            secret.as_ref(),
        )
        .map_err(|e| Interrupt::Local(format!("preparing the update: {e}")))?;
        let Some((epsilon_round_micro, epsilon_total_micro)) = self
            .charge_privacy(client, &req.plan_id, &plan, round, &prepared.privacy)
            .await?
        else {
            return Ok(());
        };
        let contribution =
            prepared.contribution(&plan, round, epsilon_round_micro, epsilon_total_micro);
        let entry = self
            .ledger
            .as_ref()
            .ok_or_else(|| Interrupt::Transport("joined without a ledger".into()))?
            .contribution(&plan, &contribution)
            .map_err(|e| {
                Interrupt::Fatal(NodeError::Refused(format!("contribution entry: {e}")))
            })?;
        let signed = SignedContribution {
            contribution,
            entry,
        };
        if let (Some(params), Some(masked_input)) = (secure, prepared.masked_input) {
            let mut secure_client = SecureRoundClient::new(params, &self.settings.name)
                .map_err(|e| Interrupt::Local(format!("secure round: {e}")))?;
            let message = secure_client
                .advertise(&mut rand::rng())
                .map_err(|e| Interrupt::Local(format!("secure round: {e}")))?;
            self.disclose(Disclosure {
                plan_id: req.plan_id.clone(),
                round,
                kind: "secure-keys".into(),
                sha256: signed.contribution.update_sha256.clone(),
                records: signed.contribution.num_samples,
            })
            .await?;
            self.secure = Some(SecureSession {
                client: secure_client,
                masked_input,
            });
            let sent = client
                .submit_secure(v1::SecureSubmission {
                    plan_id: req.plan_id,
                    round,
                    message: Some((&message).into()),
                    contribution: Some((&signed).into()),
                })
                .await;
            return refused_is_not_fatal(round, sent);
        }
        self.disclose(Disclosure {
            plan_id: req.plan_id.clone(),
            round,
            kind: "update".into(),
            sha256: signed.contribution.update_sha256.clone(),
            records: signed.contribution.num_samples,
        })
        .await?;
        let sent = client
            .submit_update(v1::ModelUpdate {
                plan_id: req.plan_id,
                weights: Some(model_message(&prepared.weights)),
                contribution: Some((&signed).into()),
            })
            .await;
        refused_is_not_fatal(round, sent)
    }

    /// A step of the round's secure aggregation: share keys, mask the update, or
    /// reveal the shares the coordinator needs to remove masks.
    async fn secure_step(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::SecureStepRequest,
    ) -> Result<(), Interrupt> {
        let task = req
            .task
            .ok_or_else(|| Interrupt::Transport("secure task: the request carries none".into()))
            .and_then(|t| {
                SecureTask::try_from(t)
                    .map_err(|e| Interrupt::Transport(format!("secure task: {e}")))
            })?;
        let Some(session) = self.secure.as_mut() else {
            // The round's secrets died with an earlier process: the others recover this
            // node's share of the masks once the step's deadline passes. Until then the
            // coordinator hands the same step out again; ask at most once a second.
            if self.abandoned_round != Some(req.round) {
                tracing::warn!(
                    round = req.round,
                    "no secure session for this round (restarted?); dropping out of it"
                );
                self.abandoned_round = Some(req.round);
            }
            tokio::time::sleep(ABANDONED_ROUND_POLL).await;
            return Ok(());
        };
        let message = session
            .client
            .respond(&task, &session.masked_input, &mut rand::rng())
            .map_err(|e| Interrupt::Local(format!("secure step: {e}")))?;
        self.disclose(Disclosure {
            plan_id: req.plan_id.clone(),
            round: req.round,
            kind: format!("secure-{}", task.step().name()),
            sha256: String::new(),
            records: 0,
        })
        .await?;
        let sent = client
            .submit_secure(v1::SecureSubmission {
                plan_id: req.plan_id,
                round: req.round,
                message: Some((&message).into()),
                contribution: None,
            })
            .await;
        refused_is_not_fatal(req.round, sent)
    }

    /// Cosign the coordinator's checkpoint with this hospital's witness (in a
    /// blocking task: the witness reads the log tile by tile).
    async fn cosign(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::CosignRequest,
    ) -> Result<(), Interrupt> {
        let mut ledger = self
            .ledger
            .take()
            .ok_or_else(|| Interrupt::Transport("joined without a ledger".into()))?;
        let log = witness::RemoteLog::new(client.clone(), tokio::runtime::Handle::current());
        let now = (ehr::datetime::now_millis() / 1000) as u64;
        let (ledger, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = ledger.cosign(&req.add_checkpoint, &log, now);
            (ledger, outcome)
        })
        .await
        .map_err(|e| Interrupt::Local(format!("witness task failed: {e}")))?;
        self.ledger = Some(ledger);
        let message = match outcome {
            witness::CosignOutcome::Cosigned(line) => v1::Cosignature {
                line,
                witness_size: 0,
                error: String::new(),
            },
            witness::CosignOutcome::Refused {
                error,
                witness_size,
            } => v1::Cosignature {
                line: String::new(),
                witness_size,
                error,
            },
        };
        client
            .submit_cosignature(message)
            .await
            .map_err(from_status)?;
        Ok(())
    }

    /// Charge the round's mechanisms (DP-SGD, client-level DP) to the plan's
    /// budget, persisting the accountant first. Returns the epsilon
    /// (millionths) of the round and in total, or `None` after withdrawing
    /// from the plan because the budget would be exceeded (the update is then
    /// discarded, never sent).
    async fn charge_privacy(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        plan_id: &str,
        plan: &TrainingPlan,
        round: u32,
        events: &[privacy::accountant::SampledGaussian],
    ) -> Result<Option<(u64, u64)>, Interrupt> {
        let Some(budget) = plan.privacy_budget.filter(|_| !events.is_empty()) else {
            return Ok(Some((0, 0)));
        };
        // A round trained again (its attempt restarted, the coordinator restarted) draws the
        // same noise from the node's secret and the round, so it releases the same update:
        // it is charged once.
        if let Some(c) = self.store.charge(plan_id, round).await.map_err(fatal)? {
            return Ok(Some((c.epsilon_round_micro, c.epsilon_total_micro)));
        }
        let budget = budget.accountant_budget();
        let accounting = |e: String| Interrupt::Fatal(NodeError::Privacy(e));
        let accountant = self.store.accountant(plan_id).await.map_err(fatal)?;
        let mut after = accountant.clone();
        let mut alone = privacy::accountant::RdpAccountant::new();
        for event in events {
            after
                .compose(event)
                .map_err(|e| accounting(e.to_string()))?;
            alone
                .compose(event)
                .map_err(|e| accounting(e.to_string()))?;
        }
        let total = budget
            .spent(&after)
            .map_err(|e| accounting(e.to_string()))?;
        if total.epsilon > budget.epsilon_limit {
            let (epsilon, limit) = (total.epsilon, budget.epsilon_limit);
            tracing::warn!(plan = %plan_id, epsilon, limit, "privacy budget would be exceeded; withdrawing from the plan");
            let reason = "privacy-budget-exhausted";
            self.store
                .record_review(
                    plan_id,
                    &plan.to_json(),
                    false,
                    reason,
                    ehr::datetime::now_millis(),
                )
                .await
                .map_err(fatal)?;
            client
                .withdraw(v1::PlanWithdrawal {
                    plan_id: plan_id.to_string(),
                    reason: reason.into(),
                })
                .await
                .map_err(from_status)?;
            return Ok(None);
        }
        let alone_spent = alone
            .epsilon(budget.delta)
            .map_err(|e| accounting(e.to_string()))?;
        let micro = |eps: f64| (eps * 1e6).ceil() as u64;
        let charge = Charge {
            epsilon_round_micro: micro(alone_spent.epsilon),
            epsilon_total_micro: micro(total.epsilon),
        };
        self.store
            .save_charge(plan_id, &after, round, charge)
            .await
            .map_err(fatal)?;
        Ok(Some((
            charge.epsilon_round_micro,
            charge.epsilon_total_micro,
        )))
    }

    async fn evaluate(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::EvaluateRequest,
    ) -> Result<(), Interrupt> {
        let model = decode_model(req.model).map_err(Interrupt::Transport)?;
        let standardizer = req.standardization.map(decode_standardization);
        let models = crate::task::coding_models(&self.settings.data_dir);
        let taggers = crate::task::tagger_models(&self.settings.data_dir);
        let active = self.active(&req.plan_id).await?;
        if let Some(s) = &standardizer {
            active
                .task
                .standardize(s)
                .map_err(|e| local("standardisation")(e.to_string()))?;
        }
        let metrics = active
            .task
            .evaluate(&model)
            .map_err(|e| local("evaluation")(e.to_string()))?;
        match crate::task::keep_coding_model(&active.plan, &model, &models) {
            Ok(Some(dir)) => {
                tracing::info!(dir = %dir.display(), "the plan's final code model kept for coding visits")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the plan's final code model was not kept"),
        }
        match crate::task::keep_tagger_model(&active.plan, &model, &taggers) {
            Ok(Some(file)) => {
                tracing::info!(file = %file.display(), "the plan's final PHI tagger kept")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the plan's final PHI tagger was not kept"),
        }
        let sha = model.sha256_hex();
        self.disclose(Disclosure {
            plan_id: req.plan_id.clone(),
            round: req.round,
            kind: "evaluation".into(),
            sha256: sha.clone(),
            records: metrics.samples,
        })
        .await?;
        client
            .submit_evaluation(v1::Evaluation {
                plan_id: req.plan_id,
                round: req.round,
                model_sha256: sha,
                test_metrics: Some(metrics_message(metrics)),
            })
            .await
            .map_err(from_status)?;
        Ok(())
    }
}
