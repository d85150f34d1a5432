//! `cohort ehr import`: loads FHIR files into the store. Files are transaction or batch Bundles
//! (run as such), other Bundles or single resources (stored under their ids when they have one),
//! or NDJSON (one resource per line, as bulk export writes). Directories are read recursively,
//! in name order.
//!
//! Imports are repeatable: importing the same files again writes nothing new.
//! - Reference data repeated in every Synthea patient Bundle is not duplicated: a `POST` of an
//!   Organization or Practitioner with an identifier becomes a conditional create on it.
//! - With `keep_ids`, every `POST` of a resource that has an id becomes a `PUT` to that id.
//! - Otherwise each Bundle entry's `fullUrl` is recorded (table `import_sources`) with the id
//!   its resource got; a later import of an entry with that `fullUrl` becomes a `PUT` to the
//!   same id, which writes nothing when the resource is unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sqlx::Row;

use crate::bundle::{self, BundleKind, EntryOutcome};
use crate::error::{Error, Result};
use crate::store::{GroupCommit, Store, Tx};

/// Resources per transaction when importing NDJSON or collections.
const CHUNK: usize = 500;

/// Types de-duplicated on their first identifier.
const SHARED: &[&str] = &["Organization", "Practitioner"];

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Files read.
    pub files: usize,
    /// Resources written, by type.
    pub written: BTreeMap<String, usize>,
    /// Entries that found their resource already stored (conditional creates, unchanged PUTs).
    pub existing: BTreeMap<String, usize>,
}

impl ImportReport {
    /// All resources written.
    pub fn total(&self) -> usize {
        self.written.values().sum()
    }
}

/// Import options.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Store resources under the ids they carry (`PUT`) instead of server-assigned ids.
    pub keep_ids: bool,
}

/// Imports every file under `paths`.
pub async fn import_paths(
    store: &Store,
    paths: &[PathBuf],
    options: ImportOptions,
) -> Result<ImportReport> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    let mut report = ImportReport::default();
    let mut group = GroupCommit::new(store);
    let imported = import_files(&mut group, &files, options, &mut report).await;
    // what was imported before a failure stays
    group.finish().await?;
    imported.map(|()| report)
}

/// Imports `files` in turn, transaction Bundles grouped into shared database transactions.
async fn import_files(
    group: &mut GroupCommit<'_>,
    files: &[PathBuf],
    options: ImportOptions,
    report: &mut ImportReport,
) -> Result<()> {
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
            path: file.display().to_string(),
            source,
        })?;
        let named = |e: Error| Error::Invalid {
            message: format!("{}: {e}", file.display()),
            expression: None,
        };
        if file.extension().is_some_and(|e| e == "ndjson") {
            let mut resources = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                resources.push(
                    serde_json::from_str(line)
                        .map_err(|e| named(Error::invalid(format!("line {}: {e}", i + 1))))?,
                );
            }
            group.finish().await?;
            import_resources(group.store(), resources, report)
                .await
                .map_err(named)?;
        } else {
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| named(Error::invalid(format!("not JSON: {e}"))))?;
            import_value(group, value, options, report)
                .await
                .map_err(named)?;
        }
        report.files += 1;
    }
    Ok(())
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    if path.is_dir() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        children.sort();
        for child in children {
            if child.is_dir()
                || child
                    .extension()
                    .is_some_and(|e| e == "json" || e == "ndjson")
            {
                collect_files(&child, out)?;
            }
        }
        Ok(())
    } else if path.exists() {
        out.push(path.to_path_buf());
        Ok(())
    } else {
        Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory",
        )))
    }
}

/// Imports one parsed file: a Bundle or a resource. A transaction Bundle is a part of the
/// group's open transaction; anything else first commits the group.
pub async fn import_value(
    group: &mut GroupCommit<'_>,
    value: Value,
    options: ImportOptions,
    report: &mut ImportReport,
) -> Result<()> {
    let is_bundle = value.get("resourceType").and_then(Value::as_str) == Some("Bundle");
    match (is_bundle, BundleKind::of(&value)) {
        (true, Ok(BundleKind::Transaction)) => {
            let (part, tx) = group.begin_part().await?;
            let outcome = async {
                let mut bundle = prepare(tx, value, options).await?;
                let outcomes = bundle::transaction(tx, &mut bundle).await?;
                remember_sources(tx, &bundle, &outcomes).await?;
                Ok((bundle, outcomes))
            }
            .await;
            let written = outcome.as_ref().map_or(0, |(_, o)| o.len());
            let (bundle, outcomes) = group.end_part(part, outcome, written).await?;
            tally(&bundle, &outcomes, report)
        }
        (true, Ok(BundleKind::Batch)) => {
            group.finish().await?;
            let store = group.store();
            let mut tx = store.begin().await?;
            let bundle = prepare(&mut tx, value, options).await?;
            drop(tx);
            // Each entry runs in a transaction of its own.
            let outcomes = bundle::batch(store, &bundle).await?;
            let mut tx = store.begin().await?;
            remember_sources(&mut tx, &bundle, &outcomes).await?;
            tx.commit().await?;
            tally(&bundle, &outcomes, report)
        }
        (true, Err(_)) => {
            group.finish().await?;
            let resources = value
                .get("entry")
                .and_then(Value::as_array)
                .map(|entries| {
                    entries
                        .iter()
                        .filter_map(|e| e.get("resource").cloned())
                        .collect()
                })
                .unwrap_or_default();
            import_resources(group.store(), resources, report).await
        }
        (false, _) => {
            group.finish().await?;
            import_resources(group.store(), vec![value], report).await
        }
    }
}

