//! DICOMweb on the node's HTTP API (axum): STOW-RS store, WADO-RS retrieve
//! of an instance and of a rendered frame (PNG), and the reconciliation
//! queue. Mount with `Router::nest("/dicomweb", imaging::router(service))`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::error::ImagingError;
use crate::multipart;
use crate::service::Imaging;

/// Largest STOW-RS request accepted, in bytes.
pub const MAX_STOW_BYTES: usize = 1 << 30;

const BOUNDARY: &str = "cohort-dicomweb-boundary";

impl IntoResponse for ImagingError {
    fn into_response(self) -> Response {
        let status = match &self {
            ImagingError::NotFound(_) => StatusCode::NOT_FOUND,
            ImagingError::InvalidUid(_)
            | ImagingError::BadRequest(_)
            | ImagingError::FrameOutOfRange { .. }
            | ImagingError::InvalidInstance(_) => StatusCode::BAD_REQUEST,
            ImagingError::UnsupportedSopClass(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, axum::Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The DICOMweb routes over an imaging service.
pub fn router(service: Arc<Imaging>) -> Router {
    Router::new()
        .route("/studies", post(stow))
        .route(
            "/studies/{study}/series/{series}/instances/{instance}",
            get(retrieve),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/rendered",
            get(rendered_first),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
            get(rendered),
        )
        .route("/reconciliation", get(queue))
        .route("/reconciliation/retry", post(retry))
        .layer(DefaultBodyLimit::max(MAX_STOW_BYTES))
        .with_state(service)
}

fn attribute(vr: &str, value: Value) -> Value {
    json!({ "vr": vr, "Value": [value] })
}

/// STOW-RS: store every `application/dicom` part; answer with the
/// Referenced and Failed SOP Sequences (PS3.18 10.5.3).
async fn stow(State(service): State<Arc<Imaging>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = match multipart::boundary(content_type).and_then(|b| {
        multipart::parts(&body, &b)
            .map(|p| p.into_iter().map(|s| body.slice_ref(s)).collect::<Vec<_>>())
    }) {
        Ok(parts) => parts,
        Err(e) => return e.into_response(),
    };
    let (mut stored, mut failed) = (Vec::new(), Vec::new());
    for part in parts {
        match service.store_instance(part).await {
            Ok(outcome) => stored.push(json!({
                "00081150": attribute("UI", json!(outcome.info.sop_class_uid)),
                "00081155": attribute("UI", json!(outcome.info.sop_uid)),
                "00081190": attribute("UR", json!(format!(
                    "studies/{}/series/{}/instances/{}",
                    outcome.info.study_uid, outcome.info.series_uid, outcome.info.sop_uid
                ))),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "STOW-RS part refused");
                // 0xA900: does not match SOP class; 0xC000: cannot understand
                let code = if matches!(e, ImagingError::UnsupportedSopClass(_)) {
                    0xA900
                } else {
                    0xC000
                };
                failed.push(json!({
                    "00081197": attribute("US", json!(code)),
                    "00081196": attribute("LO", json!(e.to_string())),
                }));
            }
        }
    }
    let status = match (stored.is_empty(), failed.is_empty()) {
        (_, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, false) => StatusCode::CONFLICT,
    };
    let mut answer = json!({});
    if !stored.is_empty() {
        answer["00081199"] = json!({ "vr": "SQ", "Value": stored });
    }
    if !failed.is_empty() {
        answer["00081198"] = json!({ "vr": "SQ", "Value": failed });
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        answer.to_string(),
    )
        .into_response()
}

/// WADO-RS: the instance, as a one-part `multipart/related` of `application/dicom`.
async fn retrieve(
    State(service): State<Arc<Imaging>>,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    match service.retrieve(&study, &series, &instance).await {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                format!(r#"multipart/related; type="application/dicom"; boundary={BOUNDARY}"#),
            )],
            multipart::build(&[&bytes], "application/dicom", BOUNDARY),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn render_response(
    service: &Imaging,
    study: &str,
    series: &str,
    instance: &str,
    frame: u32,
) -> Response {
    match service.render(study, series, instance, frame).await {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(e) => e.into_response(),
    }
}

/// WADO-RS rendered instance: its first frame as PNG.
async fn rendered_first(
    State(service): State<Arc<Imaging>>,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    render_response(&service, &study, &series, &instance, 1).await
}

/// WADO-RS rendered frame (1-based; the first of a list) as PNG.
async fn rendered(
    State(service): State<Arc<Imaging>>,
    Path((study, series, instance, frames)): Path<(String, String, String, String)>,
) -> Response {
    let first = frames.split(',').next().unwrap_or_default().trim();
    match first.parse::<u32>() {
        Ok(frame) => render_response(&service, &study, &series, &instance, frame).await,
        Err(_) => ImagingError::BadRequest(format!("bad frame list {frames:?}")).into_response(),
    }
}

/// The studies waiting for their patient.
async fn queue(State(service): State<Arc<Imaging>>) -> Response {
    match service.reconciliation_queue().await {
        Ok(queue) => axum::Json(queue).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Try to link the queued studies again.
async fn retry(State(service): State<Arc<Imaging>>) -> Response {
    match service.reconcile().await {
        Ok(linked) => axum::Json(json!({ "linked": linked })).into_response(),
        Err(e) => e.into_response(),
    }
}
