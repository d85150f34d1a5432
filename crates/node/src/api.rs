//! The node's own HTTP API on its loopback port, for the hospital's staff:
//! health, the log of everything that left the hospital, and the hospital's
//! FHIR R4 API when the node holds its EHR, with DICOMweb and dictation
//! (`POST /speech/transcripts`) beside it behind the same bearer tokens.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::dictation::{Dictation, DictationError, Recording};
use crate::store::{NodeStore, Recorded};

/// Routes of the node API; with an EHR, its FHIR R4 API under `/fhir`; with
/// imaging (which needs the EHR), DICOMweb (STOW-RS, QIDO-RS, WADO-RS) under
/// `/dicomweb`, taking the EHR's tokens and audited in the EHR; with
/// dictation, `POST /speech/transcripts`, likewise.
pub fn router(
    name: String,
    store: NodeStore,
    ehr: Option<ehr::Store>,
    images: Option<Arc<imaging::Imaging>>,
    dictation: Option<Arc<Dictation>>,
) -> Router {
    let mut api = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/disclosures", get(disclosures))
        .with_state((name.clone(), store));
    if let (Some(dictation), Some(ehr_store)) = (dictation, &ehr) {
        let limit = dictation.settings().max_bytes;
        api = api.merge(
            Router::new()
                .route("/speech/transcripts", post(transcripts))
                .layer(DefaultBodyLimit::max(limit))
                .with_state(SpeechState {
                    dictation,
                    ehr: ehr_store.clone(),
                    observer: name.clone(),
                }),
        );
    }
    match (images, &ehr) {
        (Some(images), Some(ehr_store)) => {
            let access = std::sync::Arc::new(crate::imaging::EhrAccess::new(
                ehr_store.clone(),
                name.clone(),
            ));
            api = api.nest(
                "/dicomweb",
                imaging::router(images, access, imaging::WebConfig::default()),
            );
        }
        (Some(_), None) => {
            tracing::error!("DICOMweb not served: it needs the node's EHR for its tokens");
        }
        (None, _) => {}
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
    disclosures: Vec<Recorded>,
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

#[derive(Clone)]
struct SpeechState {
    dictation: Arc<Dictation>,
    ehr: ehr::Store,
    observer: String,
}

/// `POST /speech/transcripts` query: whose dictation, which visit, which language.
#[derive(Deserialize)]
struct TranscriptQuery {
    patient: String,
    encounter: Option<String>,
    lang: Option<String>,
}

/// A FHIR JSON answer.
fn fhir_json(status: u16, body: &serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}

/// An OperationOutcome answer.
fn outcome(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}]});
    fhir_json(status, &body)
}

fn ehr_outcome(e: &ehr::Error) -> Response {
    fhir_json(e.status(), &e.to_outcome())
}

