//! The Bundles the API answers with: searchset (with paging links), history, and the responses
//! to transactions and batches.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::EhrState;
use super::caller::{Caller, patients_of};
use super::instance::HistoryParams;
use super::response::{entry, instant, parse_stored};
use crate::audit::Action;
use crate::auth::Interaction;
use crate::bundle::EntryOutcome;
use crate::datetime;
use crate::error::{Error, Result};
use crate::search::request::DEFAULT_COUNT;
use crate::search::{SearchRequest, SearchResult};
use crate::store::Version;

/// A page of history as a `history` Bundle.
pub async fn history_bundle(
    state: &EhrState,
    caller: &Caller,
    resource_type: Option<&str>,
    id: Option<&str>,
    params: &HistoryParams,
    path: &str,
) -> Result<Value> {
    let count = params
        .count
        .unwrap_or(DEFAULT_COUNT)
        .min(crate::search::request::MAX_COUNT);
    let offset = params.offset.unwrap_or(0);
    let since = params
        .since
        .as_deref()
        .map(|s| datetime::parse_range(s).map(|r| r.start))
        .transpose()
        .map_err(|e| Error::invalid(format!("_since: {e}")))?;
    let page = state
        .store()
        .history(resource_type, id, since, count, offset)
        .await?;
    let mut entries = Vec::new();
    for version in &page.versions {
        let mut item = json!({
            "fullUrl": format!("{}/{}/{}", caller.base, version.resource_type, version.id),
            "request": {
                "method": version.method,
                "url": if version.method == "POST" { version.resource_type.clone() } else { format!("{}/{}", version.resource_type, version.id) },
            },
            "response": {
                "status": match version.method.as_str() { "POST" => "201 Created", "DELETE" => "204 No Content", _ => "200 OK" },
                "etag": format!("W/\"{}\"", version.version),
                "lastModified": instant(version),
            },
        });
        if version.content.is_some() {
            item["resource"] = parse_stored(version)?;
        }
        entries.push(item);
    }
    let mut query = vec![("_count".to_string(), count.to_string())];
    if let Some(since) = &params.since {
        query.push(("_since".to_string(), since.clone()));
    }
    let links = paging_links(
        &format!("{}/{path}", caller.base),
        &query,
        offset,
        count,
        page.more,
    );
    Ok(json!({
        "resourceType": "Bundle",
        "type": "history",
        "link": links,
        "entry": entries,
    }))
}

/// `self`, `first`, `previous` and `next` links for offset paging.
pub fn paging_links(
    url: &str,
    query: &[(String, String)],
    offset: usize,
    count: usize,
    more: bool,
) -> Vec<Value> {
    let link = |relation: &str, at: Option<usize>| {
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "_offset")
            .cloned()
            .collect();
        if let Some(at) = at.filter(|a| *a > 0) {
            pairs.push(("_offset".to_string(), at.to_string()));
        }
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let full = if encoded.is_empty() {
            url.to_string()
        } else {
            format!("{url}?{encoded}")
        };
        json!({"relation": relation, "url": full})
    };
    let mut links = vec![link("self", Some(offset)), link("first", None)];
    if offset > 0 && count > 0 {
        links.push(link("previous", Some(offset.saturating_sub(count))));
    }
    if more {
        links.push(link("next", Some(offset + count)));
    }
    links
}

/// Answers a search: authorizes what was found, audits it, and builds the searchset Bundle.
pub async fn search_bundle(
    state: &EhrState,
    caller: &Caller,
    request: &SearchRequest,
    result: SearchResult,
    url: &str,
    query: &[(String, String)],
) -> Result<Value> {
    let mut patients = Vec::new();
    let mut entries = Vec::new();
    let add = |version: &Version,
               mode: &str,
               entries: &mut Vec<Value>,
               patients: &mut Vec<String>|
     -> Result<()> {
        let mut resource = parse_stored(version)?;
        if mode == "include"
            && caller
                .authorize(
                    &version.resource_type,
                    &version.id,
                    Interaction::Read,
                    &resource,
                )
                .is_err()
        {
            return Ok(());
        }
        patients.extend(patients_of(&version.resource_type, &version.id, &resource));
        if mode == "match"
            && let Some(elements) = &request.elements
        {
            subset(&mut resource, elements);
        }
        entries.push(entry(&caller.base, version, resource, Some(mode)));
        Ok(())
    };
    for version in &result.matches {
        add(version, "match", &mut entries, &mut patients)?;
    }
    for version in &result.included {
        add(version, "include", &mut entries, &mut patients)?;
    }
    if crate::types::is_patient_data(request.resource_type) || !patients.is_empty() {
        let encoded = serde_urlencoded::to_string(query).unwrap_or_default();
        let mut access = caller.access(Action::Read, "search-type");
        access.resources = vec![request.resource_type.to_string()];
        access.patients = patients;
        access.query = Some(&encoded);
        caller.audit(state, &access).await?;
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": paging_links(url, query, request.offset, request.count, result.more),
        "entry": entries,
    });
    if let Some(total) = result.total {
        bundle["total"] = json!(total);
    }
    if bundle["entry"].as_array().is_some_and(Vec::is_empty) {
        bundle.as_object_mut().map(|b| b.remove("entry"));
    }
    Ok(bundle)
}

/// Keeps only `elements` (and the mandatory ones) and marks the resource SUBSETTED.
fn subset(resource: &mut Value, elements: &[String]) {
    if let Value::Object(map) = resource {
        map.retain(|k, _| {
            matches!(k.as_str(), "resourceType" | "id" | "meta") || elements.iter().any(|e| e == k)
        });
        let meta = map.entry("meta").or_insert_with(|| json!({}));
        let tag = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
        match meta.get_mut("tag").and_then(Value::as_array_mut) {
            Some(tags) => tags.push(tag),
            None => meta["tag"] = json!([tag]),
        }
    }
}

/// The `transaction-response` or `batch-response` Bundle. `gets` holds the answers to GET
/// entries, in order.
pub fn response_bundle(
    kind: &str,
    base: &str,
    outcomes: &[EntryOutcome],
    mut gets: Vec<Value>,
    representation: bool,
) -> Value {
    gets.reverse();
    let entries: Vec<Value> = outcomes
        .iter()
        .map(|outcome| match outcome {
            EntryOutcome::Written(w) => {
                let mut item = json!({"response": {
                    "status": if w.created { "201 Created" } else { "200 OK" },
                    "location": format!("{}/{}/_history/{}", w.resource_type, w.id, w.version),
                    "etag": format!("W/\"{}\"", w.version),
                    "lastModified": datetime::format_instant(w.last_updated),
                }});
                if representation && let Some(resource) = &w.resource {
                    item["fullUrl"] = json!(format!("{base}/{}/{}", w.resource_type, w.id));
                    item["resource"] = resource.clone();
                }
                item
            }
            EntryOutcome::Existing { resource_type, id } => {
                json!({"response": {"status": "200 OK", "location": format!("{resource_type}/{id}")}})
            }
            EntryOutcome::Deleted => json!({"response": {"status": "204 No Content"}}),
            EntryOutcome::Get(_) => gets.pop().unwrap_or_else(|| json!({"response": {"status": "500 Internal Server Error"}})),
            EntryOutcome::Failed(error) => json!({"response": {
                "status": status_line(error.status()),
                "outcome": error.to_outcome(),
            }}),
        })
        .collect();
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

/// `"404 Not Found"` from `404`.
pub fn status_line(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}")
}
