//! Benchmarks (run by `cohort ehr bench`): Bundle ingest rate and search latency.
//!
//! Ingest replays transaction Bundles (e.g. the Synthea set) until a number of resources is
//! stored; every replay creates new resources (POST semantics). Search latency runs a fixed mix of
//! realistic queries whose values are sampled from the stored data, and reports percentiles.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::search::SearchRequest;
use crate::store::{GroupCommit, Store};

/// The outcome of an ingest run.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestReport {
    /// Resources stored.
    pub resources: usize,
    /// Transactions run.
    pub bundles: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl IngestReport {
    /// Resources per second.
    pub fn rate(&self) -> f64 {
        self.resources as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// Stores the transaction Bundles of `files` in turn, round after round, until at least
/// `target` resources were written, as a bulk load does: each Bundle all or nothing, many to a
/// database transaction ([`GroupCommit`]); the time ends when the last of them is committed. Each file is read and parsed when its turn comes (the time
/// counts), so memory holds one Bundle at a time; files that are not transaction Bundles are
/// skipped.
pub async fn ingest(store: &Store, files: &[PathBuf], target: usize) -> Result<IngestReport> {
    let start = Instant::now();
    let (mut resources, mut count) = (0, 0);
    let mut group = GroupCommit::new(store);
    'rounds: loop {
        let before = count;
        for file in files {
            let mut bundle = read_bundle(file)?;
            if bundle["type"] != "transaction" {
                continue;
            }
            let (part, tx) = group.begin_part().await?;
            let outcome = crate::bundle::transaction(tx, &mut bundle).await;
            let written = outcome.as_ref().map_or(0, Vec::len);
            resources += group.end_part(part, outcome, written).await?.len();
            count += 1;
            if resources >= target {
                break 'rounds;
            }
        }
        if count == before {
            return Err(Error::invalid("no transaction Bundles to ingest"));
        }
    }
    group.finish().await?;
    Ok(IngestReport {
        resources,
        bundles: count,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The `.json` files under `path` (or `path` itself), in path order: what [`ingest`] replays.
///
/// # Errors
/// A folder that cannot be read.
pub fn json_files(path: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    collect_json(path, &mut out)?;
    Ok(out)
}

fn collect_json(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            collect_json(&entry, out)?;
        }
    } else if path.extension().is_some_and(|e| e == "json") {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// The JSON of `file`.
fn read_bundle(file: &Path) -> Result<Value> {
    let text = std::fs::read(file)
        .map_err(|e| Error::invalid(format!("cannot read {}: {e}", file.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::invalid(format!("{} is not JSON: {e}", file.display())))
}

/// Latency percentiles of a search run.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyReport {
    /// Searches run.
    pub queries: usize,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Mean, milliseconds.
    pub mean_ms: f64,
    /// Live resources in the store.
    pub resources: i64,
    /// Per query shape (e.g. `Observation?patient&code`): median and 99th percentile, ms.
    pub by_shape: Vec<(String, f64, f64)>,
}

/// The `q`-quantile of sorted `timings`.
fn quantile(timings: &[f64], q: f64) -> f64 {
    timings[((timings.len() - 1) as f64 * q).round() as usize]
}

/// `Type?a&b` from `Type` and `a=1&b=2`.
fn shape(resource_type: &str, query: &str) -> String {
    let names: Vec<&str> = query
        .split('&')
        .map(|p| p.split('=').next().unwrap_or(p))
        .collect();
    format!("{resource_type}?{}", names.join("&"))
}

/// Query strings for `Type?query`, with values sampled from the store.
async fn query_mix(store: &Store, samples: usize) -> Result<Vec<(String, String)>> {
    let patients = store.scan("Patient", 0, None, false, samples).await?;
    let observations = store
        .scan("Observation", 0, None, false, samples * 20)
        .await?;
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
    };
    let mut codes = Vec::new();
    for o in &observations {
        if let Some(coding) = parse(&o.content).and_then(|v| v.pointer("/code/coding/0").cloned())
            && let (Some(s), Some(c)) = (coding["system"].as_str(), coding["code"].as_str())
        {
            codes.push(format!("{s}|{c}"));
        }
    }
    codes.sort();
    codes.dedup();
    if patients.is_empty() || codes.is_empty() {
        return Err(Error::invalid(
            "the store holds no Patients or Observations to query",
        ));
    }
    let mut mix = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        let resource = parse(&p.content).unwrap_or_default();
        let family = resource
            .pointer("/name/0/family")
            .and_then(Value::as_str)
            .unwrap_or("a");
        let prefix: String = family.chars().take(4).collect();
        let code = &codes[i % codes.len()];
        let id = &p.id;
        mix.push(("Patient".to_string(), format!("family={prefix}")));
        mix.push((
            "Observation".to_string(),
            format!("patient={id}&code={code}"),
        ));
        mix.push((
            "Observation".to_string(),
            format!("code={code}&date=ge2025-06-01&_count=20"),
        ));
        mix.push(("Condition".to_string(), format!("patient={id}")));
        mix.push(("Encounter".to_string(), format!("patient={id}&_sort=-date")));
        mix.push((
            "Observation".to_string(),
            format!("subject:Patient.family={prefix}&_count=10"),
        ));
        if let Some(identifier) = resource.pointer("/identifier/1") {
            let system = identifier["system"].as_str().unwrap_or_default();
            let value = identifier["value"].as_str().unwrap_or_default();
            mix.push((
                "Patient".to_string(),
                format!("identifier={system}|{value}"),
            ));
        }
        mix.push((
            "Patient".to_string(),
            format!("_id={id}&_revinclude=Encounter:patient"),
        ));
    }
    Ok(mix)
}

/// Runs the query mix `rounds` times and reports latency.
pub async fn search_latency(store: &Store, rounds: usize) -> Result<LatencyReport> {
    let mix = query_mix(store, 50).await?;
    let mut timings = Vec::new();
    let mut shapes: std::collections::BTreeMap<String, Vec<f64>> =
        std::collections::BTreeMap::new();
    for _ in 0..rounds.max(1) {
        for (t, query) in &mix {
            let pairs = crate::bundle::parse_query(query)?;
            let request = SearchRequest::parse(t, &pairs)?;
            let start = Instant::now();
            store.search(&request, None).await?;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            timings.push(ms);
            shapes.entry(shape(t, query)).or_default().push(ms);
        }
    }
    timings.sort_by(f64::total_cmp);
    let by_shape = shapes
        .into_iter()
        .map(|(name, mut t)| {
            t.sort_by(f64::total_cmp);
            (name, quantile(&t, 0.5), quantile(&t, 0.99))
        })
        .collect();
    Ok(LatencyReport {
        queries: timings.len(),
        p50_ms: quantile(&timings, 0.5),
        p99_ms: quantile(&timings, 0.99),
        mean_ms: timings.iter().sum::<f64>() / timings.len() as f64,
        by_shape,
        resources: store.counts().await?.iter().map(|(_, n)| n).sum(),
    })
}
