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
mod client;
pub mod config;
mod console;
pub mod dictation;
pub mod imaging;
pub mod memory;
pub mod source;
pub mod store;
pub mod task;
pub mod witness;

use std::time::Duration;

pub use config::{NodeConfig, NodeSettings};
use store::NodeStore;

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

/// A node that has started: its API address and its federation client.
pub struct RunningNode {
    /// Where the node's HTTP API listens, when configured.
    pub api_address: Option<std::net::SocketAddr>,
    /// Where its DICOM receiver listens, when configured.
    pub dicom_address: Option<std::net::SocketAddr>,
    /// Where its web console listens, when configured.
    pub console_address: Option<std::net::SocketAddr>,
    client: tokio::task::JoinHandle<Result<String, NodeError>>,
    api: Option<tokio::task::JoinHandle<()>>,
    dicom: Option<tokio::task::JoinHandle<()>>,
    console: Option<tokio::task::JoinHandle<()>>,
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
        for task in [self.dicom, self.console].into_iter().flatten() {
            task.abort();
        }
        if let Some(peak) = memory::peak_resident_bytes() {
            tracing::info!(peak_mib = peak >> 20, "node stopped");
        }
        outcome
    }

    /// Stop the node at once (as if its machine went away).
    pub fn abort(&self) {
        self.client.abort();
        if let Some(api) = &self.api {
            api.abort();
        }
        for task in [&self.dicom, &self.console].into_iter().flatten() {
            task.abort();
        }
    }
}

/// Open the node's store, bind its API (when `settings.listen` is set) and
/// start the federation client.
pub async fn start(settings: NodeSettings) -> Result<RunningNode, NodeError> {
    let store = NodeStore::open(&settings.data_dir).await?;
    if let Some(secret) = settings.secret {
        store.install_secret(secret).await?;
    }
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
    let dictation = match (&settings.dictation, &settings.ehr) {
        (Some(dictation_settings), Some(ehr_store)) => Some(std::sync::Arc::new(
            dictation::Dictation::new(ehr_store.clone(), dictation_settings.clone()),
        )),
        (Some(_), None) => {
            return Err(NodeError::Api(
                "dictation needs the node's EHR (ehr_db) to file transcripts".into(),
            ));
        }
        _ => None,
    };
    let approvals = match &settings.console {
        Some(_) => Some(std::sync::Arc::new(
            ::console::node::MemoryApprovals::new(settings.approved_code_hashes.clone())
                .map_err(|e| NodeError::Api(format!("console: {e}")))?,
        )),
        None => None,
    };
    let (console_address, console_task) = match (&settings.console, &approvals) {
        (Some(console_settings), Some(approvals)) => {
            let ehr = settings.ehr.clone().ok_or_else(|| {
                NodeError::Api("the console needs the node's EHR (ehr_db)".into())
            })?;
            let parts = console::ConsoleParts {
                hospital: settings.name.clone(),
                ehr,
                images: images.clone(),
                store: store.clone(),
                approvals: approvals.clone(),
                coding_models: task::coding_models(&settings.data_dir),
                dictation: dictation.clone(),
            };
            let (address, task) = console::start(parts, console_settings).await?;
            (Some(address), Some(task))
        }
        _ => (None, None),
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
                dictation,
            );
            let app = match &settings.memory {
                Some(plan) => memory::guarded(app, plan),
                None => app,
            };
            let task = tokio::spawn(async move {
                if let Err(e) = ::imaging::http::serve(listener, app, API_READ_TIMEOUT).await {
                    tracing::error!(error = %e, "node API stopped");
                }
            });
            tracing::info!(node = %settings.name, address = %bound, "node API listening");
            (Some(bound), Some(task))
        }
    };
    let client = tokio::spawn(client::run(settings, store, approvals));
    Ok(RunningNode {
        api_address,
        dicom_address,
        console_address,
        client,
        api,
        dicom,
        console: console_task,
    })
}

/// Run the node until its plan is over (when `exit_when_done`) or forever,
/// reconnecting whenever the coordinator is unreachable. Returns the plan's
/// outcome.
pub async fn run(settings: NodeSettings) -> Result<String, NodeError> {
    start(settings).await?.wait().await
}
