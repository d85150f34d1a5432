//! The node's own HTTP API on its loopback port, for the hospital's staff:
//! health, and the log of everything that left the hospital.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::store::{Disclosure, NodeStore};

/// Routes of the node API.
pub fn router(name: String, store: NodeStore) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/disclosures", get(disclosures))
        .with_state((name, store))
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
