//! Test stores on both backends: a fresh SQLite file, and a fresh PostgreSQL database (dropped
//! afterwards) unless COHORT_SKIP_POSTGRES=1.
#![allow(dead_code)]

use ehr::Store;
use sqlx::Connection;

/// Where the PostgreSQL tests connect (a maintenance database; each test creates its own).
fn admin_url() -> String {
    std::env::var("COHORT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A store for one test, and what to clean up after it.
pub struct Backend {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    /// The store.
    pub store: Store,
    /// The URL it was opened with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    database: Option<String>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            let url = admin_url();
            // Drop on a thread of its own: Drop may run inside (or outside) a runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        sqlx::any::install_default_drivers();
                        if let Ok(mut conn) = sqlx::AnyConnection::connect(&url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A fresh SQLite store in a temporary directory.
pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite:{}", dir.path().join("ehr.db").display());
    let store = Store::open(&url).await.expect("open SQLite store");
    Backend {
        name: "sqlite",
        store,
        url,
        _dir: Some(dir),
        database: None,
    }
}

/// A fresh PostgreSQL database, or `None` when COHORT_SKIP_POSTGRES=1. Panics with a clear
/// message when the server cannot be reached.
pub async fn postgres() -> Option<Backend> {
    if std::env::var("COHORT_SKIP_POSTGRES").as_deref() == Ok("1") {
        return None;
    }
    sqlx::any::install_default_drivers();
    let admin = admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL tests need a server at {admin} (set COHORT_TEST_POSTGRES to another URL, \
             or COHORT_SKIP_POSTGRES=1 to skip them): {e}"
        )
    });
    let database = format!("ehr_test_{}_{:x}", std::process::id(), rand_suffix());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let url = match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("COHORT_TEST_POSTGRES must end with /database"),
    };
    let store = Store::open(&url).await.expect("open PostgreSQL store");
    Some(Backend {
        name: "postgres",
        store,
        url,
        _dir: None,
        database: Some(database),
    })
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    (nanos as u64) ^ (COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 48)
}

/// Both backends (PostgreSQL unless skipped).
pub async fn backends() -> Vec<Backend> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}
