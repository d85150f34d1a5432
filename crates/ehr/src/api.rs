//! The FHIR R4 REST API as an axum [`Router`]: `cohort ehr serve` runs it alone, the node mounts
//! it on its own HTTP port.
//!
//! Every request but `GET /metadata` needs a bearer token (see [`crate::auth`]); every read or
//! write of patient data, and every refused request, is recorded as an AuditEvent in the same
//! store. AuditEvents are written by the server only. Serve the router with
//! `into_make_service_with_connect_info::<SocketAddr>()` so that AuditEvents carry the client's
//! address.

mod bundles;
mod caller;
mod capability;
mod everything;
mod export;
mod instance;
mod refusals;
mod response;
mod system;
mod type_level;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::store::Store;

pub use response::http_date;

/// Settings of the API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The public base URL (e.g. `https://ehr.hospital.example/fhir`). When `None`, it is
    /// derived from each request's `Host` header and the path the router is mounted at.
    pub base_url: Option<String>,
    /// This server's name in AuditEvents (`AuditEvent.source.observer`).
    pub observer: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: None,
            observer: "cohort-ehr".to_string(),
        }
    }
}

/// What the handlers share: the store, the settings and the bulk-export jobs.
#[derive(Clone)]
pub struct EhrState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ApiConfig,
    exports: export::Jobs,
}

impl EhrState {
    /// State serving `store` with `config`.
    pub fn new(store: Store, config: ApiConfig) -> Self {
        EhrState {
            inner: Arc::new(Inner {
                store,
                config,
                exports: export::Jobs::default(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    fn exports(&self) -> &export::Jobs {
        &self.inner.exports
    }
}

/// Serves the FHIR API alone on `listener` until `shutdown` completes (what `cohort ehr serve`
/// runs). Client addresses reach the AuditEvents.
pub async fn serve(
    state: EhrState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The FHIR API; mount it where its base URL should be (e.g. `Router::nest("/fhir", …)`).
pub fn router(state: EhrState) -> Router {
    Router::new()
        .route("/metadata", get(capability::metadata))
        .route("/", axum::routing::post(system::bundle))
        .route("/_history", get(system::history))
        .route("/$export", get(export::kick_off_system))
        .route(
            "/$export-poll/{job}",
            get(export::poll).delete(export::cancel),
        )
        .route("/$export-file/{job}/{file}", get(export::file))
        .route(
            "/{type}",
            get(type_level::search)
                .post(type_level::create)
                .put(type_level::conditional_update)
                .delete(type_level::conditional_delete),
        )
        .route(
            "/{type}/_search",
            axum::routing::post(type_level::search_post),
        )
        .route("/{type}/_history", get(type_level::history))
        .route("/{type}/$export", get(export::kick_off_type))
        .route(
            "/{type}/{id}",
            get(instance::read)
                .put(instance::update)
                .delete(instance::delete),
        )
        .route("/{type}/{id}/_history", get(instance::history))
        .route("/{type}/{id}/_history/{version}", get(instance::vread))
        .route(
            "/{type}/{id}/{operation}",
            get(everything::operation_or_compartment),
        )
        .fallback(response::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refusals::audit_refusals,
        ))
        .with_state(state)
}
