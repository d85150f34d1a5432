//! Interactions on a resource type: search (GET and POST `_search`), create (also
//! conditional), conditional update and delete, type history.

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};

use super::EhrState;
use super::bundles::{history_bundle, search_bundle};
use super::caller::{Caller, patients_of};
use super::instance::{HistoryParams, delete_resource, refuse_audit_changes, update_resource};
use super::response::{ApiResult, Fhir, parse_body, parse_stored, written_response};
use crate::audit::Action;
use crate::auth::{Access, Interaction};
use crate::bundle::parse_query;
use crate::error::Error;
use crate::search::SearchRequest;
use crate::store::{Tx, Written};
use crate::types;

/// Runs a search of `t` with `pairs`, limited to `compartment` if given, and answers it.
pub async fn run_search(
    state: &EhrState,
    caller: &Caller,
    t: &str,
    pairs: Vec<(String, String)>,
    compartment: Option<String>,
) -> ApiResult {
    let t = types::resource_type(t)?;
    let mut request = SearchRequest::parse(t, &pairs)?;
    request.compartment = compartment.clone();
    if let Access::Compartment(patient) = caller.principal.access(t, Interaction::Search)? {
        match &compartment {
            Some(p) if *p != patient => {
                return Err(Error::Forbidden(format!(
                    "this token reaches only Patient/{patient}, not Patient/{p}"
                ))
                .into());
            }
            _ => request.compartment = Some(patient),
        }
    }
    let result = state.store().search(&request, Some(&caller.base)).await?;
    let url = match &compartment {
        Some(p) => format!("{}/Patient/{p}/{t}", caller.base),
        None => format!("{}/{t}", caller.base),
    };
    let bundle = search_bundle(state, caller, &request, result, &url, &pairs).await?;
    Ok(Fhir::json(StatusCode::OK, &bundle))
}

fn query_pairs(query: Option<String>) -> Result<Vec<(String, String)>, Error> {
    query
        .as_deref()
        .map(parse_query)
        .transpose()
        .map(Option::unwrap_or_default)
}

/// `GET [type]?criteria`
pub async fn search(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    run_search(&state, &caller, &t, query_pairs(query)?, None).await
}

/// `POST [type]/_search` with form-encoded criteria (and any in the URL).
pub async fn search_post(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form && !body.is_empty() {
        return Err(Error::UnsupportedMediaType(
            "_search takes application/x-www-form-urlencoded".into(),
        )
        .into());
    }
    let mut pairs = query_pairs(query)?;
    let text = std::str::from_utf8(&body).map_err(|_| Error::invalid("the form is not UTF-8"))?;
    pairs.extend(parse_query(text)?);
    run_search(&state, &caller, &t, pairs, None).await
}

/// `POST [type]`, conditional with `If-None-Exist`.
pub async fn create(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    refuse_audit_changes(t)?;
    let resource = parse_body(&headers, &body)?;
    crate::validate::validate(&resource, Some(t))?;
    caller.principal.access(t, Interaction::Create)?;
    let mut tx = state.store().begin().await?;
    if let Some(condition) = headers.get("if-none-exist").and_then(|v| v.to_str().ok()) {
        let criteria = parse_query(condition.trim_start_matches('?'))?;
        if let Some(id) = tx.conditional_match(t, &criteria, "create").await? {
            return answer_existing(&state, &caller, tx, t, &id, &headers).await;
        }
    }
    let written = tx.create(resource).await?;
    let stored = written
        .resource
        .as_ref()
        .ok_or_else(|| Error::Corrupt("create stored nothing".into()))?;
    caller.authorize(t, &written.id, Interaction::Create, stored)?;
    let mut access = caller.access(Action::Create, "create");
    access.resources = vec![format!("{t}/{}/_history/{}", written.id, written.version)];
    access.patients = patients_of(t, &written.id, stored);
    caller.audit_in(&state, &mut tx, &access).await?;
    tx.commit().await?;
    Ok(written_response(&caller.base, &written, &headers))
}

/// Answers a conditional create that matched `t/id`: 200, with the existing resource (as the
/// caller prefers, audited as a read) when the caller may read it.
async fn answer_existing(
    state: &EhrState,
    caller: &Caller,
    mut tx: Tx,
    t: &'static str,
    id: &str,
    headers: &HeaderMap,
) -> ApiResult {
    let existing = tx
        .current(t, id)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("{t}/{id} matched but cannot be read")))?;
    let resource = parse_stored(&existing)?;
    // A caller that may not read it learns only where it is.
    let readable = caller
        .authorize(t, id, Interaction::Read, &resource)
        .is_ok();
    if readable {
        let mut access = caller.access(Action::Read, "create");
        access.resources = vec![format!("{t}/{id}/_history/{}", existing.version)];
        access.patients = patients_of(t, id, &resource);
        caller.audit_in(state, &mut tx, &access).await?;
        tx.commit().await?;
    }
    let written = Written {
        resource_type: t,
        id: id.to_string(),
        version: existing.version,
        last_updated: existing.last_updated,
        resource: readable.then_some(resource),
        created: false,
        changed: false,
    };
    Ok(written_response(&caller.base, &written, headers))
}

/// The resource conditional criteria (a query string) name in `tx`: `None` for no match.
async fn single_match(
    tx: &mut Tx,
    t: &str,
    query: Option<String>,
    interaction: &str,
) -> Result<Option<String>, Error> {
    tx.conditional_match(t, &query_pairs(query)?, interaction)
        .await
}

/// `PUT [type]?criteria`
pub async fn conditional_update(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    refuse_audit_changes(t)?;
    let mut resource = parse_body(&headers, &body)?;
    let mut tx = state.store().begin().await?;
    let id = match single_match(&mut tx, t, query, "update").await? {
        Some(id) => id,
        None => resource
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(crate::store::new_id),
    };
    if resource
        .get("id")
        .and_then(|v| v.as_str())
        .is_some_and(|body_id| body_id != id)
    {
        return Err(Error::invalid(format!(
            "the body's id differs from the matching resource {t}/{id}"
        ))
        .into());
    }
    resource["id"] = serde_json::json!(id);
    update_resource(&state, &caller, tx, t, &id, resource, None, &headers).await
}

/// `DELETE [type]?criteria` (one match at most).
pub async fn conditional_delete(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    refuse_audit_changes(t)?;
    let mut tx = state.store().begin().await?;
    match single_match(&mut tx, t, query, "delete").await? {
        Some(id) => delete_resource(&state, &caller, tx, t, &id).await,
        None => {
            caller.principal.access(t, Interaction::Delete)?;
            Ok(Fhir::empty(StatusCode::NO_CONTENT))
        }
    }
}

/// `GET [type]/_history`
pub async fn history(
    State(state): State<EhrState>,
    caller: Caller,
    Path(t): Path<String>,
    Query(params): Query<HistoryParams>,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    caller
        .principal
        .require_all(t, Interaction::Search, false)?;
    let bundle = history_bundle(
        &state,
        &caller,
        Some(t),
        None,
        &params,
        &format!("{t}/_history"),
    )
    .await?;
    if types::is_patient_data(t) {
        let mut access = caller.access(Action::Read, "history-type");
        access.resources = vec![t.to_string()];
        caller.audit(&state, &access).await?;
    }
    Ok(Fhir::json(StatusCode::OK, &bundle))
}
