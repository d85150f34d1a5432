//! The hospital node: it dials the coordinator over mutual TLS, reviews each
//! training plan against the operator's allow-list of code hashes, and
//! answers tasks with computations over its own data: feature sums, locally
//! trained weights (signed with its identity), test metrics. Every message
//! that leaves is logged in the node's own database first.
//!
//! ```no_run
//! # async fn f(settings: node::NodeSettings) -> Result<(), node::NodeError> {
//! let outcome = node::run(settings).await?;
//! println!("plan finished: {outcome}");
//! # Ok(()) }
//! ```

pub mod api;
pub mod config;
pub mod imaging;
pub mod source;
pub mod store;
pub mod witness;

use std::time::Duration;

use fed::client::{LocalData, train_round};
use fed::plan::TrainingPlan;
use learn::Standardizer;
use protocol::convert::{decode_model, decode_standardization, metrics_message, model_message};
use protocol::v1::{self, coordinator_client::CoordinatorClient, task::Kind};
use tonic::Code;
use tonic::transport::Channel;

pub use config::{NodeConfig, NodeSettings};
use store::{Disclosure, NodeStore};

/// How long the node's API waits for a request head before closing the
/// connection (half-open and stalled clients hold nothing for long).
const API_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The coordinator refused this node (unknown, revoked, wrong protocol).
    #[error("the coordinator refused this node: {0}")]
    Refused(String),
    /// TLS or address configuration is wrong.
    #[error(transparent)]
    Tls(#[from] protocol::tls::TlsError),
    /// The node's database failed.
    #[error("node database: {0}")]
    Store(#[from] sqlx::Error),
    /// The identity key is unusable.
    #[error("identity key: {0}")]
    Identity(#[from] pki::Error),
    /// The data source failed.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// Privacy accounting failed.
    #[error("privacy accounting: {0}")]
    Privacy(String),
    /// The node's HTTP API could not start.
    #[error("node API: {0}")]
    Api(String),
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The plan the node is working on, with its data prepared for it.
struct ActivePlan {
    plan_id: String,
    plan: TrainingPlan,
    raw: LocalData,
    prepared: Option<(Standardizer, LocalData)>,
}

impl ActivePlan {
    fn data(&mut self, s: Option<Standardizer>) -> Result<&LocalData, String> {
        let Some(s) = s else {
            return Ok(&self.raw);
        };
        if self.prepared.as_ref().map(|(p, _)| p) != Some(&s) {
            let data = self.raw.standardized(&s).map_err(|e| e.to_string())?;
            self.prepared = Some((s, data));
        }
        Ok(&self.prepared.as_ref().expect("just set").1)
    }
}

/// The node's side of the open round's secure aggregation.
struct SecureSession {
    client: fed::secure_round::SecureRoundClient,
    /// `[n·(w − g)..., n]`, what gets masked.
    encoded: Vec<f32>,
}

struct Node {
    secure: Option<SecureSession>,
    settings: NodeSettings,
    signing_key: ed25519_dalek::SigningKey,
    store: NodeStore,
    active: Option<ActivePlan>,
    ledger: Option<witness::NodeLedger>,
}

/// Errors inside one connection: transport ones lead to a reconnect.
enum Interrupt {
    Transport(String),
    Fatal(NodeError),
    Done(String),
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

/// A node that has started: its API address and its federation client.
pub struct RunningNode {
    /// Where the node's HTTP API listens, when configured.
    pub api_address: Option<std::net::SocketAddr>,
    /// Where its DICOM receiver listens, when configured.
    pub dicom_address: Option<std::net::SocketAddr>,
    client: tokio::task::JoinHandle<Result<String, NodeError>>,
    api: Option<tokio::task::JoinHandle<()>>,
    dicom: Option<tokio::task::JoinHandle<()>>,
}

impl RunningNode {
    /// Wait for the federation client to stop; returns the plan's outcome.
    pub async fn wait(self) -> Result<String, NodeError> {
        let outcome = match self.client.await {
            Ok(outcome) => outcome,
            Err(e) => Err(NodeError::Refused(format!("node task failed: {e}"))),
        };
        if let Some(api) = self.api {
            api.abort();
        }
        if let Some(dicom) = self.dicom {
            dicom.abort();
        }
        outcome
    }

    /// Stop the node at once (as if its machine went away).
    pub fn abort(&self) {
        self.client.abort();
        if let Some(api) = &self.api {
            api.abort();
        }
        if let Some(dicom) = &self.dicom {
            dicom.abort();
        }
    }
}

/// Open the node's store, bind its API (when `settings.listen` is set) and
/// start the federation client.
pub async fn start(settings: NodeSettings) -> Result<RunningNode, NodeError> {
    let store = NodeStore::open(&settings.data_dir).await?;
    let (images, dicom_address, dicom) = match (&settings.imaging, &settings.ehr) {
        (Some(imaging_settings), Some(ehr_store)) => {
            let (service, receiver) = imaging::start(imaging_settings, ehr_store.clone())
                .await
                .map_err(|e| NodeError::Api(format!("imaging: {e}")))?;
            let (address, task) = receiver.unzip();
            (Some(service), address, task)
        }
        (Some(_), None) => {
            return Err(NodeError::Api(
                "imaging needs the node's EHR (ehr_db) to file studies".into(),
            ));
        }
        _ => (None, None, None),
    };
    let (api_address, api) = match settings.listen {
        None => (None, None),
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| NodeError::Api(format!("cannot listen on {address}: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(|e| NodeError::Api(e.to_string()))?;
            let app = api::router(
                settings.name.clone(),
                store.clone(),
                settings.ehr.clone(),
                images,
            );
            let task = tokio::spawn(async move {
                if let Err(e) = ::imaging::http::serve(listener, app, API_READ_TIMEOUT).await {
                    tracing::error!(error = %e, "node API stopped");
                }
            });
            tracing::info!(node = %settings.name, address = %bound, "node API listening");
            (Some(bound), Some(task))
        }
    };
    let client = tokio::spawn(run_client(settings, store));
    Ok(RunningNode {
        api_address,
        dicom_address,
        client,
        api,
        dicom,
    })
}

/// Run the node until its plan is over (when `exit_when_done`) or forever,
/// reconnecting whenever the coordinator is unreachable. Returns the plan's
/// outcome.
pub async fn run(settings: NodeSettings) -> Result<String, NodeError> {
    start(settings).await?.wait().await
}

async fn run_client(settings: NodeSettings, store: NodeStore) -> Result<String, NodeError> {
    let signing_key = {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&settings.tls.key_pem)
            .map_err(|e| NodeError::Refused(format!("identity key: {e}")))?
    };
    let mut node = Node {
        secure: None,
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
            if let Err(interrupt) = step {
                return interrupt;
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
        if !self.settings.approved_code_hashes.contains(&code_hash) {
            return Err(format!(
                "code {code_hash} is not on this hospital's allow-list"
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

    async fn review(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        offer: v1::PlanOffer,
    ) -> Result<(), Interrupt> {
        let decision = match self.decide(&offer) {
            Ok(plan) => match self.settings.source.load().await {
                Ok(table) => table
                    .data
                    .check(&plan)
                    .map(|_| (plan, table))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        let decision = decision.and_then(|(plan, table)| {
            let ledger = self
                .ledger
                .as_ref()
                .ok_or("no ledger to record the approval in")?;
            let approval = ledger.approve(&plan, &offer.registration_entry)?;
            let dataset = ledger.dataset_prepared(&plan, &offer.registration_entry, &table)?;
            Ok((plan, table.data, approval, dataset))
        });
        let (approved, reason, approval_entry, dataset_entry) = match decision {
            Ok((plan, raw, approval, dataset)) => {
                self.active = Some(ActivePlan {
                    plan_id: offer.plan_id.clone(),
                    plan,
                    raw,
                    prepared: None,
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
                now_unix_ms(),
            )
            .await
            .map_err(|e| Interrupt::Fatal(e.into()))?;
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
        if self.active.as_ref().map(|a| a.plan_id.as_str()) != Some(plan_id) {
            let json = self
                .store
                .approved_plan(plan_id)
                .await
                .map_err(|e| Interrupt::Fatal(e.into()))?
                .ok_or_else(|| {
                    Interrupt::Fatal(NodeError::Refused(format!(
                        "asked to work on plan {plan_id}, which this node never approved"
                    )))
                })?;
            let plan = TrainingPlan::from_json(&json)
                .map_err(|e| Interrupt::Fatal(NodeError::Refused(e.to_string())))?;
            let raw = self
                .settings
                .source
                .load()
                .await
                .map_err(|e| Interrupt::Fatal(e.into()))?
                .data;
            self.active = Some(ActivePlan {
                plan_id: plan_id.to_string(),
                plan,
                raw,
                prepared: None,
            });
        }
        Ok(self.active.as_mut().expect("just set"))
    }

    async fn disclose(&self, d: Disclosure) -> Result<(), Interrupt> {
        self.store
            .record_disclosure(&d, now_unix_ms())
            .await
            .map_err(|e| Interrupt::Fatal(e.into()))
    }

    async fn statistics(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::StatisticsRequest,
    ) -> Result<(), Interrupt> {
        let stats = self.active(&req.plan_id).await?.raw.statistics();
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

    async fn train(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::TrainRequest,
    ) -> Result<(), Interrupt> {
        let name = self.settings.name.clone();
        let global = decode_model(req.global_model).map_err(Interrupt::Transport)?;
        let standardizer = req.standardization.map(decode_standardization);
        let active = self.active(&req.plan_id).await?;
        let plan = active.plan.clone();
        let data = active
            .data(standardizer)
            .map_err(Interrupt::Transport)?
            .clone();
        let round = req.round;
        let secret = match plan.privacy_budget {
            Some(_) => Some(
                self.store
                    .secret()
                    .await
                    .map_err(|e| Interrupt::Fatal(e.into()))?,
            ),
            None => None,
        };
        let secure_params = if req.secure_params.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice::<fed::secure_round::SecureRoundParams>(&req.secure_params)
                    .map_err(|e| Interrupt::Transport(format!("secure parameters: {e}")))?,
            )
        };
        let global_values = global.values().to_vec();
        let update = tokio::task::spawn_blocking(move || {
            train_round(&plan, &name, round, &global, &data, secret.as_ref()).map(|u| (u, plan))
        })
        .await
        .map_err(|e| Interrupt::Transport(format!("training task failed: {e}")))?;
        let (mut update, plan) = match update {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(round, error = %e, "local training failed; skipping the round");
                return Ok(());
            }
        };
        let mut privacy_events: Vec<_> = update.privacy.into_iter().collect();
        let mut client_dp_encoded = None;
        if let Some(dp) = plan.client_dp {
            let (Some(params), Some(secret)) = (secure_params.as_ref(), secret.as_ref()) else {
                tracing::error!(
                    round,
                    "client-level DP needs a secure round; skipping the round"
                );
                return Ok(());
            };
            let clip = params.client_clip_norm.unwrap_or(dp.clip_norm);
            let mut rng = fed::client_dp::node_noise_rng(secret, &req.plan_id, round);
            let private = dp
                .privatize(
                    clip,
                    params.threshold,
                    &global_values,
                    update.weights.values(),
                    &mut rng,
                )
                .and_then(|p| {
                    let weights = update.weights.with_values(p.weights).map_err(|e| {
                        fed::secure_round::SecureRoundError::InvalidParams(e.to_string())
                    })?;
                    Ok((weights, p.encoded))
                });
            match private {
                Ok((weights, encoded)) => {
                    update.weights = weights;
                    client_dp_encoded = Some(encoded);
                    privacy_events.push(dp.record_level_event());
                }
                Err(e) => {
                    tracing::error!(round, error = %e, "client-level DP failed; skipping the round");
                    return Ok(());
                }
            }
        }
        let Some((epsilon_round_micro, epsilon_total_micro)) = self
            .charge_privacy(client, &req.plan_id, &plan, &privacy_events)
            .await?
        else {
            return Ok(());
        };
        let model = model_message(&update.weights);
        let code_hash = plan.code_hash();
        let facts = fed::record::UpdateFacts {
            plan: &plan,
            round,
            update_sha256: &model.sha256,
            num_samples: update.num_samples,
            train: update.train,
            epsilon_round_micro,
            epsilon_total_micro,
        };
        let contribution_entry = self
            .ledger
            .as_ref()
            .ok_or_else(|| Interrupt::Transport("joined without a ledger".into()))?
            .contribution(&facts)
            .map_err(|e| {
                Interrupt::Fatal(NodeError::Refused(format!("contribution entry: {e}")))
            })?;
        if let Some(params) = secure_params {
            let encoded = match client_dp_encoded {
                Some(encoded) => encoded,
                None => fed::secure_round::encode_update(
                    &global_values,
                    update.weights.values(),
                    update.num_samples,
                )
                .map_err(|e| Interrupt::Transport(format!("secure encoding: {e}")))?,
            };
            let mut secure_client =
                fed::secure_round::SecureRoundClient::new(params, &self.settings.name)
                    .map_err(|e| Interrupt::Transport(format!("secure round: {e}")))?;
            let message = secure_client
                .advertise(&mut rand::rng())
                .and_then(|m| m.to_json())
                .map_err(|e| Interrupt::Transport(format!("secure round: {e}")))?;
            self.disclose(Disclosure {
                plan_id: req.plan_id.clone(),
                round,
                kind: "secure-keys".into(),
                sha256: model.sha256.clone(),
                records: update.num_samples,
            })
            .await?;
            self.secure = Some(SecureSession {
                client: secure_client,
                encoded,
            });
            let info = v1::SecureUpdateInfo {
                update_sha256: model.sha256,
                num_samples: update.num_samples,
                train_metrics: Some(metrics_message(update.train)),
                global_test_metrics: Some(metrics_message(update.global_test)),
                code_hash,
                contribution_entry,
                epsilon_round_micro,
                epsilon_total_micro,
            };
            let sent = client
                .submit_secure(v1::SecureSubmission {
                    plan_id: req.plan_id,
                    round,
                    message,
                    update: Some(info),
                })
                .await;
            return refused_is_not_fatal(round, sent);
        }
        self.disclose(Disclosure {
            plan_id: req.plan_id.clone(),
            round,
            kind: "update".into(),
            sha256: model.sha256.clone(),
            records: update.num_samples,
        })
        .await?;
        let sent = client
            .submit_update(v1::ModelUpdate {
                plan_id: req.plan_id,
                round,
                weights: Some(model),
                num_samples: update.num_samples,
                train_metrics: Some(metrics_message(update.train)),
                global_test_metrics: Some(metrics_message(update.global_test)),
                code_hash,
                contribution_entry,
                epsilon_round_micro,
                epsilon_total_micro,
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
        let task = fed::secure_round::SecureTask::from_json(&req.task)
            .map_err(|e| Interrupt::Transport(format!("secure task: {e}")))?;
        let Some(session) = self.secure.as_mut() else {
            tracing::warn!(
                round = req.round,
                "no secure session for this round (restarted?); dropping out"
            );
            return Ok(());
        };
        let message = session
            .client
            .respond(&task, &session.encoded, &mut rand::rng())
            .and_then(|m| m.to_json())
            .map_err(|e| Interrupt::Transport(format!("secure step: {e}")))?;
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
                message,
                update: None,
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
        let now = (now_unix_ms() / 1000) as u64;
        let (ledger, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = ledger.cosign(&req.add_checkpoint, &log, now);
            (ledger, outcome)
        })
        .await
        .map_err(|e| Interrupt::Transport(format!("witness task failed: {e}")))?;
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
        events: &[privacy::accountant::SampledGaussian],
    ) -> Result<Option<(u64, u64)>, Interrupt> {
        let Some(budget) = plan.privacy_budget.filter(|_| !events.is_empty()) else {
            return Ok(Some((0, 0)));
        };
        let budget = budget.accountant_budget();
        let fatal = |e: String| Interrupt::Fatal(NodeError::Privacy(e));
        let accountant = self
            .store
            .accountant(plan_id)
            .await
            .map_err(|e| Interrupt::Fatal(e.into()))?;
        let mut after = accountant.clone();
        let mut alone = privacy::accountant::RdpAccountant::new();
        for event in events {
            after.compose(event).map_err(|e| fatal(e.to_string()))?;
            alone.compose(event).map_err(|e| fatal(e.to_string()))?;
        }
        let total = budget.spent(&after).map_err(|e| fatal(e.to_string()))?;
        if total.epsilon > budget.epsilon_limit {
            let (epsilon, limit) = (total.epsilon, budget.epsilon_limit);
            tracing::warn!(plan = %plan_id, epsilon, limit, "privacy budget would be exceeded; withdrawing from the plan");
            let reason = "privacy-budget-exhausted";
            self.store
                .record_review(plan_id, &plan.to_json(), false, reason, now_unix_ms())
                .await
                .map_err(|e| Interrupt::Fatal(e.into()))?;
            client
                .withdraw(v1::PlanWithdrawal {
                    plan_id: plan_id.to_string(),
                    reason: reason.into(),
                })
                .await
                .map_err(from_status)?;
            return Ok(None);
        }
        let round = alone
            .epsilon(budget.delta)
            .map_err(|e| fatal(e.to_string()))?;
        self.store
            .save_accountant(plan_id, &after)
            .await
            .map_err(|e| Interrupt::Fatal(e.into()))?;
        let micro = |eps: f64| (eps * 1e6).ceil() as u64;
        Ok(Some((micro(round.epsilon), micro(total.epsilon))))
    }

    async fn evaluate(
        &mut self,
        client: &mut CoordinatorClient<Channel>,
        req: v1::EvaluateRequest,
    ) -> Result<(), Interrupt> {
        let model = decode_model(req.model).map_err(Interrupt::Transport)?;
        let standardizer = req.standardization.map(decode_standardization);
        let active = self.active(&req.plan_id).await?;
        let spec = active.plan.model.clone();
        let test = active
            .data(standardizer)
            .map_err(Interrupt::Transport)?
            .test
            .clone();
        let metrics = learn::evaluate(&spec, &model, &test)
            .map_err(|e| Interrupt::Transport(format!("evaluation failed: {e}")))?;
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
