//! Transaction and batch Bundles: a transaction is all-or-nothing, with `urn:uuid:` and other
//! local references resolved to the ids the server assigns; a batch runs each entry on its own.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{Store, Tx, Written};
use crate::types;

/// What a Bundle asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleKind {
    /// All entries or none.
    Transaction,
    /// Each entry independently.
    Batch,
}

impl BundleKind {
    /// Reads `Bundle.type`, which must be `transaction` or `batch`.
    pub fn of(bundle: &Value) -> Result<BundleKind> {
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(Error::invalid_at(
                "resourceType",
                "POST to the base URL takes a Bundle of type transaction or batch",
            ));
        }
        match bundle.get("type").and_then(Value::as_str) {
            Some("transaction") => Ok(BundleKind::Transaction),
            Some("batch") => Ok(BundleKind::Batch),
            other => Err(Error::invalid_at(
                "Bundle.type",
                format!(
                    "Bundle.type must be transaction or batch, not {}",
                    other.unwrap_or("missing")
                ),
            )),
        }
    }
}

/// The interaction of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Read or search.
    Get,
    /// Create.
    Post,
    /// Update.
    Put,
    /// Delete.
    Delete,
}

/// One entry's request, parsed.
#[derive(Clone, Debug)]
pub struct EntryRequest {
    /// The interaction.
    pub method: Method,
    /// The type its URL names.
    pub resource_type: &'static str,
    /// The id its URL names, if any.
    pub id: Option<String>,
    /// Search criteria of a conditional URL (`Type?criteria`), if any.
    pub criteria: Option<Vec<(String, String)>>,
    /// The URL as given (for GET entries and messages).
    pub url: String,
    /// `ifNoneExist` criteria (conditional create).
    pub if_none_exist: Option<Vec<(String, String)>>,
    /// `ifMatch` version.
    pub if_match: Option<i64>,
}

/// What happened to one entry.
#[derive(Debug)]
pub enum EntryOutcome {
    /// Created (201) or updated (200).
    Written(Written),
    /// A conditional create found the resource already there (200, nothing written).
    Existing {
        /// Its type.
        resource_type: &'static str,
        /// Its id.
        id: String,
    },
    /// Deleted (or already absent): 204.
    Deleted,
    /// A GET entry, for the caller to answer as an ordinary read or search.
    Get(String),
    /// The entry failed (batch only).
    Failed(Error),
}

/// A transaction Bundle that writes each of `resources` at its own id (`PUT Type/id`): how a
/// loader hands a record to [`transaction`].
pub fn put_transaction(resources: impl IntoIterator<Item = Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let url = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            serde_json::json!({"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Parses `request` of entry `index`.
pub fn parse_request(entry: &Value) -> Result<EntryRequest> {
    let request = entry
        .get("request")
        .ok_or_else(|| Error::invalid_at("request", "entry.request is required"))?;
    let method = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("DELETE") => Method::Delete,
        Some("PATCH") => return Err(Error::NotAllowed("PATCH is not supported".into())),
        other => {
            return Err(Error::invalid_at(
                "request.method",
                format!("request.method {other:?} is not GET, POST, PUT or DELETE"),
            ));
        }
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid_at("request.url", "request.url is required"))?;
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resource_type = types::resource_type(segments[0])?;
    let id = segments.get(1).map(|s| s.to_string());
    if let Some(id) = &id
        && method != Method::Get
        && (segments.len() > 2 || !types::is_valid_id(id))
    {
        return Err(Error::invalid_at(
            "request.url",
            format!("{url:?} is not Type/id"),
        ));
    }
    let criteria = query.map(parse_query).transpose()?;
    let header_criteria = |key: &str| {
        request
            .get(key)
            .and_then(Value::as_str)
            .map(|q| parse_query(q.trim_start_matches('?')))
            .transpose()
    };
    let if_match = request
        .get("ifMatch")
        .and_then(Value::as_str)
        .map(parse_etag)
        .transpose()?;
    let parsed = EntryRequest {
        method,
        resource_type,
        id,
        criteria,
        url: url.to_string(),
        if_none_exist: header_criteria("ifNoneExist")?,
        if_match,
    };
    match method {
        Method::Post if parsed.id.is_some() => Err(Error::invalid_at(
            "request.url",
            "POST goes to Type, not Type/id",
        )),
        Method::Put | Method::Delete if parsed.id.is_none() && parsed.criteria.is_none() => {
            Err(Error::invalid_at(
                "request.url",
                format!("{url:?} needs an id or search criteria"),
            ))
        }
        _ => Ok(parsed),
    }
}

/// Parses a query string into pairs.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Error::invalid(format!("bad query string {query:?}: {e}")))?;
    if let Some((key, _)) = pairs
        .iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(Error::invalid(format!(
            "parameter {key:?} contains a NUL character (%00), which no FHIR value can hold"
        )));
    }
    Ok(pairs)
}

