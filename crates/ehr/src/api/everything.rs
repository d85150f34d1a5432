//! `GET Patient/[id]/$everything` and compartment searches (`GET Patient/[id]/Observation`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::json;

use super::EhrState;
use super::caller::Caller;
use super::response::{ApiResult, Fhir, entry, parse_stored};
use super::type_level::run_search;
use crate::audit::Action;
use crate::auth::Interaction;
use crate::bundle::parse_query;
use crate::datetime;
use crate::error::Error;
use crate::types;

/// `GET [type]/[id]/[operation-or-type]`
pub async fn operation_or_compartment(
    State(state): State<EhrState>,
    caller: Caller,
    Path((t, id, operation)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let pairs = query
        .as_deref()
        .map(parse_query)
        .transpose()?
        .unwrap_or_default();
    match (t.as_str(), operation.as_str()) {
        ("Patient", "$everything") => everything(&state, &caller, &id, &pairs).await,
        ("Patient", compartment_type) if !compartment_type.starts_with('$') => {
            let target = types::resource_type(compartment_type)?;
            if !types::is_patient_data(target) {
                return Err(
                    Error::invalid(format!("{target} is not in the Patient compartment")).into(),
                );
            }
            run_search(&state, &caller, target, pairs, Some(id)).await
        }
        (_, op) if op.starts_with('$') => {
            Err(Error::NotFound(format!("operation {op} is not supported on {t}")).into())
        }
        _ => Err(Error::NotFound(format!("no FHIR endpoint at {t}/{id}/{operation}")).into()),
    }
}

/// The patient's whole record as a searchset Bundle (`_type` and `_since` narrow it). Only the
/// types the caller may read are included.
async fn everything(
    state: &EhrState,
    caller: &Caller,
    id: &str,
    pairs: &[(String, String)],
) -> ApiResult {
    let mut types_wanted: Option<Vec<String>> = None;
    let mut since = None;
    for (key, value) in pairs {
        match key.as_str() {
            "_type" => {
                let list = value
                    .split(',')
                    .map(|t| types::resource_type(t.trim()).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?;
                types_wanted = Some(list);
            }
            "_since" => {
                since = Some(
                    datetime::parse_range(value)
                        .map_err(|e| Error::invalid(format!("_since: {e}")))?
                        .start,
                );
            }
            "_format" | "_count" => {}
            other => {
                return Err(Error::invalid(format!("$everything does not take {other}")).into());
            }
        }
    }
    let patient = state.store().read("Patient", id).await?;
    caller.authorize("Patient", id, Interaction::Read, &parse_stored(&patient)?)?;
    let versions = state
        .store()
        .everything(id, types_wanted.as_deref(), since)
        .await?;
    let mut entries = Vec::new();
    for version in &versions {
        let resource = parse_stored(version)?;
        if caller
            .authorize(
                &version.resource_type,
                &version.id,
                Interaction::Read,
                &resource,
            )
            .is_ok()
        {
            entries.push(entry(&caller.base, version, resource, Some("match")));
        }
    }
    let mut access = caller.access(Action::Read, "operation");
    access.resources = vec![format!("Patient/{id}")];
    access.patients = vec![id.to_string()];
    access.description = Some(format!("$everything: {} resources", entries.len()));
    caller.audit(state, &access).await?;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{}/Patient/{id}/$everything", caller.base)}],
        "entry": entries,
    });
    Ok(Fhir::json(StatusCode::OK, &bundle))
}
