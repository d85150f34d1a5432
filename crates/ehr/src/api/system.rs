//! Whole-server interactions: transaction and batch Bundles, system history.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::EhrState;
use super::bundles::{history_bundle, response_bundle, status_line};
use super::caller::{Caller, patients_of};
use super::instance::{HistoryParams, refuse_audit_changes};
use super::response::{ApiError, ApiResult, Fhir, Return, parse_body, prefer_return};
use super::type_level::run_search;
use crate::audit::Action;
use crate::auth::Interaction;
use crate::bundle::{self, BundleKind, EntryOutcome, Method, parse_query};
use crate::error::Error;
use crate::types;

/// Checks every entry's interaction against the caller's scopes before anything runs.
/// Transactions and batches span patients, so `patient/` scopes are not enough.
fn authorize_entries(caller: &Caller, bundle: &Value) -> Result<(), Error> {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (index, entry) in entries.iter().enumerate() {
        let Ok(request) = bundle::parse_request(entry) else {
            continue;
        };
        let interaction = match request.method {
            Method::Get if request.id.is_some() => Interaction::Read,
            Method::Get => Interaction::Search,
            Method::Post => Interaction::Create,
            Method::Put => Interaction::Update,
            Method::Delete => Interaction::Delete,
        };
        let allowed = match request.method {
            Method::Get => Ok(()),
            _ => refuse_audit_changes(request.resource_type),
        };
        allowed
            .and_then(|()| {
                caller
                    .principal
                    .require_all(request.resource_type, interaction, false)
            })
            .map_err(|e| Error::Entry {
                index,
                request: request.url.clone(),
                source: Box::new(e),
            })?;
    }
    Ok(())
}

/// `POST [base]` with a transaction or batch Bundle.
pub async fn bundle(
    State(state): State<EhrState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut bundle = parse_body(&headers, &body)?;
    let kind = BundleKind::of(&bundle)?;
    authorize_entries(&caller, &bundle)?;
    let representation = prefer_return(&headers, Return::Minimal) == Return::Representation;
    let outcomes = match kind {
        BundleKind::Transaction => {
            let mut tx = state.store().begin().await?;
            let outcomes = bundle::transaction(&mut tx, &mut bundle).await?;
            let mut access = caller.access(Action::Execute, "transaction");
            record_writes(&mut access, &outcomes);
            caller.audit_in(&state, &mut tx, &access).await?;
            tx.commit().await?;
            outcomes
        }
        BundleKind::Batch => {
            let outcomes = bundle::batch(state.store(), &bundle).await?;
            let mut access = caller.access(Action::Execute, "batch");
            record_writes(&mut access, &outcomes);
            caller.audit(&state, &access).await?;
            outcomes
        }
    };
    let mut gets = Vec::new();
    for outcome in &outcomes {
        if let EntryOutcome::Get(url) = outcome {
            gets.push(answer_get(&state, &caller, url).await);
        }
    }
    let response_kind = match kind {
        BundleKind::Transaction => "transaction-response",
        BundleKind::Batch => "batch-response",
    };
    Ok(Fhir::json(
        StatusCode::OK,
        &response_bundle(response_kind, &caller.base, &outcomes, gets, representation),
    ))
}

fn record_writes(access: &mut crate::audit::Access<'_>, outcomes: &[EntryOutcome]) {
    for outcome in outcomes {
        if let EntryOutcome::Written(w) = outcome {
            access.resources.push(format!(
                "{}/{}/_history/{}",
                w.resource_type, w.id, w.version
            ));
            if let Some(resource) = &w.resource {
                access
                    .patients
                    .extend(patients_of(w.resource_type, &w.id, resource));
            }
        }
    }
}

/// Answers a GET entry as the matching read or search would, as a response entry.
async fn answer_get(state: &EhrState, caller: &Caller, url: &str) -> Value {
    let result: ApiResult = async {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            [t] => run_search(state, caller, t, parse_query(query)?, None).await,
            [t, id] => {
                let t = types::resource_type(t)?;
                let version = state.store().read(t, id).await?;
                let resource = super::response::parse_stored(&version)?;
                caller.authorize(t, id, Interaction::Read, &resource)?;
                let mut access = caller.access(Action::Read, "read");
                access.resources = vec![format!("{t}/{id}")];
                access.patients = patients_of(t, id, &resource);
                caller.audit(state, &access).await?;
                Ok(Fhir::json(StatusCode::OK, &resource))
            }
            _ => Err(Error::invalid(format!("GET {url} is not a read or a search")).into()),
        }
    }
    .await;
    match result {
        Ok(fhir) => fhir.into_entry(),
        Err(ApiError(error)) => {
            serde_json::json!({"response": {"status": status_line(error.status()), "outcome": error.to_outcome()}})
        }
    }
}

/// `GET [base]/_history`
pub async fn history(
    State(state): State<EhrState>,
    caller: Caller,
    Query(params): Query<HistoryParams>,
) -> ApiResult {
    for t in types::RESOURCE_TYPES {
        caller
            .principal
            .require_all(t, Interaction::Search, false)?;
    }
    let bundle = history_bundle(&state, &caller, None, None, &params, "_history").await?;
    let mut access = caller.access(Action::Read, "history-system");
    access.resources = vec!["Patient".to_string()];
    caller.audit(&state, &access).await?;
    Ok(Fhir::json(StatusCode::OK, &bundle))
}