/// Reads a version from an ETag (`W/"3"` or `3`).
pub fn parse_etag(text: &str) -> Result<i64> {
    text.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| Error::invalid(format!("{text:?} is not a version ETag like W/\"3\"")))
}

fn entries(bundle: &Value) -> Result<&[Value]> {
    match bundle.get("entry") {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Error::invalid_at(
            "Bundle.entry",
            "Bundle.entry must be an array",
        )),
    }
}

/// Each entry's resource, moved out of `bundle` (entries without one give `None`).
fn take_resources(bundle: &mut Value) -> Vec<Option<Value>> {
    match bundle.get_mut("entry") {
        Some(Value::Array(items)) => items
            .iter_mut()
            .map(|entry| entry.get_mut("resource").map(Value::take))
            .collect(),
        _ => Vec::new(),
    }
}

fn request_line(entry: &Value) -> String {
    let request = entry.get("request");
    let field = |k: &str| {
        request
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .unwrap_or("?")
    };
    format!("{} {}", field("method"), field("url"))
}

fn at_entry(index: usize, entry: &Value) -> impl Fn(Error) -> Error + '_ {
    move |error| match error {
        Error::Entry { .. } => error,
        other => Error::Entry {
            index,
            request: request_line(entry),
            source: Box::new(other),
        },
    }
}

/// Runs a transaction Bundle inside `tx` (the caller commits). Any failure names its entry and
/// leaves the transaction to be rolled back. The entries' resources are moved out of `bundle`
/// (a large Bundle is not held twice); the rest of it is left as it was.
pub async fn transaction(tx: &mut Tx, bundle: &mut Value) -> Result<Vec<EntryOutcome>> {
    let entries = entries(bundle)?;
    let mut requests = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        requests.push(parse_request(entry).map_err(at_entry(i, entry))?);
    }
    // Identities: where each entry's resource will live; fullUrl → Type/id.
    let mut targets: Vec<Option<(&'static str, String, bool)>> = Vec::with_capacity(entries.len());
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut claimed = HashSet::new();
    for (i, (entry, request)) in entries.iter().zip(&requests).enumerate() {
        let target = identity(tx, request).await.map_err(at_entry(i, entry))?;
        if let Some((t, id, _)) = &target {
            if request.method != Method::Get && !claimed.insert((*t, id.clone())) {
                return Err(at_entry(i, entry)(Error::invalid(format!(
                    "{t}/{id} appears in more than one entry of the transaction"
                ))));
            }
            if let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) {
                aliases.insert(full_url.to_string(), format!("{t}/{id}"));
            }
        }
        targets.push(target);
    }
    // Resolve references in every resource before anything is written.
    let mut taken = take_resources(bundle);
    let entries = crate::bundle::entries(bundle)?;
    let mut resources = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let resource = match (requests[i].method, taken[i].take()) {
            (Method::Post | Method::Put, Some(mut r)) => {
                resolve_references(tx, &mut r, &aliases)
                    .await
                    .map_err(at_entry(i, entry))?;
                Some(r)
            }
            (Method::Post | Method::Put, None) => {
                return Err(at_entry(i, entry)(Error::invalid(
                    "entry.resource is required for POST and PUT",
                )));
            }
            _ => None,
        };
        resources.push(resource);
    }
    let mut outcomes: Vec<Option<EntryOutcome>> = entries.iter().map(|_| None).collect();
    for pass in [Method::Delete, Method::Post, Method::Put, Method::Get] {
        for (i, entry) in entries.iter().enumerate() {
            let request = &requests[i];
            if request.method != pass {
                continue;
            }
            tx.set_entry(i, request_line(entry));
            let outcome = apply(tx, request, targets[i].clone(), resources[i].take())
                .await
                .map_err(at_entry(i, entry))?;
            outcomes[i] = Some(outcome);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(EntryOutcome::Deleted))
        .collect())
}

