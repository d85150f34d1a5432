//! The hospital's web console on the node: `console::node`'s pages over this
//! node's EHR, imaging service, disclosures log and plan approvals.

use std::net::SocketAddr;
use std::sync::Arc;

use console::node::{
    Disclosure, DisclosureLog, MemoryApprovals, NodeConsole, Transcription, Upload,
};
use futures::future::BoxFuture;

use crate::NodeError;
use crate::store::NodeStore;

impl DisclosureLog for NodeStore {
    fn disclosures(&self) -> BoxFuture<'_, Result<Vec<Disclosure>, String>> {
        Box::pin(async move {
            let log = NodeStore::disclosures(self)
                .await
                .map_err(|e| e.to_string())?;
            Ok(log
                .into_iter()
                .map(|r| Disclosure {
                    plan_id: r.disclosure.plan_id,
                    round: r.disclosure.round,
                    kind: r.disclosure.kind,
                    sha256: r.disclosure.sha256,
                    records: r.disclosure.records,
                    unix_ms: Some(r.unix_ms),
                })
                .collect())
        })
    }
}

impl Transcription for crate::dictation::Dictation {
    fn transcribe(&self, upload: Upload) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let recording = crate::dictation::Recording {
                patient: upload.patient,
                encounter: Some(upload.encounter),
                audio: upload.audio,
                content_type: upload.content_type,
                language: Some(upload.language),
            };
            self.file(recording)
                .await
                .map(|filed| filed.id().to_string())
                .map_err(|e| e.to_string())
        })
    }

    fn max_bytes(&self) -> usize {
        self.settings().max_bytes
    }
}

/// What the console shows and changes, as the node hands it over.
pub(crate) struct ConsoleParts {
    pub hospital: String,
    pub ehr: ehr::Store,
    pub images: Option<Arc<imaging::Imaging>>,
    pub store: NodeStore,
    pub approvals: Arc<MemoryApprovals>,
    /// Where the final models of the coding plans it took part in are kept.
    pub coding_models: std::path::PathBuf,
    /// Speech-to-text into the record, when configured.
    pub dictation: Option<Arc<crate::dictation::Dictation>>,
}

/// Serve the console on `settings.listen`; returns its address and task.
pub(crate) async fn start(
    parts: ConsoleParts,
    settings: &console::ConsoleSettings,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NodeError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| {
            NodeError::Api(format!(
                "console: cannot listen on {}: {e}",
                settings.listen
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| NodeError::Api(e.to_string()))?;
    let oidc = console::oidc_provider(settings)
        .await
        .map_err(|e| NodeError::Api(format!("console OpenID Connect: {e}")))?;
    let router = console::node::router(
        NodeConsole {
            hospital: parts.hospital.clone(),
            ehr: parts.ehr,
            images: parts.images,
            disclosures: Arc::new(parts.store),
            approvals: parts.approvals,
            oidc,
            coding_models: Some(parts.coding_models),
            dictation: parts.dictation.map(|d| -> Arc<dyn Transcription> { d }),
        },
        settings,
    );
    let task = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!(error = %e, "node console stopped");
        }
    });
    tracing::info!(node = %parts.hospital, %address, "node console listening");
    Ok((address, task))
}
