//! DICOMweb on the node's HTTP API (axum): STOW-RS store (streamed to disk,
//! checked, then stored), QIDO-RS search of studies, series and instances,
//! WADO-RS retrieve of studies, series and instances (`multipart/related`),
//! their metadata (DICOM JSON) and rendered frames (PNG), and the
//! reconciliation queue. Every route needs a bearer token that the
//! [`AccessControl`] accepts, and every access is recorded through it.
//! Mount with `Router::nest("/dicomweb", imaging::router(service, access, config))`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::{Value, json};

use crate::access::{AccessControl, AccessRecord, Grant, Operation, Reach};
use crate::error::{ImagingError, Result};
use crate::index::StudyRecord;
use crate::qido::{self, Level, Query};
use crate::service::Imaging;
use crate::{dimse, json, multipart, uid};

const BOUNDARY: &str = "cohort-dicomweb-boundary";

/// Limits of the DICOMweb routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebConfig {
    /// Largest STOW-RS request body accepted, in bytes (413 beyond it).
    pub max_upload_bytes: u64,
    /// How long a STOW-RS body may stall between chunks (408 beyond it).
    pub idle_timeout: Duration,
}

impl Default for WebConfig {
    /// 1 GiB uploads, 30 s of silence.
    fn default() -> Self {
        Self {
            max_upload_bytes: 1 << 30,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl IntoResponse for ImagingError {
    fn into_response(self) -> Response {
        let status = match &self {
            ImagingError::NotFound(_) => StatusCode::NOT_FOUND,
            ImagingError::InvalidUid(_)
            | ImagingError::BadRequest(_)
            | ImagingError::FrameOutOfRange { .. }
            | ImagingError::InvalidInstance(_)
            | ImagingError::Inconsistent(_) => StatusCode::BAD_REQUEST,
            ImagingError::UnsupportedSopClass(_) | ImagingError::Conflict(_) => {
                StatusCode::CONFLICT
            }
            ImagingError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ImagingError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            ImagingError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ImagingError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response =
            (status, axum::Json(json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="dicomweb""#),
            );
        }
        response
    }
}

/// What the handlers share.
#[derive(Clone)]
struct Web {
    service: Arc<Imaging>,
    access: Arc<dyn AccessControl>,
    config: WebConfig,
}

/// The DICOMweb routes over an imaging service, guarded by `access`.
pub fn router(service: Arc<Imaging>, access: Arc<dyn AccessControl>, config: WebConfig) -> Router {
    Router::new()
        .route("/studies", post(stow).get(search_studies))
        .route("/series", get(search_all_series))
        .route("/instances", get(search_all_instances))
        .route("/studies/{study}", get(retrieve_study))
        .route("/studies/{study}/metadata", get(study_metadata))
        .route("/studies/{study}/series", get(search_series))
        .route("/studies/{study}/instances", get(search_study_instances))
        .route("/studies/{study}/series/{series}", get(retrieve_series))
        .route(
            "/studies/{study}/series/{series}/metadata",
            get(series_metadata),
        )
        .route(
            "/studies/{study}/series/{series}/instances",
            get(search_instances),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}",
            get(retrieve_instance),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(instance_metadata),
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
        .with_state(Web {
            service,
            access,
            config,
        })
}

/// The credentials and address of a request.
struct Client {
    token: Option<String>,
    address: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string());
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(Self { token, address })
    }
}

/// An authorized request: who, from where, doing what.
struct Caller {
    grant: Grant,
    address: Option<String>,
    operation: Operation,
}

impl Web {
    /// Authorize `client` for `operation`; stores and the reconciliation
    /// queue span patients, so patient-scoped grants do not reach them.
    async fn caller(&self, client: &Client, operation: Operation) -> Result<Caller> {
        let grant = self
            .access
            .authorize(client.token.as_deref(), operation)
            .await?;
        if matches!(operation, Operation::Store | Operation::Reconcile) && grant.reach != Reach::All
        {
            return Err(ImagingError::Forbidden(format!(
                "token {:?} reaches one patient's images only; this spans patients",
                grant.name
            )));
        }
        Ok(Caller {
            grant,
            address: client.address.clone(),
            operation,
        })
    }

    /// Record what `caller` did to `studies`.
    async fn record(
        &self,
        caller: &Caller,
        interaction: &str,
        studies: &[&StudyRecord],
        query: Option<String>,
        description: Option<String>,
    ) -> Result<()> {
        let mut patients: Vec<String> = studies.iter().filter_map(|s| s.linked.clone()).collect();
        patients.sort();
        patients.dedup();
        let access = AccessRecord {
            operation: caller.operation,
            interaction: interaction.to_string(),
            studies: studies.iter().map(|s| s.uid.clone()).collect(),
            patients,
            query,
            success: true,
            description,
        };
        self.access
            .record(&caller.grant, caller.address.as_deref(), &access)
            .await
    }

    /// The studies the caller reaches.
    async fn visible_studies(&self, caller: &Caller) -> Vec<StudyRecord> {
        let mut studies = self.service.studies().await;
        studies.retain(|s| reaches(&caller.grant, s));
        studies
    }

    /// One study, if stored and within the caller's reach.
    async fn study(&self, caller: &Caller, study: &str) -> Result<StudyRecord> {
        let record = self
            .service
            .study(uid::checked(study)?)
            .await
            .ok_or_else(|| ImagingError::NotFound(format!("study {study}")))?;
        if reaches(&caller.grant, &record) {
            Ok(record)
        } else {
            Err(ImagingError::Forbidden(format!(
                "study {study} is not one of the images token {:?} reaches",
                caller.grant.name
            )))
        }
    }
}

fn reaches(grant: &Grant, study: &StudyRecord) -> bool {
    match &grant.reach {
        Reach::All => true,
        Reach::Patient(patient) => study.linked.as_deref() == Some(patient.as_str()),
    }
}

fn attribute(vr: &str, value: Value) -> Value {
    json!({ "vr": vr, "Value": [value] })
}

fn dicom_json(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/dicom+json")],
        body.to_string(),
    )
        .into_response()
}

/// STOW-RS: spool every part to disk, store each `application/dicom` part;
/// answer with the Referenced and Failed SOP Sequences (PS3.18 10.5.3).
async fn stow(State(web): State<Web>, client: Client, headers: HeaderMap, body: Body) -> Response {
    stow_parts(&web, &client, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn stow_parts(
    web: &Web,
    client: &Client,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let caller = web.caller(client, Operation::Store).await?;
    let limit = web.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ImagingError::TooLarge { limit });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multipart::boundary(content_type)?;
    let parts = multipart::spool(
        body.into_data_stream(),
        &boundary,
        limit,
        web.config.idle_timeout,
    )
    .await?;
    let (mut stored, mut failed, mut studies) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        let outcome = match part.content_type.as_deref() {
            Some(t) if !t.trim().starts_with("application/dicom") => {
                Err(ImagingError::InvalidInstance(format!(
                    "part of type {t}; only application/dicom is stored"
                )))
            }
            _ => web.service.store_file(&part.path).await,
        };
        match outcome {
            Ok(outcome) => {
                let info = outcome.info;
                stored.push(json!({
                    "00081150": attribute("UI", json!(info.sop_class_uid)),
                    "00081155": attribute("UI", json!(info.sop_uid)),
                    "00081190": attribute("UR", json!(format!(
                        "studies/{}/series/{}/instances/{}",
                        info.study_uid, info.series_uid, info.sop_uid
                    ))),
                }));
                studies.push(info.study_uid);
            }
            Err(e) => {
                tracing::warn!(error = %e, "STOW-RS part refused");
                failed.push(json!({
                    "00081197": attribute("US", json!(dimse::failure_status(&e))),
                    "00081196": attribute("LO", json!(e.to_string())),
                }));
            }
        }
    }
    studies.sort();
    studies.dedup();
    let mut records = Vec::new();
    for study in &studies {
        records.extend(web.service.study(study).await);
    }
    web.record(
        &caller,
        "STOW-RS store",
        &records.iter().collect::<Vec<_>>(),
        None,
        Some(format!(
            "{} instances stored, {} refused",
            stored.len(),
            failed.len()
        )),
    )
    .await?;
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
    Ok((status, dicom_json(answer)).into_response())
}

/// QIDO-RS at `level`, within a study and series when given.
async fn search(
    web: &Web,
    client: &Client,
    level: Level,
    study: Option<&str>,
    series: Option<&str>,
    query: Option<String>,
) -> Result<Response> {
    let caller = web.caller(client, Operation::Search).await?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|e| ImagingError::BadRequest(format!("query string: {e}")))?;
    let parsed = Query::parse(&pairs, level)?;
    let studies = web.visible_studies(&caller).await;
    if let Some(study) = study
        && !studies.iter().any(|s| s.uid == study)
    {
        // not found, or not the caller's to see
        web.study(&caller, study).await?;
    }
    let results = parsed.run(qido::rows(&studies, level, study, series), level);
    let mut touched: Vec<&StudyRecord> = results.iter().map(|(row, _)| row.study).collect();
    touched.dedup_by(|a, b| a.uid == b.uid);
    web.record(
        &caller,
        "QIDO-RS search",
        &touched,
        query,
        Some(format!("{} matches", results.len())),
    )
    .await?;
    let body = Value::Array(results.into_iter().map(|(_, json)| json).collect());
    let mut response = dicom_json(body);
    if !parsed.ignored.is_empty() {
        let warning = format!(
            "299 cohort \"The following attributes are not supported for matching: {}\"",
            parsed.ignored.join(", ")
        );
        if let Ok(value) = HeaderValue::from_str(&warning) {
            response.headers_mut().insert(header::WARNING, value);
        }
    }
    Ok(response)
}