/// Transcribe a recording (the body; `Content-Type: audio/...`) for `?patient=` (and
/// `&encounter=`, `&lang=`) and file it: `201 Created` with the preliminary
/// DocumentReference. Needs a bearer token allowed to create DocumentReferences for that
/// patient; every attempt past authentication is an AuditEvent.
async fn transcripts(
    State(s): State<SpeechState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    query: Result<Query<TranscriptQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return outcome(
            401,
            "login",
            "dictation needs an Authorization: Bearer token (one of the EHR's tokens)",
        );
    };
    let principal = match s.ehr.authenticate(token).await {
        Ok(p) => p,
        Err(e) => return ehr_outcome(&e),
    };
    let Ok(Query(query)) = query else {
        return outcome(
            400,
            "invalid",
            "give the patient as ?patient=ID (and optionally &encounter=ID&lang=en|fr)",
        );
    };
    let allowed = match principal.access("DocumentReference", ehr::auth::Interaction::Create) {
        Ok(ehr::auth::Access::All) => Ok(()),
        Ok(ehr::auth::Access::Compartment(p)) if p == query.patient => Ok(()),
        Ok(ehr::auth::Access::Compartment(_)) => Err(ehr::Error::Forbidden(format!(
            "token {:?} reaches another patient's record only",
            principal.name
        ))),
        Err(e) => Err(e),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let filed = match allowed {
        Err(e) => Err(DictationError::Ehr(e)),
        Ok(())
            if !content_type.starts_with("audio/")
                && content_type != "application/octet-stream" =>
        {
            Err(DictationError::Invalid(format!(
                "Content-Type {content_type:?}: send the recording as audio/wav, audio/flac, audio/mpeg or audio/ogg"
            )))
        }
        Ok(()) => {
            s.dictation
                .file(Recording {
                    patient: query.patient.clone(),
                    encounter: query.encounter.clone(),
                    audio: Vec::from(body),
                    content_type,
                    language: query.lang.clone(),
                })
                .await
        }
    };
    let address = peer.map(|Extension(ConnectInfo(a))| a.ip().to_string());
    let (resources, description) = match &filed {
        Ok(f) => (
            std::iter::once(format!("DocumentReference/{}", f.id()))
                .chain(f.binary.iter().map(|b| format!("Binary/{b}")))
                .collect(),
            format!(
                "dictation transcribed on the node ({:.1} s of audio, {})",
                f.seconds,
                s.dictation.settings().model
            ),
        ),
        Err(e) => (
            vec!["DocumentReference".to_string()],
            format!("dictation refused: {e}"),
        ),
    };
    let access = ehr::audit::Access {
        principal: &principal,
        address: address.as_deref(),
        action: ehr::audit::Action::Create,
        interaction: "create",
        resources,
        patients: vec![query.patient.clone()],
        query: None,
        success: filed.is_ok(),
        description: Some(description),
    };
    if let Err(e) = crate::imaging::write_audit(&s.ehr, &access, &s.observer).await {
        tracing::error!(error = %e, "dictation: the access log could not be written");
        return ehr_outcome(&e);
    }
    match filed {
        Ok(f) => (
            StatusCode::CREATED,
            [
                (header::CONTENT_TYPE, "application/fhir+json".to_string()),
                (
                    header::LOCATION,
                    format!("/fhir/DocumentReference/{}", f.id()),
                ),
            ],
            f.document.to_string(),
        )
            .into_response(),
        Err(DictationError::Ehr(e)) => ehr_outcome(&e),
        Err(e) => {
            let code = match e.status() {
                404 => "not-found",
                503 => "transient",
                _ => "invalid",
            };
            outcome(e.status(), code, &e.to_string())
        }
    }
}