/// Runs a batch Bundle: every entry in its own transaction; failures are reported per entry.
pub async fn batch(store: &Store, bundle: &Value) -> Result<Vec<EntryOutcome>> {
    let mut outcomes = Vec::new();
    for entry in entries(bundle)? {
        let outcome = async {
            let request = parse_request(entry)?;
            let mut tx = store.begin().await?;
            let target = identity(&mut tx, &request).await?;
            let resource = entry.get("resource").cloned();
            if matches!(request.method, Method::Post | Method::Put) && resource.is_none() {
                return Err(Error::invalid(
                    "entry.resource is required for POST and PUT",
                ));
            }
            let outcome = apply(&mut tx, &request, target, resource).await?;
            tx.commit().await?;
            Ok(outcome)
        }
        .await;
        outcomes.push(outcome.unwrap_or_else(EntryOutcome::Failed));
    }
    Ok(outcomes)
}

/// Where an entry's resource will live: `(type, id, exists)`, where `exists` means a
/// conditional create matched and nothing is to be written.
async fn identity(
    tx: &mut Tx,
    request: &EntryRequest,
) -> Result<Option<(&'static str, String, bool)>> {
    let t = request.resource_type;
    match request.method {
        Method::Post => {
            if let Some(criteria) = &request.if_none_exist
                && let Some(id) = tx.conditional_match(t, criteria, "create").await?
            {
                return Ok(Some((t, id, true)));
            }
            Ok(Some((t, crate::store::new_id(), false)))
        }
        Method::Put | Method::Delete => match (&request.id, &request.criteria) {
            (Some(id), _) => Ok(Some((t, id.clone(), false))),
            (None, Some(criteria)) => {
                let interaction = if request.method == Method::Put {
                    "update"
                } else {
                    "delete"
                };
                match tx.conditional_match(t, criteria, interaction).await? {
                    Some(id) => Ok(Some((t, id, false))),
                    None if request.method == Method::Put => {
                        Ok(Some((t, crate::store::new_id(), false)))
                    }
                    None => Ok(None),
                }
            }
            (None, None) => Err(Error::invalid("no id or criteria")),
        },
        Method::Get => Ok(None),
    }
}

