//! The FHIR store: every version of every resource as JSON, plus search indexes written in the
//! same transaction. One code path serves SQLite and PostgreSQL (through sqlx's `Any` driver);
//! the few differences live in [`Dialect`].

mod group;
mod read;
mod scan;
mod schema;
pub(crate) mod sql;
mod write;

use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, AssertSqlSafe, Executor};
use tokio::sync::{Mutex, Semaphore};

use crate::error::{Error, Result};

pub use group::{GroupCommit, RESOURCES_PER_COMMIT};
pub use read::{HistoryPage, Version};
pub(crate) use read::{version_columns_for, version_from_row};
pub use write::{Part, Tx, Written, new_id};

/// The database behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// An SQLite file (the default: one file per node).
    Sqlite,
    /// A PostgreSQL database (resources as JSONB).
    Postgres,
}

impl Dialect {
    /// Expression reading the JSON content of resources alias `r` as text.
    pub(crate) fn json_text(self, alias: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{alias}.content"),
            Dialect::Postgres => format!("{alias}.content::text"),
        }
    }

    /// The start of a statement inserting many rows in a write transaction. On SQLite a
    /// constraint failure rolls the whole transaction back (`OR ROLLBACK`), so the statement
    /// keeps no journal of its own for undoing itself alone: a statement journal copies every
    /// page the statement changes. The rows these statements write are checked before they are
    /// sent, and the transaction holds the database's write lock, so no constraint fails in
    /// practice; if one did, the transaction fails, as it does on PostgreSQL.
    pub(crate) fn bulk_insert(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR ROLLBACK INTO",
            Dialect::Postgres => "INSERT INTO",
        }
    }
}

/// A FHIR store on SQLite or PostgreSQL. Cheap to clone (a connection pool).
///
/// A write transaction takes its turn before it takes a connection, and reads (with the short
/// transactions that audit them, [`Store::begin_short`]) go ahead of queued writers, so a burst
/// of writes neither fails nor holds up reads. On PostgreSQL, writers of the same resource also
/// queue on an advisory lock ([`Tx::lock`]).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run: on SQLite a connection of its own, else `pool`.
    writer: AnyPool,
    dialect: Dialect,
    turns: Arc<Turns>,
}

/// How write transactions take their turn, before they take a connection.
#[derive(Debug)]
struct Turns {
    /// Held by every write transaction but the short ones ([`Store::begin_short`]): on SQLite
    /// one at a time, on PostgreSQL fewer than the pool has connections, so that reads, and the
    /// short transactions that audit them, go ahead of queued writers.
    writers: Arc<Semaphore>,
    /// SQLite only, which takes one writer at a time: held by the open write transaction of any
    /// kind, which then begins `IMMEDIATE` (no writer fails with "database is locked").
    database: Option<Arc<Mutex<()>>>,
}

/// Page caches of an SQLite store's connections (PostgreSQL keeps its own, in its server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caches {
    /// The writers' connection: the index pages a bulk load changes.
    pub writer_kib: u32,
    /// Each of the [`SQLITE_READERS`] readers' connections.
    pub reader_kib: u32,
}

/// Connections of an SQLite store that read.
pub const SQLITE_READERS: u32 = 3;

impl Default for Caches {
    /// 64 MiB for the writer, 8 MiB for each reader.
    fn default() -> Self {
        Caches {
            writer_kib: 64 * 1024,
            reader_kib: 8 * 1024,
        }
    }
}

impl Caches {
    /// The default caches, made smaller where they would hold more than `bytes` together (a
    /// node's share of its memory budget): the writer keeps two thirds, the readers share the
    /// rest; 1 MiB each at least.
    pub fn within(bytes: u64) -> Self {
        let full = Caches::default();
        let kib = bytes / 1024;
        if kib >= u64::from(full.total_kib()) {
            return full;
        }
        let writer = (kib * 2 / 3).max(1024);
        let reader = (kib / 3 / u64::from(SQLITE_READERS)).max(1024);
        Caches {
            writer_kib: u32::try_from(writer).unwrap_or(full.writer_kib),
            reader_kib: u32::try_from(reader).unwrap_or(full.reader_kib),
        }
    }

    /// All connections' caches together.
    pub fn total_kib(&self) -> u32 {
        self.writer_kib + SQLITE_READERS * self.reader_kib
    }
}

