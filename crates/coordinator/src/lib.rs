//! The coordinator: serves the `cohort.fed.v1.Coordinator` gRPC service over
//! mutual TLS, runs one training plan through [`fed::plan_run::PlanRun`], and
//! persists every accepted message before acknowledging it, so a restarted
//! coordinator resumes where it stopped.
//!
//! ```no_run
//! # async fn f(settings: coordinator::CoordinatorSettings) -> Result<(), coordinator::CoordinatorError> {
//! let running = coordinator::start(settings).await?;
//! println!("listening on {}", running.address());
//! let final_state = running.wait_finished().await;
//! # let _ = final_state; Ok(()) }
//! ```

pub mod config;
pub mod federation_log;
pub mod registry;
mod service;
pub mod store;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fed::plan_run::{PlanEvent, PlanRun, PlanState};
use protocol::v1::coordinator_server::CoordinatorServer;
use tokio::sync::{Mutex, broadcast, watch};
use tokio::task::JoinHandle;

pub use config::{CoordinatorConfig, CoordinatorSettings};
pub use store::CoordinatorStore;

use registry::Registry;
use service::CoordinatorService;

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The plan state could not be created or restored.
    #[error("plan: {0}")]
    Run(#[from] fed::plan_run::RunError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS set-up failed.
    #[error("TLS: {0}")]
    Tls(tonic::transport::Error),
    /// The ledger could not be opened or kept in step.
    #[error(transparent)]
    Ledger(#[from] federation_log::LedgerError),
    /// The coordinator's key is unusable.
    #[error("coordinator identity key: {0}")]
    Identity(String),
    /// A stored state belongs to a different plan.
    #[error("stored artifact {sha256} could not be loaded: {message}")]
    Artifact {
        /// Which.
        sha256: String,
        /// Why.
        message: String,
    },
    /// The web console could not start (e.g. its OpenID Connect provider did not answer).
    #[error("console: {0}")]
    Console(String),
}

/// Current Unix time in milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// State shared by the service and the deadline driver.
pub(crate) struct Shared {
    federation: String,
    registry: Registry,
    plan_id: String,
    plan: fed::plan::TrainingPlan,
    plan_json: String,
    /// The plan's PlanRegistered entry, signed by the coordinator.
    registration: ::ledger::entry::SignedEntry,
    /// The ledger's origin (fixed for the coordinator's lifetime).
    ledger_origin: ::ledger::entry::LogOrigin,
    code_hash: String,
    run: Mutex<PlanRun>,
    ledger: Mutex<federation_log::FederationLedger>,
    /// Hospitals that have been told the plan is over.
    released: Mutex<std::collections::BTreeSet<String>>,
    store: CoordinatorStore,
    changed: watch::Sender<u64>,
    events: broadcast::Sender<PlanEvent>,
}

impl Shared {
    /// Store new artifacts, then the state, then bring the ledger in step.
    async fn persist(&self, run: &mut PlanRun, now: i64) -> Result<(), CoordinatorError> {
        for (sha, weights) in run.take_unsaved() {
            self.store.put_artifact(&sha, &weights).await?;
        }
        self.store.save_state(run.state(), now).await?;
        self.ledger
            .lock()
            .await
            .sync(run.state(), run.is_finished())?;
        Ok(())
    }

    /// Wake pollers and tell subscribers what happened.
    fn publish(&self, events: Vec<PlanEvent>) {
        for event in events {
            log_event(&event);
            let _ = self.events.send(event);
        }
        self.changed.send_modify(|v| *v += 1);
    }
}

fn log_event(event: &PlanEvent) {
    match event {
        PlanEvent::Approved(p) => tracing::info!(participants = ?p, "plan approved"),
        PlanEvent::Standardized => tracing::info!("federated standardisation computed"),
        PlanEvent::RoundAggregated(r) => tracing::info!(
            round = r.round,
            contributors = r.contributions.len(),
            missing = ?r.missing,
            model = %r.output_sha256,
            "round aggregated"
        ),
        PlanEvent::Reopened { phase, attempt } => {
            tracing::warn!(%phase, attempt, "quorum missed, phase reopened")
        }
        PlanEvent::SecureStep {
            round,
            step,
            dropped,
        } => tracing::debug!(round, %step, ?dropped, "secure aggregation step"),
        PlanEvent::Completed => tracing::info!("plan completed"),
        PlanEvent::Failed(reason) => tracing::error!(%reason, "plan failed"),
    }
}

/// Where the ledger stands.
pub struct LedgerSummary {
    /// Entries in the log (genesis included).
    pub size: u64,
    /// Entries covered by the published checkpoint.
    pub published_size: u64,
    /// The published checkpoint as a signed note with its cosignatures.
    pub published_checkpoint: Option<String>,
    /// The log directory (C2SP tiles).
    pub log_dir: std::path::PathBuf,
    /// The policy an auditor verifies it with.
    pub policy: ::ledger::policy::Policy,
}

/// A running coordinator.
pub struct RunningCoordinator {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    driver: JoinHandle<()>,
    /// The web console's address and task, when configured.
    console: Option<(SocketAddr, JoinHandle<()>)>,
}

impl RunningCoordinator {
    /// The address the service listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where the web console listens, when configured.
    pub fn console_address(&self) -> Option<SocketAddr> {
        self.console.as_ref().map(|(address, _)| *address)
    }

    /// Events as they happen (rounds aggregated, completion...).
    pub fn subscribe(&self) -> broadcast::Receiver<PlanEvent> {
        self.shared.events.subscribe()
    }

    /// A copy of the plan's current state.
    pub async fn state(&self) -> PlanState {
        self.shared.run.lock().await.state().clone()
    }

    /// The ledger: entries so far, the published (cosigned) checkpoint and
    /// where the log and its policy are.
    pub async fn ledger_summary(&self) -> LedgerSummary {
        let ledger = self.shared.ledger.lock().await;
        LedgerSummary {
            size: ledger.size(),
            published_size: ledger.published_size(),
            published_checkpoint: ledger.published_note(),
            log_dir: ledger.log_dir().to_path_buf(),
            policy: ledger.policy().clone(),
        }
    }

    /// Wait until the ledger's whole content is in a published checkpoint
    /// (the witnesses have cosigned it), or `timeout` passes.
    pub async fn wait_ledger_published(&self, timeout: Duration) -> LedgerSummary {
        let mut changed = self.shared.changed.subscribe();
        let give_up = tokio::time::Instant::now() + timeout;
        loop {
            let summary = self.ledger_summary().await;
            if summary.published_size == summary.size {
                return summary;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return summary; },
                _ = tokio::time::sleep_until(give_up) => return summary,
            }
        }
    }

    /// Wait until every participant of the finished plan has been told so (and
    /// so has cosigned the final checkpoint first), or `timeout` passes.
    pub async fn wait_released(&self, timeout: Duration) {
        let mut changed = self.shared.changed.subscribe();
        let give_up = tokio::time::Instant::now() + timeout;
        loop {
            let present: Vec<String> = {
                let run = self.shared.run.lock().await;
                let s = run.state();
                s.participants
                    .iter()
                    .filter(|p| !s.absent.contains(p))
                    .cloned()
                    .collect()
            };
            let released = self.shared.released.lock().await;
            if present.iter().all(|p| released.contains(p)) {
                return;
            }
            drop(released);
            tokio::select! {
                r = changed.changed() => if r.is_err() { return; },
                _ = tokio::time::sleep_until(give_up) => return,
            }
        }
    }

    /// Raw safetensors bytes of a stored model.
    pub async fn model_bytes(&self, sha256: &str) -> Result<Vec<u8>, store::StoreError> {
        self.shared.store.artifact_bytes(sha256).await
    }

    /// Wait until the plan is over, and return its final state.
    pub async fn wait_finished(&self) -> PlanState {
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let run = self.shared.run.lock().await;
                if run.is_finished() {
                    return run.state().clone();
                }
            }
            if changed.changed().await.is_err() {
                return self.state().await;
            }
        }
    }

    /// Stop serving (in-flight calls are cut).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.driver.abort();
        if let Some((_, console)) = &self.console {
            console.abort();
        }
        let _ = self.server.await;
    }
}