/// Stores loose resources in transactions of [`CHUNK`], under their ids when they have one.
async fn import_resources(
    store: &Store,
    resources: Vec<Value>,
    report: &mut ImportReport,
) -> Result<()> {
    for chunk in resources.chunks(CHUNK) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let t = r
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let request = match r.get("id").and_then(Value::as_str) {
                    Some(id) => json!({"method": "PUT", "url": format!("{t}/{id}")}),
                    None => json!({"method": "POST", "url": t}),
                };
                json!({"resource": r, "request": request})
            })
            .collect();
        let mut bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let mut tx = store.begin().await?;
        let outcomes = bundle::transaction(&mut tx, &mut bundle).await?;
        tx.commit().await?;
        tally(&bundle, &outcomes, report)?;
    }
    Ok(())
}

/// Applies the import rules to a transaction or batch Bundle's entries.
async fn prepare(tx: &mut Tx, mut bundle: Value, options: ImportOptions) -> Result<Value> {
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
        return Ok(bundle);
    };
    for entry in entries {
        let Some(resource) = entry.get("resource") else {
            continue;
        };
        let t = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_post = entry.pointer("/request/method").and_then(Value::as_str) == Some("POST");
        let conditional = entry.pointer("/request/ifNoneExist").is_some();
        if !is_post || conditional {
            continue;
        }
        if options.keep_ids
            && let Some(id) = id
        {
            entry["request"] = json!({"method": "PUT", "url": format!("{t}/{id}")});
        } else if SHARED.contains(&t.as_str())
            && let Some((system, value)) = first_identifier(resource)
        {
            let query = serde_urlencoded::to_string([("identifier", format!("{system}|{value}"))])
                .unwrap_or_default();
            entry["request"]["ifNoneExist"] = json!(query);
        } else if let Some(source) = entry.get("fullUrl").and_then(Value::as_str)
            && let Some(id) = imported_id(tx, source, &t).await?
        {
            entry["request"] = json!({"method": "PUT", "url": format!("{t}/{id}")});
            entry["resource"]["id"] = json!(id);
        }
    }
    Ok(bundle)
}

/// The id under which the entry with `fullUrl` `source` was imported as a `resource_type`.
async fn imported_id(tx: &mut Tx, source: &str, resource_type: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT res_id FROM import_sources WHERE source = $1 AND res_type = $2")
        .bind(source)
        .bind(resource_type)
        .fetch_optional(tx.connection().await?)
        .await?;
    Ok(row.map(|r| r.try_get("res_id")).transpose()?)
}

/// Records where each entry with a `fullUrl` was stored, for the next import of it.
async fn remember_sources(tx: &mut Tx, bundle: &Value, outcomes: &[EntryOutcome]) -> Result<()> {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (entry, outcome) in entries.iter().zip(outcomes) {
        let (resource_type, id) = match outcome {
            EntryOutcome::Written(w) => (w.resource_type, &w.id),
            EntryOutcome::Existing { resource_type, id } => (*resource_type, id),
            _ => continue,
        };
        let Some(source) = entry.get("fullUrl").and_then(Value::as_str) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO import_sources (source, res_type, res_id) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET res_type = excluded.res_type, res_id = excluded.res_id",
        )
        .bind(source)
        .bind(resource_type)
        .bind(id.as_str())
        .execute(tx.connection().await?)
        .await?;
    }
    Ok(())
}

fn first_identifier(resource: &Value) -> Option<(String, String)> {
    resource
        .get("identifier")?
        .as_array()?
        .iter()
        .find_map(|i| {
            let system = i.get("system")?.as_str()?;
            let value = i.get("value")?.as_str()?;
            Some((system.replace('|', "\\|"), value.replace('|', "\\|")))
        })
}

fn tally(bundle: &Value, outcomes: &[EntryOutcome], report: &mut ImportReport) -> Result<()> {
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            EntryOutcome::Written(w) => {
                let book = if w.changed {
                    &mut report.written
                } else {
                    &mut report.existing
                };
                *book.entry(w.resource_type.to_string()).or_default() += 1;
            }
            EntryOutcome::Existing { resource_type, .. } => {
                *report
                    .existing
                    .entry(resource_type.to_string())
                    .or_default() += 1;
            }
            EntryOutcome::Failed(error) => {
                let request = bundle
                    .pointer(&format!("/entry/{i}/request/url"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                return Err(Error::invalid(format!(
                    "batch entry {i} ({request}) failed: {error}"
                )));
            }
            EntryOutcome::Deleted | EntryOutcome::Get(_) => {}
        }
    }
    Ok(())
}