async fn apply(
    tx: &mut Tx,
    request: &EntryRequest,
    target: Option<(&'static str, String, bool)>,
    resource: Option<Value>,
) -> Result<EntryOutcome> {
    match (request.method, target, resource) {
        (Method::Get, _, _) => Ok(EntryOutcome::Get(request.url.clone())),
        (Method::Delete, None, _) => Ok(EntryOutcome::Deleted),
        (Method::Delete, Some((t, id, _)), _) => {
            tx.delete(t, &id).await?;
            Ok(EntryOutcome::Deleted)
        }
        (_, Some((t, id, true)), _) => Ok(EntryOutcome::Existing {
            resource_type: t,
            id,
        }),
        (Method::Post, Some((t, id, false)), Some(resource)) => {
            // A mismatch is found after the write, which then rolls back with the entry.
            let written = tx.create_with_id(resource, id).await?;
            if written.resource_type != t {
                return Err(Error::invalid_at(
                    "resourceType",
                    format!(
                        "the URL names {t} but the body is a {}",
                        written.resource_type
                    ),
                ));
            }
            Ok(EntryOutcome::Written(written))
        }
        (Method::Put, Some((t, id, false)), Some(mut resource)) => {
            if request.id.is_none() && resource.get("id").is_none() {
                resource["id"] = Value::String(id.clone());
            }
            Ok(EntryOutcome::Written(
                tx.update(t, &id, resource, request.if_match).await?,
            ))
        }
        _ => Err(Error::invalid(
            "entry.resource is required for POST and PUT",
        )),
    }
}

/// Rewrites every `reference` that names another entry's fullUrl, and resolves conditional
/// references (`Type?criteria`) to the one resource they match.
async fn resolve_references(
    tx: &mut Tx,
    value: &mut Value,
    aliases: &HashMap<String, String>,
) -> Result<()> {
    let mut conditional = Vec::new();
    rewrite(value, aliases, &mut conditional);
    for reference in conditional {
        let (t, query) = reference.split_once('?').unwrap_or((&reference, ""));
        let t = types::resource_type(t)?;
        let ids = tx.matching_ids(t, &parse_query(query)?, 2).await?;
        let resolved = match ids.as_slice() {
            [id] => format!("{t}/{id}"),
            [] => {
                return Err(Error::invalid(format!(
                    "conditional reference {reference:?} matches nothing"
                )));
            }
            _ => {
                return Err(Error::PreconditionFailed(format!(
                    "conditional reference {reference:?} matches more than one {t}"
                )));
            }
        };
        let mut map = HashMap::new();
        map.insert(reference.clone(), resolved);
        rewrite(value, &map, &mut Vec::new());
    }
    Ok(())
}

fn rewrite(value: &mut Value, aliases: &HashMap<String, String>, conditional: &mut Vec<String>) {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite(v, aliases, conditional)),
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(text) = child
                {
                    if let Some(target) = aliases.get(text.as_str()) {
                        *text = target.clone();
                    } else if text.contains('?') && !text.contains("://") {
                        conditional.push(text.clone());
                    }
                } else if key == "url"
                    && let Value::String(text) = child
                {
                    // An Attachment's url naming a resource of the bundle (a recording's
                    // Binary): FHIR asks for every link to a new resource to be rewritten.
                    if let Some(target) = aliases.get(text.as_str()) {
                        *text = target.clone();
                    }
                } else {
                    rewrite(child, aliases, conditional);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_requests_are_parsed_with_their_conditions() {
        let e = json!({"request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=http://x|1"}});
        let r = parse_request(&e).unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(
            r.if_none_exist,
            Some(vec![("identifier".to_string(), "http://x|1".to_string())])
        );
        let e = json!({"request": {"method": "PUT", "url": "Patient?identifier=a%7Cb", "ifMatch": "W/\"2\""}});
        let r = parse_request(&e).unwrap();
        assert_eq!(
            r.criteria,
            Some(vec![("identifier".to_string(), "a|b".to_string())])
        );
        assert_eq!(r.if_match, Some(2));
    }

    #[test]
    fn malformed_entry_requests_are_refused() {
        for e in [
            json!({}),
            json!({"request": {"method": "PATCH", "url": "Patient/1"}}),
            json!({"request": {"method": "PUT", "url": "Patient"}}),
            json!({"request": {"method": "POST", "url": "Patient/1"}}),
            json!({"request": {"method": "POST", "url": "Nope"}}),
            json!({"request": {"method": "FETCH", "url": "Patient"}}),
        ] {
            assert!(parse_request(&e).is_err(), "{e}");
        }
    }

    #[test]
    fn local_references_are_rewritten_and_conditional_ones_collected() {
        let mut v = json!({"subject": {"reference": "urn:uuid:1"}, "performer": [{"reference": "Practitioner?identifier=x"}], "note": [{"text": "urn:uuid:1"}],
            "content": [{"attachment": {"url": "urn:uuid:1"}}], "extension": [{"url": "http://x", "valueUrl": "urn:uuid:1"}]});
        let aliases = HashMap::from([("urn:uuid:1".to_string(), "Patient/abc".to_string())]);
        let mut conditional = Vec::new();
        rewrite(&mut v, &aliases, &mut conditional);
        assert_eq!(v["subject"]["reference"], "Patient/abc");
        assert_eq!(v["note"][0]["text"], "urn:uuid:1");
        assert_eq!(v["content"][0]["attachment"]["url"], "Patient/abc");
        assert_eq!(v["extension"][0]["url"], "http://x");
        assert_eq!(conditional, vec!["Practitioner?identifier=x".to_string()]);
    }
}