/// Open the store, restore or create the plan, and start serving.
pub async fn start(settings: CoordinatorSettings) -> Result<RunningCoordinator, CoordinatorError> {
    let store = CoordinatorStore::open(&settings.data_dir).await?;
    let plan = settings.plan.clone();
    let plan_id = plan.plan_id();
    let now = now_unix_ms();
    let run = match store.load_state(&plan_id).await? {
        Some(state) => {
            let mut artifacts = std::collections::HashMap::new();
            for sha in fed::plan_run::referenced_artifacts(&state) {
                let weights = store.get_artifact(&sha).await?;
                artifacts.insert(sha, weights);
            }
            tracing::info!(plan = %plan_id, round = state.round, phase = ?state.phase, "resuming stored plan");
            PlanRun::restore(state, |sha| artifacts.remove(sha))?
        }
        None => {
            tracing::info!(plan = %plan_id, "starting new plan");
            PlanRun::new(plan.clone(), now)?
        }
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| CoordinatorError::Bind {
            address: settings.listen,
            source,
        })?;
    let address = listener
        .local_addr()
        .map_err(|source| CoordinatorError::Bind {
            address: settings.listen,
            source,
        })?;
    let key = {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&settings.tls.key_pem)
            .map_err(|e| CoordinatorError::Identity(e.to_string()))?
    };
    let hospitals: Vec<federation_log::LedgerParty> = settings
        .registry
        .parties()
        .into_iter()
        .map(|p| federation_log::LedgerParty {
            name: p.name.clone(),
            key: p.public_key,
        })
        .collect();
    let quorum = (hospitals.len() / 2 + 1) as u16;
    let federation_ledger = federation_log::FederationLedger::open(
        &settings.data_dir.join("ledger"),
        &settings.federation,
        key,
        &hospitals,
        quorum,
    )?;
    let (changed, _) = watch::channel(0);
    let (events, _) = broadcast::channel(1024);
    let shared = Arc::new(Shared {
        federation: settings.federation.clone(),
        registry: settings.registry.clone(),
        plan_id,
        registration: federation_ledger.registration(run.state())?,
        ledger_origin: federation_ledger.origin().clone(),
        plan_json: plan.to_json(),
        plan: plan.clone(),
        code_hash: plan.code_hash(),
        run: Mutex::new(run),
        ledger: Mutex::new(federation_ledger),
        released: Mutex::new(std::collections::BTreeSet::new()),
        store,
        changed,
        events,
    });
    {
        let mut run = shared.run.lock().await;
        shared.persist(&mut run, now).await?;
    }
    let service = CoordinatorServer::new(CoordinatorService {
        shared: shared.clone(),
    })
    .max_decoding_message_size(protocol::MAX_MESSAGE_BYTES)
    .max_encoding_message_size(protocol::MAX_MESSAGE_BYTES);
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .tls_config(protocol::tls::server_config(&settings.tls))
        .map_err(CoordinatorError::Tls)?
        .add_service(service)
        .serve_with_incoming_shutdown(
            // Small request/response exchanges: without TCP_NODELAY, Nagle's
            // algorithm and delayed ACKs add ~40 ms to every round trip.
            tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |conn| {
                    conn.inspect(|stream| {
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
                        }
                    })
                },
            ),
            async {
                let _ = shutdown_rx.await;
            },
        );
    let server = tokio::spawn(server);
    let driver = tokio::spawn(drive_deadlines(shared.clone()));
    let console = match &settings.console {
        Some(c) => Some(web::start(shared.clone(), c).await?),
        None => None,
    };
    tracing::info!(%address, federation = %settings.federation, "coordinator listening");
    Ok(RunningCoordinator {
        address,
        shared,
        shutdown: Some(shutdown_tx),
        server,
        driver,
        console,
    })
}

/// Close phases whose deadline passed (the state machine decides what is due).
async fn drive_deadlines(shared: Arc<Shared>) {
    loop {
        let wait = {
            let run = shared.run.lock().await;
            match run.deadline_unix_ms() {
                None => return,
                Some(deadline) => (deadline - now_unix_ms() + 1).clamp(10, 1000),
            }
        };
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        let mut run = shared.run.lock().await;
        let now = now_unix_ms();
        let events = run.advance(now);
        if events.is_empty() {
            continue;
        }
        if let Err(e) = shared.persist(&mut run, now).await {
            tracing::error!(error = %e, "could not store the plan state");
        }
        drop(run);
        shared.publish(events);
    }
}
