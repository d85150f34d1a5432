//! FHIR Bulk Data export (`$export` at system and Patient level) to NDJSON, asynchronously:
//! kick-off answers 202 with a status URL; polling it gives 202 until the manifest is ready.
//!
//! Jobs and their files live in memory and are lost on restart; `DELETE` on the status URL
//! cancels a job or frees its files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::EhrState;
use super::caller::Caller;
use super::response::{ApiResult, Fhir};
use crate::audit::Action;
use crate::auth::Interaction;
use crate::bundle::parse_query;
use crate::datetime;
use crate::error::Error;
use crate::store::Store;
use crate::types;

/// Resources read per query while exporting.
const BATCH: usize = 1000;

enum JobState {
    Running,
    Done { manifest: Value, files: Vec<String> },
    Failed(String),
}

struct Job {
    owner: String,
    state: JobState,
}

/// The export jobs of this server.
#[derive(Default, Clone)]
pub struct Jobs {
    jobs: Arc<Mutex<HashMap<String, Job>>>,
}

impl Jobs {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Job>) -> R) -> R {
        let mut guard = match self.jobs.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

/// `GET [base]/$export`
pub async fn kick_off_system(
    State(state): State<EhrState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    kick_off(state, caller, headers, query, false, "$export").await
}

/// `GET Patient/$export` (other types: not supported).
pub async fn kick_off_type(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    if t != "Patient" {
        return Err(Error::NotFound(format!(
            "$export is supported at system level and on Patient, not on {t}"
        ))
        .into());
    }
    kick_off(state, caller, headers, query, true, "Patient/$export").await
}

async fn kick_off(
    state: EhrState,
    caller: Caller,
    headers: HeaderMap,
    query: Option<String>,
    patients_only: bool,
    path: &str,
) -> ApiResult {
    let prefer = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !prefer.contains("respond-async") {
        return Err(Error::invalid("$export needs the header Prefer: respond-async").into());
    }
    let pairs = query
        .as_deref()
        .map(parse_query)
        .transpose()?
        .unwrap_or_default();
    let mut wanted: Vec<&'static str> = if patients_only {
        types::RESOURCE_TYPES
            .iter()
            .copied()
            .filter(|t| types::is_patient_data(t) && *t != "AuditEvent")
            .collect()
    } else {
        types::RESOURCE_TYPES.to_vec()
    };
    let mut since = None;
    for (key, value) in &pairs {
        match key.as_str() {
            "_type" => {
                let list = value
                    .split(',')
                    .map(|t| types::resource_type(t.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                if patients_only && let Some(t) = list.iter().find(|t| !types::is_patient_data(t)) {
                    return Err(Error::invalid(format!(
                        "{t} is not patient data, so Patient/$export cannot export it"
                    ))
                    .into());
                }
                wanted = list;
            }
            "_since" => {
                since = Some(
                    datetime::parse_range(value)
                        .map_err(|e| Error::invalid(format!("_since: {e}")))?
                        .start,
                )
            }
            "_outputFormat" => {
                if !matches!(
                    value.as_str(),
                    "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                ) {
                    return Err(Error::invalid(format!(
                        "_outputFormat {value} is not supported (application/fhir+ndjson is)"
                    ))
                    .into());
                }
            }
            other => {
                return Err(
                    Error::invalid(format!("$export parameter {other} is not supported")).into(),
                );
            }
        }
    }
    for t in &wanted {
        caller.principal.require_all(t, Interaction::Read, true)?;
    }
    let mut access = caller.access(Action::Read, "operation");
    access.resources = wanted
        .iter()
        .filter(|t| types::is_patient_data(t))
        .map(|t| t.to_string())
        .collect();
    let request_url = format!(
        "{}/{path}{}",
        caller.base,
        query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    access.description = Some(format!("bulk export {request_url}"));
    caller.audit(&state, &access).await?;
    let id = crate::store::new_id();
    state.exports().with(|jobs| {
        jobs.insert(
            id.clone(),
            Job {
                owner: caller.principal.name.clone(),
                state: JobState::Running,
            },
        )
    });
    let jobs = state.exports().clone();
    let store = state.store().clone();
    let base = caller.base.clone();
    let job_id = id.clone();
    tokio::spawn(async move {
        let result = run(
            &store,
            &wanted,
            since,
            patients_only,
            &base,
            &job_id,
            &request_url,
        )
        .await;
        jobs.with(|all| {
            if let Some(job) = all.get_mut(&job_id) {
                job.state = match result {
                    Ok((manifest, files)) => JobState::Done { manifest, files },
                    Err(e) => JobState::Failed(e.to_string()),
                };
            }
        });
    });
    Ok(Fhir::empty(StatusCode::ACCEPTED).header(
        header::CONTENT_LOCATION,
        format!("{}/$export-poll/{id}", caller.base),
    ))
}

/// Writes one NDJSON file per type that has resources.
async fn run(
    store: &Store,
    wanted: &[&'static str],
    since: Option<i64>,
    patients_only: bool,
    base: &str,
    job: &str,
    request: &str,
) -> Result<(Value, Vec<String>), Error> {
    let transaction_time = datetime::format_instant(datetime::now_micros());
    let mut files = Vec::new();
    let mut output = Vec::new();
    for t in wanted {
        let mut text = String::new();
        let mut count = 0usize;
        let mut after = 0;
        loop {
            let batch = store.scan(t, after, since, patients_only, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for version in &batch {
                if let Some(content) = &version.content {
                    text.push_str(content);
                    text.push('\n');
                    count += 1;
                }
            }
            if batch.len() < BATCH {
                break;
            }
        }
        if count > 0 {
            output.push(json!({"type": t, "url": format!("{base}/$export-file/{job}/{}", files.len()), "count": count}));
            files.push(text);
        }
    }
    let manifest = json!({
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": true,
        "output": output,
        "error": [],
    });
    Ok((manifest, files))
}

fn owned<'a>(job: Option<&'a Job>, caller: &Caller, id: &str) -> Result<&'a Job, Error> {
    match job {
        Some(job) if job.owner == caller.principal.name => Ok(job),
        _ => Err(Error::NotFound(format!("export job {id}"))),
    }
}

/// `GET $export-poll/[job]`
pub async fn poll(
    State(state): State<EhrState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    state.exports().with(|jobs| {
        let job = owned(jobs.get(&id), &caller, &id)?;
        Ok(match &job.state {
            JobState::Running => Fhir::empty(StatusCode::ACCEPTED)
                .header(header::HeaderName::from_static("x-progress"), "in progress"),
            JobState::Done { manifest, .. } => {
                Fhir::text(StatusCode::OK, manifest.to_string(), "application/json")
            }
            JobState::Failed(message) => {
                return Err(Error::Internal(format!("export failed: {message}")).into());
            }
        })
    })
}

/// `DELETE $export-poll/[job]`
pub async fn cancel(
    State(state): State<EhrState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    state.exports().with(|jobs| {
        owned(jobs.get(&id), &caller, &id)?;
        jobs.remove(&id);
        Ok(Fhir::empty(StatusCode::ACCEPTED))
    })
}

/// `GET $export-file/[job]/[n]`
pub async fn file(
    State(state): State<EhrState>,
    caller: Caller,
    Path((id, n)): Path<(String, usize)>,
) -> ApiResult {
    state.exports().with(|jobs| {
        let job = owned(jobs.get(&id), &caller, &id)?;
        match &job.state {
            JobState::Done { files, .. } => files
                .get(n)
                .map(|text| Fhir::text(StatusCode::OK, text.clone(), "application/fhir+ndjson"))
                .ok_or_else(|| Error::NotFound(format!("file {n} of export job {id}")).into()),
            _ => Err(Error::NotFound(format!("export job {id} has no files yet")).into()),
        }
    })
}
