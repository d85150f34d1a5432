//! Interactions on one resource: read, vread, update, delete, instance history.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;

use super::EhrState;
use super::bundles::history_bundle;
use super::caller::{Caller, non_json_accept, patients_of};
use super::response::{ApiResult, Fhir, parse_body, parse_stored, written_response};
use crate::audit::Action;
use crate::auth::Interaction;
use crate::bundle::parse_etag;
use crate::error::Error;
use crate::store::{Tx, Version};
use crate::types;

async fn answer_read(
    state: &EhrState,
    caller: &Caller,
    version: Version,
    headers: &HeaderMap,
    interaction: &str,
) -> ApiResult {
    let resource = parse_stored(&version)?;
    caller.authorize(
        &version.resource_type,
        &version.id,
        Interaction::Read,
        &resource,
    )?;
    let mut access = caller.access(Action::Read, interaction);
    access.resources = vec![format!(
        "{}/{}/_history/{}",
        version.resource_type, version.id, version.version
    )];
    access.patients = patients_of(&version.resource_type, &version.id, &resource);
    caller.audit(state, &access).await?;
    let etag = format!("W/\"{}\"", version.version);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok(Fhir::empty(StatusCode::NOT_MODIFIED).header(header::ETAG, etag));
    }
    let body = match non_json_accept(headers) {
        Some(accept) if version.resource_type == "Binary" => binary_content(&resource, accept)?,
        _ => Fhir::json(StatusCode::OK, &resource),
    };
    Ok(body.versioned(
        &caller.base,
        &version.resource_type,
        &version.id,
        version.version,
        version.last_updated,
        false,
    ))
}

/// The content of a Binary, for a client that asked for it rather than for FHIR JSON (FHIR R4
/// Binary: "read with an Accept header that is not a FHIR format").
fn binary_content(binary: &serde_json::Value, accept: &str) -> Result<Fhir, Error> {
    let content_type = binary["contentType"].as_str().unwrap_or_default();
    let media = |t: &str| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let wanted = accept.split(',').map(media).any(|a| {
        a == media(content_type)
            || a.strip_suffix("/*")
                .is_some_and(|top| media(content_type).starts_with(&format!("{top}/")))
    });
    if !wanted {
        return Err(Error::NotAcceptable(format!(
            "Accept: {accept} cannot be served: this Binary is {content_type} (or ask for application/fhir+json)"
        )));
    }
    let data: String = binary["data"]
        .as_str()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| Error::Corrupt(format!("Binary data: {e}")))?;
    Ok(Fhir::bytes(StatusCode::OK, bytes, content_type.to_string()))
}

