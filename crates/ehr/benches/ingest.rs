//! Bulk ingest rate of the FHIR store, then search latency on what was stored: `cohort ehr
//! bench`, built without the rest of `cohort` (whose release build takes half an hour on two
//! cores).
//!
//! ```text
//! cargo bench -p ehr --bench ingest -- sqlite:/tmp/ingest.db "$PWD/../shared/data/fhir-synthea" 100000
//! cargo bench -p ehr --bench ingest -- postgres://postgres@127.0.0.1:5432/ingest_bench /path/to/bundles 100000
//! ```
//!
//! Every `.json` file under `DIR` that is a transaction Bundle is replayed (POST semantics, new
//! resources each time) until the given number of resources is stored; start from an empty
//! database. Cargo runs benches in the crate's folder: give absolute paths. Peak memory: run the built binary under `/usr/bin/time -f %M` (searches hold
//! less than the ingest).

use std::path::Path;

use anyhow::{Context, bail};

/// The allocator of the `cohort` binary, so that time and memory are those of `cohort ehr bench`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` adds `--bench`; the three positional arguments are ours
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [db, dir, resources] = &args[..] else {
        bail!("usage: ingest DATABASE_URL BUNDLE_DIR RESOURCES");
    };
    let resources: usize = resources.parse().context("RESOURCES is a number")?;
    let store = ehr::Store::open(db).await?;
    let files = ehr::bench::json_files(Path::new(dir))?;
    let report = ehr::bench::ingest(&store, &files, resources).await?;
    println!(
        "ingest: {} resources in {} transactions, {:.1} s, {:.0} resources/s",
        report.resources,
        report.bundles,
        report.seconds,
        report.rate(),
    );
    let search = ehr::bench::search_latency(&store, 5).await?;
    println!(
        "search at {} resources: {} queries, p50 {:.2} ms, p99 {:.2} ms",
        search.resources, search.queries, search.p50_ms, search.p99_ms
    );
    for (shape, p50, p99) in &search.by_shape {
        println!("  {shape:<48} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms");
    }
    Ok(())
}
