//! `cohort ehr`: the hospital's FHIR store — import records, serve the FHIR API, manage access
//! tokens, build the gated training table, and benchmark the store.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use ehr::{ApiConfig, EhrState, Store};

/// `cohort ehr …`
#[derive(Subcommand)]
pub enum EhrCommand {
    /// Load FHIR files (transaction/batch Bundles, resources, NDJSON; directories recursively)
    /// and print the counts by resource type. Importing the same files again writes nothing
    /// new (Bundle entries are matched by their fullUrl).
    Import {
        /// Database: `sqlite:PATH` or `postgres://user@host/db`.
        #[arg(long)]
        db: String,
        /// Store resources under the ids they carry (PUT) instead of server-assigned ids.
        #[arg(long)]
        keep_ids: bool,
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Load one centre of the UCI Heart Disease files as FHIR (Patients, Observations,
    /// Conditions, tagged with FLamby's split).
    ImportHeart {
        /// Database URL.
        #[arg(long)]
        db: String,
        /// Directory with `processed.<centre>.data` and `flamby-split.csv`.
        #[arg(long)]
        dir: PathBuf,
        /// cleveland, hungarian, switzerland or va.
        #[arg(long)]
        centre: String,
    },
    /// Serve the FHIR R4 API alone.
    Serve {
        /// Database URL.
        #[arg(long)]
        db: String,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: SocketAddr,
        /// Public base URL (default: from each request's Host header).
        #[arg(long)]
        base_url: Option<String>,
        /// This server's name in AuditEvents.
        #[arg(long, default_value = "cohort-ehr")]
        name: String,
    },
    /// Bearer tokens of the FHIR API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Build the Fed-Heart-Disease training table through the consent gate and print its size.
    Dataset {
        /// Database URL.
        #[arg(long)]
        db: String,
    },
    /// Benchmark ingest (replaying transaction Bundles) and search latency.
    Bench {
        /// Database URL (use an empty database).
        #[arg(long)]
        db: String,
        /// Directory of transaction Bundles to replay (e.g. the Synthea set).
        #[arg(long)]
        bundles: PathBuf,
        /// Resources to store before measuring search.
        #[arg(long, default_value_t = 100_000)]
        resources: usize,
        /// Rounds of the search query mix.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

/// `cohort ehr token …`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a token; it is printed once and stored only as a hash.
    Create {
        /// Database URL.
        #[arg(long)]
        db: String,
        /// Who the token is for (recorded in AuditEvents).
        #[arg(long)]
        name: String,
        /// SMART scopes, e.g. "user/*.read user/*.write" or "system/*.read".
        #[arg(long)]
        scope: String,
        /// The patient of patient/ scopes.
        #[arg(long)]
        patient: Option<String>,
        /// Days until the token expires.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Database URL.
        #[arg(long)]
        db: String,
    },
    /// Revoke the token with this name.
    Revoke {
        /// Database URL.
        #[arg(long)]
        db: String,
        /// The token's name.
        name: String,
    },
}

async fn open(db: &str) -> anyhow::Result<Store> {
    Store::open(db)
        .await
        .with_context(|| format!("cannot open the EHR database {db}"))
}

/// Runs an `ehr` command.
pub async fn run(cmd: EhrCommand) -> anyhow::Result<()> {
    match cmd {
        EhrCommand::Import {
            db,
            keep_ids,
            paths,
        } => {
            let store = open(&db).await?;
            let report =
                ehr::import::import_paths(&store, &paths, ehr::import::ImportOptions { keep_ids })
                    .await?;
            println!(
                "{} files, {} resources written",
                report.files,
                report.total()
            );
            for (t, n) in &report.written {
                println!("  {t:<26} {n:>8}");
            }
            if !report.existing.is_empty() {
                println!("already stored (not written again):");
                for (t, n) in &report.existing {
                    println!("  {t:<26} {n:>8}");
                }
            }
        }
        EhrCommand::ImportHeart { db, dir, centre } => {
            let store = open(&db).await?;
            let n = ehr::heart::load_centre_files(&store, &centre, &dir).await?;
            println!("{centre}: {n} resources loaded");
        }
        EhrCommand::Serve {
            db,
            listen,
            base_url,
            name,
        } => {
            let store = open(&db).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let address = listener.local_addr()?;
            println!("FHIR API listening on http://{address}");
            let state = EhrState::new(
                store,
                ApiConfig {
                    base_url,
                    observer: name,
                },
            );
            ehr::serve(state, listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
        EhrCommand::Token(command) => token(command).await?,
        EhrCommand::Dataset { db } => {
            let store = open(&db).await?;
            let data = ehr::heart::heart_dataset(&store).await?;
            println!(
                "fed-heart-disease: {} train rows, {} test rows, {} patients excluded by consent, {} incomplete",
                data.train.len(),
                data.test.len(),
                data.excluded,
                data.incomplete
            );
        }
        EhrCommand::Bench {
            db,
            bundles,
            resources,
            rounds,
        } => {
            let store = open(&db).await?;
            let files = ehr::bench::json_files(&bundles)?;
            let ingest = ehr::bench::ingest(&store, &files, resources).await?;
            println!(
                "ingest: {} resources in {} transactions, {:.1} s, {:.0} resources/s, peak RSS {}",
                ingest.resources,
                ingest.bundles,
                ingest.seconds,
                ingest.rate(),
                crate::bench::peak_rss_mib()
            );
            let search = ehr::bench::search_latency(&store, rounds).await?;
            println!(
                "search at {} resources: {} queries, p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms",
                search.resources, search.queries, search.p50_ms, search.p99_ms, search.mean_ms
            );
            for (shape, p50, p99) in &search.by_shape {
                println!("  {shape:<48} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms");
            }
        }
    }
    Ok(())
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            db,
            name,
            scope,
            patient,
            expires_days,
        } => {
            let store = open(&db).await?;
            let expires =
                expires_days.map(|d| ehr::datetime::now_micros() + i64::from(d) * 86_400_000_000);
            let token = store
                .create_token(&name, &scope, patient.as_deref(), expires)
                .await?;
            println!("{token}");
        }
        TokenCommand::List { db } => {
            let store = open(&db).await?;
            for t in store.list_tokens().await? {
                let state = if t.revoked { "revoked" } else { "live" };
                let expires = t
                    .expires
                    .map(ehr::datetime::format_instant)
                    .unwrap_or_else(|| "never".into());
                let patient = t
                    .patient
                    .map(|p| format!(" patient={p}"))
                    .unwrap_or_default();
                println!(
                    "{:<20} {state:<8} expires {expires:<28} {}{patient}",
                    t.name, t.scopes
                );
            }
        }
        TokenCommand::Revoke { db, name } => {
            let store = open(&db).await?;
            if !store.revoke_token(&name).await? {
                anyhow::bail!("no live token is named {name:?}");
            }
            println!("revoked {name}");
        }
    }
    Ok(())
}