async fn search_studies(State(web): State<Web>, client: Client, RawQuery(q): RawQuery) -> Response {
    respond(search(&web, &client, Level::Study, None, None, q).await)
}

async fn search_all_series(
    State(web): State<Web>,
    client: Client,
    RawQuery(q): RawQuery,
) -> Response {
    respond(search(&web, &client, Level::Series, None, None, q).await)
}

async fn search_all_instances(
    State(web): State<Web>,
    client: Client,
    RawQuery(q): RawQuery,
) -> Response {
    respond(search(&web, &client, Level::Instance, None, None, q).await)
}

async fn search_series(
    State(web): State<Web>,
    client: Client,
    Path(study): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    respond(search(&web, &client, Level::Series, Some(&study), None, q).await)
}

async fn search_study_instances(
    State(web): State<Web>,
    client: Client,
    Path(study): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    respond(search(&web, &client, Level::Instance, Some(&study), None, q).await)
}

async fn search_instances(
    State(web): State<Web>,
    client: Client,
    Path((study, series)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    respond(
        search(
            &web,
            &client,
            Level::Instance,
            Some(&study),
            Some(&series),
            q,
        )
        .await,
    )
}

fn respond(result: Result<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The instances of a study the request names (a series, an instance, or all).
fn selected(
    record: &StudyRecord,
    series: Option<&str>,
    instance: Option<&str>,
) -> Result<Vec<String>> {
    let paths: Vec<String> = record
        .series
        .iter()
        .filter(|(uid, _)| series.is_none_or(|s| s == uid.as_str()))
        .flat_map(|(series_uid, s)| {
            s.instances
                .keys()
                .filter(|sop| instance.is_none_or(|i| i == sop.as_str()))
                .map(|sop| crate::instance::instance_path(&record.uid, series_uid, sop))
        })
        .collect();
    if paths.is_empty() {
        let what = match (series, instance) {
            (_, Some(instance)) => format!("instance {instance}"),
            (Some(series), None) => format!("series {series}"),
            (None, None) => format!("study {}", record.uid),
        };
        return Err(ImagingError::NotFound(what));
    }
    Ok(paths)
}

/// Authorize a read of part of a study and record it; the paths read.
async fn read(
    web: &Web,
    client: &Client,
    interaction: &str,
    study: &str,
    series: Option<&str>,
    instance: Option<&str>,
) -> Result<Vec<String>> {
    let caller = web.caller(client, Operation::Read).await?;
    let series = series.map(uid::checked).transpose()?;
    let instance = instance.map(uid::checked).transpose()?;
    let record = web.study(&caller, study).await?;
    let paths = selected(&record, series, instance)?;
    web.record(
        &caller,
        interaction,
        &[&record],
        None,
        Some(format!("{} instances", paths.len())),
    )
    .await?;
    Ok(paths)
}

/// WADO-RS: the instances as a `multipart/related` of `application/dicom`,
/// streamed from the store one instance at a time.
async fn retrieve(
    web: &Web,
    client: &Client,
    study: &str,
    series: Option<&str>,
    instance: Option<&str>,
) -> Result<Response> {
    let paths = read(web, client, "WADO-RS retrieve", study, series, instance).await?;
    let store = web.service.store().clone();
    let body = stream::iter(paths)
        .then(move |path| {
            let store = store.clone();
            async move {
                let opened = store.get_stream(&path).await;
                let part: BoxStream<'static, Result<Bytes>> = match opened {
                    Ok(Some(bytes)) => stream::once(async {
                        Ok(Bytes::from(multipart::part_head(
                            BOUNDARY,
                            "application/dicom",
                        )))
                    })
                    .chain(bytes)
                    .chain(stream::once(async { Ok(Bytes::from_static(b"\r\n")) }))
                    .boxed(),
                    Ok(None) => stream::once(async move {
                        Err(ImagingError::NotFound(format!(
                            "{path} vanished from the store"
                        )))
                    })
                    .boxed(),
                    Err(e) => stream::once(async { Err(e) }).boxed(),
                };
                part
            }
        })
        .flatten()
        .chain(stream::once(async {
            Ok(Bytes::from(multipart::closing(BOUNDARY)))
        }));
    Ok((
        [(
            header::CONTENT_TYPE,
            format!(r#"multipart/related; type="application/dicom"; boundary={BOUNDARY}"#),
        )],
        Body::from_stream(body),
    )
        .into_response())
}

async fn retrieve_study(
    State(web): State<Web>,
    client: Client,
    Path(study): Path<String>,
) -> Response {
    respond(retrieve(&web, &client, &study, None, None).await)
}

async fn retrieve_series(
    State(web): State<Web>,
    client: Client,
    Path((study, series)): Path<(String, String)>,
) -> Response {
    respond(retrieve(&web, &client, &study, Some(&series), None).await)
}

async fn retrieve_instance(
    State(web): State<Web>,
    client: Client,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    respond(retrieve(&web, &client, &study, Some(&series), Some(&instance)).await)
}

/// WADO-RS metadata: the DICOM JSON of each instance, Pixel Data left out.
async fn metadata(
    web: &Web,
    client: &Client,
    study: &str,
    series: Option<&str>,
    instance: Option<&str>,
) -> Result<Response> {
    let paths = read(web, client, "WADO-RS metadata", study, series, instance).await?;
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = web
            .service
            .store()
            .get(&path)
            .await?
            .ok_or_else(|| ImagingError::NotFound(path.clone()))?;
        out.push(json::metadata(&bytes)?);
    }
    Ok(dicom_json(Value::Array(out)))
}

async fn study_metadata(
    State(web): State<Web>,
    client: Client,
    Path(study): Path<String>,
) -> Response {
    respond(metadata(&web, &client, &study, None, None).await)
}

async fn series_metadata(
    State(web): State<Web>,
    client: Client,
    Path((study, series)): Path<(String, String)>,
) -> Response {
    respond(metadata(&web, &client, &study, Some(&series), None).await)
}

async fn instance_metadata(
    State(web): State<Web>,
    client: Client,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    respond(metadata(&web, &client, &study, Some(&series), Some(&instance)).await)
}

async fn render(
    web: &Web,
    client: &Client,
    study: &str,
    series: &str,
    instance: &str,
    frame: u32,
) -> Result<Response> {
    read(
        web,
        client,
        "WADO-RS rendered",
        study,
        Some(series),
        Some(instance),
    )
    .await?;
    let png = web.service.render(study, series, instance, frame).await?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// WADO-RS rendered instance: its first frame as PNG.
async fn rendered_first(
    State(web): State<Web>,
    client: Client,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    respond(render(&web, &client, &study, &series, &instance, 1).await)
}

/// WADO-RS rendered frame (1-based; the first of a list) as PNG.
async fn rendered(
    State(web): State<Web>,
    client: Client,
    Path((study, series, instance, frames)): Path<(String, String, String, String)>,
) -> Response {
    let first = frames.split(',').next().unwrap_or_default().trim();
    respond(match first.parse::<u32>() {
        Ok(frame) => render(&web, &client, &study, &series, &instance, frame).await,
        Err(_) => Err(ImagingError::BadRequest(format!(
            "bad frame list {frames:?}"
        ))),
    })
}

/// The studies waiting for their patient.
async fn queue(State(web): State<Web>, client: Client) -> Response {
    respond(
        async {
            let caller = web.caller(&client, Operation::Reconcile).await?;
            let queue = web.service.reconciliation_queue().await?;
            let mut studies = Vec::new();
            for queued in &queue {
                studies.extend(web.service.study(&queued.study_uid).await);
            }
            web.record(
                &caller,
                "reconciliation queue",
                &studies.iter().collect::<Vec<_>>(),
                None,
                None,
            )
            .await?;
            Ok(axum::Json(queue).into_response())
        }
        .await,
    )
}

/// Try to link the queued studies again.
async fn retry(State(web): State<Web>, client: Client) -> Response {
    respond(
        async {
            let caller = web.caller(&client, Operation::Reconcile).await?;
            let linked = web.service.reconcile().await?;
            web.record(
                &caller,
                "reconciliation retry",
                &[],
                None,
                Some(format!("{linked} studies linked")),
            )
            .await?;
            Ok(axum::Json(json!({ "linked": linked })).into_response())
        }
        .await,
    )
}