/// `GET [type]/[id]`: a Binary asked for with its own media type in `Accept` is answered with
/// its content.
pub async fn read(
    State(state): State<EhrState>,
    caller: Caller,
    Path((t, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    let version = state.store().read(t, &id).await?;
    answer_read(&state, &caller, version, &headers, "read").await
}

/// `GET [type]/[id]/_history/[vid]`
pub async fn vread(
    State(state): State<EhrState>,
    caller: Caller,
    Path((t, id, v)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    let v: i64 = v
        .parse()
        .map_err(|_| Error::NotFound(format!("{t}/{id}/_history/{v}")))?;
    let version = state.store().vread(t, &id, v).await?;
    answer_read(&state, &caller, version, &headers, "vread").await
}

/// `PUT [type]/[id]`, with `If-Match` for version-aware updates.
pub async fn update(
    State(state): State<EhrState>,
    caller: Caller,
    Path((t, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    refuse_audit_changes(t)?;
    let resource = parse_body(&headers, &body)?;
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(parse_etag)
        .transpose()?;
    let tx = state.store().begin().await?;
    update_resource(&state, &caller, tx, t, &id, resource, if_match, &headers).await
}

/// Updates (or creates) `t/id` on behalf of `caller` in `tx`, audited in the same transaction.
#[allow(clippy::too_many_arguments)]
pub async fn update_resource(
    state: &EhrState,
    caller: &Caller,
    mut tx: Tx,
    t: &'static str,
    id: &str,
    resource: serde_json::Value,
    if_match: Option<i64>,
    headers: &HeaderMap,
) -> ApiResult {
    // Read inside the transaction: taking a second connection while holding one starves the
    // pool under concurrent writes.
    let mut patients = Vec::new();
    if let Some(existing) = tx.current(t, id).await? {
        let existing = parse_stored(&existing)?;
        caller.authorize(t, id, Interaction::Update, &existing)?;
        patients = patients_of(t, id, &existing);
    }
    caller.authorize(t, id, Interaction::Update, &resource)?;
    let written = tx.update(t, id, resource, if_match).await?;
    let stored = written
        .resource
        .as_ref()
        .ok_or_else(|| Error::Corrupt("update stored nothing".into()))?;
    if written.created {
        caller.authorize(t, id, Interaction::Create, stored)?;
    }
    patients.extend(patients_of(t, id, stored));
    let action = if written.created {
        Action::Create
    } else {
        Action::Update
    };
    let mut access = caller.access(action, if written.created { "create" } else { "update" });
    access.resources = vec![format!("{t}/{id}/_history/{}", written.version)];
    access.patients = patients;
    caller.audit_in(state, &mut tx, &access).await?;
    tx.commit().await?;
    Ok(written_response(&caller.base, &written, headers))
}

/// AuditEvents are written by this server only: clients cannot create, update or delete them.
pub fn refuse_audit_changes(t: &str) -> Result<(), Error> {
    if t == "AuditEvent" {
        return Err(Error::NotAllowed(
            "AuditEvents are written by this server only: they cannot be created, updated or deleted through the API".into(),
        ));
    }
    Ok(())
}

/// `DELETE [type]/[id]`
pub async fn delete(
    State(state): State<EhrState>,
    caller: Caller,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    refuse_audit_changes(t)?;
    let tx = state.store().begin().await?;
    delete_resource(&state, &caller, tx, t, &id).await
}

/// Deletes `t/id` (if it exists) on behalf of `caller` in `tx`, audited in the same
/// transaction.
pub async fn delete_resource(
    state: &EhrState,
    caller: &Caller,
    mut tx: Tx,
    t: &'static str,
    id: &str,
) -> ApiResult {
    let Some(existing) = tx.current(t, id).await? else {
        caller.principal.access(t, Interaction::Delete)?;
        return Ok(Fhir::empty(StatusCode::NO_CONTENT));
    };
    let resource = parse_stored(&existing)?;
    caller.authorize(t, id, Interaction::Delete, &resource)?;
    let deleted = tx.delete(t, id).await?;
    let mut access = caller.access(Action::Delete, "delete");
    access.resources = vec![format!(
        "{t}/{id}/_history/{}",
        deleted.map_or(existing.version, |d| d.version)
    )];
    access.patients = patients_of(t, id, &resource);
    caller.audit_in(state, &mut tx, &access).await?;
    tx.commit().await?;
    Ok(Fhir::empty(StatusCode::NO_CONTENT))
}

/// Paging of history: `_count`, `_offset`, `_since`.
#[derive(serde::Deserialize, Default)]
pub struct HistoryParams {
    /// Page size.
    #[serde(rename = "_count")]
    pub count: Option<usize>,
    /// Versions to skip.
    #[serde(rename = "_offset")]
    pub offset: Option<usize>,
    /// Only versions written at or after this instant.
    #[serde(rename = "_since")]
    pub since: Option<String>,
}

/// `GET [type]/[id]/_history`
pub async fn history(
    State(state): State<EhrState>,
    caller: Caller,
    Path((t, id)): Path<(String, String)>,
    Query(params): Query<HistoryParams>,
) -> ApiResult {
    let t = types::resource_type(&t)?;
    // Authorize against the current version (or, once deleted, by type).
    let mut patients = Vec::new();
    let latest = state.store().read(t, &id).await;
    match latest {
        Ok(v) => {
            let resource = parse_stored(&v)?;
            caller.authorize(t, &id, Interaction::Read, &resource)?;
            patients = patients_of(t, &id, &resource);
        }
        Err(_) => caller.principal.require_all(t, Interaction::Read, false)?,
    }
    let bundle = history_bundle(
        &state,
        &caller,
        Some(t),
        Some(&id),
        &params,
        &format!("{t}/{id}/_history"),
    )
    .await?;
    let mut access = caller.access(Action::Read, "history-instance");
    access.resources = vec![format!("{t}/{id}")];
    access.patients = patients;
    caller.audit(&state, &access).await?;
    Ok(Fhir::json(StatusCode::OK, &bundle))
}