/// Where the tests find the ultrasound fixtures (shared with deid's tests).
#[cfg(test)]
#[path = "../../deid/tests/common/fixtures.rs"]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use serde_json::json;
    use tower::ServiceExt;

    async fn status(app: &Router, request: Request<Body>) -> StatusCode {
        app.clone().oneshot(request).await.expect("served").status()
    }

    fn get(uri: &str, token: Option<&str>) -> Request<Body> {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Body::empty()).expect("request")
    }

    fn stow(token: &str, file: &[u8]) -> Request<Body> {
        Request::post("/dicomweb/studies")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "multipart/related; boundary=b")
            .body(Body::from(imaging::multipart::build(
                &[file],
                "application/dicom",
                "b",
            )))
            .expect("request")
    }

    async fn audit_events(store: &ehr::Store, entity: &str) -> usize {
        let mut tx = store.begin().await.expect("tx");
        let ids = tx
            .matching_ids("AuditEvent", &[("entity".into(), entity.into())], 100)
            .await
            .expect("search");
        tx.commit().await.expect("committed");
        ids.len()
    }

    /// The imaging service and the node's own store of a node under `dir` with `ehr_store`.
    async fn imaging_and_store(
        dir: &std::path::Path,
        ehr_store: &ehr::Store,
    ) -> (Arc<imaging::Imaging>, NodeStore) {
        let images = crate::imaging::open(&dir.join("images"), ehr_store.clone())
            .await
            .expect("imaging opens");
        let node_store = NodeStore::open(&dir.join("node"))
            .await
            .expect("node store");
        (images, node_store)
    }

    #[tokio::test]
    async fn no_route_of_the_node_api_serves_a_visitor_without_a_token() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("ehr.db").display());
        let ehr_store = ehr::Store::open(&url).await.expect("EHR opens");
        let (images, node_store) = imaging_and_store(dir.path(), &ehr_store).await;
        let dictation = crate::dictation::Dictation::new(
            ehr_store.clone(),
            crate::dictation::DictationSettings {
                model_dir: dir.path().join("no-model"),
                model: "whisper-tiny.en".into(),
                language: "en".into(),
                audio: speech::record::AudioStorage::Discard,
                max_bytes: 1 << 20,
                formulary: Vec::new(),
            },
        );
        let app = router(
            "hospital-a".into(),
            node_store,
            Some(ehr_store),
            Some(images),
            Some(Arc::new(dictation)),
        );
        let prefixed = |prefix: &str, source: &str| -> Vec<String> {
            harness::routes::declared_routes(source)
                .into_iter()
                .map(|r| match r.as_str() {
                    "/" if !prefix.is_empty() => prefix.to_string(),
                    _ => format!("{prefix}{r}"),
                })
                .collect()
        };
        let mut routes = prefixed("", include_str!("api.rs"));
        routes.extend(prefixed("/fhir", include_str!("../../ehr/src/api.rs")));
        routes.extend(prefixed(
            "/dicomweb",
            include_str!("../../imaging/src/dicomweb.rs"),
        ));
        // Public by design: liveness, the log of what left the hospital (plan ids, rounds,
        // hashes and counts: no patient data), and the FHIR CapabilityStatement.
        let public = ["/health", "/disclosures", "/fhir/metadata"];
        let checked = harness::routes::assert_login_required(&app, &routes, &public).await;
        assert!(checked >= 30, "{routes:?}");
    }

    #[tokio::test]
    async fn dicomweb_takes_the_ehr_tokens_and_audits_every_access() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("ehr.db").display());
        let ehr_store = ehr::Store::open(&url).await.expect("EHR opens");
        let mut tx = ehr_store.begin().await.expect("tx");
        tx.update(
            "Patient",
            "p1",
            json!({"resourceType": "Patient", "id": "p1",
                "identifier": [{"system": "urn:hospital:mrn", "value": "13US1"}]}),
            None,
        )
        .await
        .expect("patient");
        tx.commit().await.expect("committed");
        let (images, node_store) = imaging_and_store(dir.path(), &ehr_store).await;
        let app = router(
            "hospital-a".into(),
            node_store,
            Some(ehr_store.clone()),
            Some(images),
            None,
        );
        let token = |name: &'static str, scopes: &'static str, patient: Option<&'static str>| {
            let store = ehr_store.clone();
            async move {
                store
                    .create_token(name, scopes, patient, None)
                    .await
                    .expect("token")
            }
        };
        let pacs = token("pacs", "system/ImagingStudy.write", None).await;
        let reader = token("radiologist", "user/ImagingStudy.read", None).await;
        let patient_p1 = token("p1-app", "patient/*.read", Some("p1")).await;
        let patient_p2 = token("p2-app", "patient/*.read", Some("p2")).await;

        let file = std::fs::read(fixtures::fixtures_dir().join("US1_UNCR.dcm")).expect("fixture");
        let info = imaging::instance::InstanceInfo::read(
            &file,
            &imaging::instance::ULTRASOUND_SOP_CLASSES,
        )
        .expect("header");
        let instance = format!(
            "/dicomweb/studies/{}/series/{}/instances/{}",
            info.study_uid, info.series_uid, info.sop_uid
        );

        // like /fhir beside it, /dicomweb serves nobody without a token
        assert_eq!(
            status(&app, get("/fhir/Patient", None)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&app, get("/dicomweb/studies", None)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&app, get(&instance, Some("cohort_ehr_forged"))).await,
            StatusCode::UNAUTHORIZED
        );
        // reading needs a read scope, storing a write scope
        assert_eq!(
            status(&app, stow(&reader, &file)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(&app, stow(&pacs, &file)).await, StatusCode::OK);
        assert_eq!(
            status(&app, get(&instance, Some(&pacs))).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&app, get(&instance, None)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&app, get(&instance, Some(&reader))).await,
            StatusCode::OK
        );
        // patient/ scopes reach that patient's studies only
        assert_eq!(
            status(&app, get(&instance, Some(&patient_p1))).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&app, get(&instance, Some(&patient_p2))).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&app, stow(&patient_p1, &file)).await,
            StatusCode::FORBIDDEN
        );

        // the store and the two reads are in the EHR's access log
        let study = format!("ImagingStudy/{}", info.study_uid);
        assert_eq!(audit_events(&ehr_store, &study).await, 3);
        assert_eq!(audit_events(&ehr_store, "Patient/p1").await, 3);
    }
}
