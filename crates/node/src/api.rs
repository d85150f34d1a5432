//! The node's own HTTP API on its loopback port, for the hospital's staff:
//! health, the log of everything that left the hospital, and the hospital's
//! FHIR R4 API when the node holds its EHR.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::store::{Disclosure, NodeStore};

/// Routes of the node API; with an EHR, its FHIR R4 API under `/fhir`; with
/// imaging, DICOMweb (STOW-RS, WADO-RS) under `/dicomweb`.
pub fn router(
    name: String,
    store: NodeStore,
    ehr: Option<ehr::Store>,
    images: Option<std::sync::Arc<imaging::Imaging>>,
) -> Router {
    let mut api = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/disclosures", get(disclosures))
        .with_state((name.clone(), store));
    if let Some(images) = images {
        api = api.nest("/dicomweb", imaging::router(images));
    }
    match ehr {
        None => api,
        Some(ehr_store) => {
            let config = ehr::api::ApiConfig {
                base_url: None,
                observer: name,
            };
            api.nest(
                "/fhir",
                ehr::api::router(ehr::api::EhrState::new(ehr_store, config)),
            )
        }
    }
}

#[derive(serde::Serialize)]
struct DisclosureLog {
    hospital: String,
    disclosures: Vec<Disclosure>,
}

async fn disclosures(
    State((name, store)): State<(String, NodeStore)>,
) -> Result<Json<DisclosureLog>, (StatusCode, String)> {
    let disclosures = store.disclosures().await.map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the disclosure log: {e}"),
        )
    })?;
    Ok(Json(DisclosureLog {
        hospital: name,
        disclosures,
    }))
}