/// Options of an SQLite pool of `connections`, each with a page cache of `cache_kib`.
fn sqlite_options(connections: u32, cache_kib: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let cache = format!("PRAGMA cache_size = -{cache_kib}");
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA busy_timeout = 10000",
                    cache.as_str(),
                    "PRAGMA temp_store = MEMORY",
                    // No memory-mapped reads: mapped pages count as the node's own memory, as
                    // much as the file it reads; reads copy from the OS's cache instead, no
                    // slower here (docs/BENCHMARKS.md).
                    "PRAGMA mmap_size = 0",
                    // Checkpoint less often: a page changed by many commits is copied to the
                    // database once.
                    "PRAGMA wal_autocheckpoint = 16384",
                ] {
                    conn.execute(AssertSqlSafe(pragma.to_string())).await?;
                }
                Ok(())
            })
        })
}

/// Connections of a PostgreSQL store's pool.
const POSTGRES_CONNECTIONS: u32 = 8;

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite:PATH`, `sqlite::memory:` or
    /// `postgres://user@host:port/db`, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, Caches::default()).await
    }

    /// [`Store::open`] with SQLite page caches of the given sizes.
    pub async fn open_with(url: &str, caches: Caches) -> Result<Store> {
        install_default_drivers();
        let (dialect, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let url = if rest.contains('?') || rest == ":memory:" {
                url.to_string()
            } else {
                format!("sqlite:{rest}?mode=rwc")
            };
            (Dialect::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(Error::invalid(format!(
                "database URL {url:?} must start with sqlite: or postgres://"
            )));
        };
        let connect = |options: AnyPoolOptions| async {
            options.connect(&url).await.map_err(|e| {
                Error::Database(sqlx::Error::Configuration(
                    format!("cannot open database {}: {e}", redact(&url)).into(),
                ))
            })
        };
        let (pool, writer) = match dialect {
            // An in-memory database lives in one connection.
            Dialect::Sqlite if url.contains(":memory:") => {
                let pool = connect(sqlite_options(1, caches.writer_kib)).await?;
                (pool.clone(), pool)
            }
            // Writers take turns on one connection, which keeps the pages they change in its
            // cache; readers have small caches of their own (the OS caches the file for all).
            Dialect::Sqlite => (
                connect(sqlite_options(SQLITE_READERS, caches.reader_kib)).await?,
                connect(sqlite_options(1, caches.writer_kib)).await?,
            ),
            Dialect::Postgres => {
                let pool =
                    connect(AnyPoolOptions::new().max_connections(POSTGRES_CONNECTIONS)).await?;
                (pool.clone(), pool)
            }
        };
        let turns = Turns {
            writers: Arc::new(Semaphore::new(match dialect {
                Dialect::Sqlite => 1,
                Dialect::Postgres => POSTGRES_CONNECTIONS as usize - 2,
            })),
            database: (dialect == Dialect::Sqlite).then(|| Arc::new(Mutex::new(()))),
        };
        let store = Store {
            pool,
            writer,
            dialect,
            turns: Arc::new(turns),
        };
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction; nothing is visible to others until [`Tx::commit`].
    pub async fn begin(&self) -> Result<Tx> {
        Tx::begin(self, false).await
    }

    /// Starts a short write transaction that goes ahead of queued writers: for a record of a
    /// read (an AuditEvent), so that reads are not held up by a burst of writes. Keep it short.
    pub async fn begin_short(&self) -> Result<Tx> {
        Tx::begin(self, true).await
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_messages() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:x.db"), "sqlite:x.db");
    }

    #[test]
    fn caches_shrink_to_fit_a_share_of_memory() {
        assert_eq!(Caches::within(1 << 30), Caches::default());
        let small = Caches::within(24 << 20);
        assert!(u64::from(small.total_kib()) * 1024 <= 24 << 20, "{small:?}");
        assert_eq!(small.writer_kib, 16 * 1024);
        // never below 1 MiB a connection
        assert_eq!(Caches::within(0).total_kib(), 4 * 1024);
    }

    #[tokio::test]
    async fn an_sqlite_store_opens_with_the_caches_it_is_given() {
        use sqlx::Row;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("ehr.sqlite").display());
        let caches = Caches {
            writer_kib: 2048,
            reader_kib: 1024,
        };
        let store = Store::open_with(&url, caches).await.unwrap();
        for (pool, kib) in [(&store.writer, 2048), (&store.pool, 1024)] {
            let row = sqlx::query("PRAGMA cache_size")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(row.get::<i64, _>(0), -kib);
        }
    }
}
