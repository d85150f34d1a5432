//! The write path: a transaction that creates, updates and deletes resources, keeps every
//! version, writes their index entries, and checks references before it commits.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit};

use super::sql::{Arg, JsonRows, Kind, Table, insert_json, insert_rows};
use super::{Dialect, Store, Version, version_columns_for, version_from_row};
use crate::datetime;
use crate::error::{Error, Result};
use crate::search::extract::{self, Entries};
use crate::types;
use crate::validate;

/// The result of one write.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The resource type.
    pub resource_type: &'static str,
    /// The logical id.
    pub id: String,
    /// The new version.
    pub version: i64,
    /// When it was written (microseconds since the epoch).
    pub last_updated: i64,
    /// The stored resource with its `id` and `meta`; `None` for a deletion.
    pub resource: Option<Value>,
    /// True when this write created the resource (no earlier version, or only a deletion).
    pub created: bool,
    /// False when an update said nothing new and no version was written.
    pub changed: bool,
}

/// The head version of a resource.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub seq: i64,
    pub version: i64,
    pub deleted: bool,
}

/// Writes not yet sent to the database, in order: batches of rows, and the savepoint
/// statements between them.
#[derive(Default)]
struct Pending {
    /// Sealed batches and statements, oldest first.
    queue: Vec<Queued>,
    /// The batch being filled.
    rows: Rows,
}

/// Resource versions, then their index entries, per table (in the order of [`INDEX_TABLES`]).
#[derive(Default)]
struct Rows {
    resources: Vec<Vec<Arg>>,
    index: [JsonRows; 8],
}

/// One step of [`Pending::queue`].
enum Queued {
    Rows(Box<Rows>),
    Statement(&'static str),
}

impl Pending {
    /// Queues `statement` after the rows so far.
    fn statement(&mut self, statement: &'static str) {
        self.seal();
        self.queue.push(Queued::Statement(statement));
    }

    fn seal(&mut self) {
        if !self.rows.resources.is_empty() {
            self.queue
                .push(Queued::Rows(Box::new(std::mem::take(&mut self.rows))));
        }
    }

    /// Everything, oldest first.
    fn take(&mut self) -> Vec<Queued> {
        self.seal();
        std::mem::take(&mut self.queue)
    }

    /// Versions waiting, sealed or not.
    fn versions(&self) -> usize {
        self.versions_from(0)
    }

    /// Versions waiting from position `at` of the queue on, sealed or not.
    fn versions_from(&self, at: usize) -> usize {
        let sealed: usize = self.queue[at..]
            .iter()
            .map(|q| match q {
                Queued::Rows(rows) => rows.resources.len(),
                Queued::Statement(_) => 0,
            })
            .sum();
        sealed + self.rows.resources.len()
    }
}

/// Sends `queue` in order through `tx`.
async fn write_queue(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    queue: Vec<Queued>,
) -> Result<()> {
    for queued in queue {
        match queued {
            Queued::Rows(rows) => {
                let Rows { resources, index } = *rows;
                insert_rows(tx, dialect, RESOURCES, resources)
                    .await
                    .map_err(conflict_on_race)?;
                for (table, rows) in INDEX_TABLES.into_iter().zip(index) {
                    insert_json(tx, dialect, table, rows).await?;
                }
            }
            Queued::Statement(statement) => {
                sqlx::query(AssertSqlSafe(statement))
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

use Kind::{Bool, Int, Json, Real, Text};

/// Resource versions, written with the `seq` the transaction reserved for them.
const RESOURCES: Table = Table {
    name: "resources",
    columns: &[
        ("seq", Int),
        ("res_type", Text),
        ("res_id", Text),
        ("version", Int),
        ("last_updated", Int),
        ("method", Text),
        ("deleted", Bool),
        ("current", Bool),
        ("content", Json),
    ],
};

const INDEX_TABLES: [Table; 8] = [
    Table {
        name: "idx_string",
        columns: &[
            ("seq", Int),
            ("res_type", Text),
            ("param", Text),
            ("value", Text),
            ("exact", Text),
        ],
    },
    Table {
        name: "idx_token",
        columns: &[
            ("seq", Int),
            ("res_type", Text),
            ("param", Text),
            ("system", Text),
            ("code", Text),
            ("text", Text),
        ],
    },
    Table {
        name: "idx_reference",
        columns: &[
            ("seq", Int),
            ("res_type", Text),
            ("param", Text),
            ("target_type", Text),
            ("target_id", Text),
        ],
    },
    Table {
        name: "idx_date",
        columns: &[
            ("seq", Int),
            ("res_type", Text),
            ("param", Text),
            ("lo", Int),
            ("hi", Int),
        ],
    },
    Table {
        name: "idx_number",
        columns: &[
            ("seq", Int),
            ("res_type", Text),
            ("param", Text),
            ("value", Real),
        ],
    },
    Table {
        name: "idx_quantity",
        columns: &[
            ("seq", Int),
            ("res_type", Text),
            ("param", Text),
            ("value", Real),
            ("system", Text),
            ("code", Text),
            ("unit", Text),
        ],
    },
    Table {
        name: "idx_compartment",
        columns: &[("seq", Int), ("res_type", Text), ("patient_id", Text)],
    },
    Table {
        name: "idx_link",
        columns: &[("seq", Int), ("target_type", Text), ("target_id", Text)],
    },
];

impl Rows {
    fn add(&mut self, seq: i64, resource_type: &str, entries: Entries, keep_links: bool) {
        let [
            strings,
            tokens,
            references,
            dates,
            numbers,
            quantities,
            compartments,
            links,
        ] = &mut self.index;
        let t = resource_type;
        for (param, value, exact) in &entries.strings {
            strings.push(&(seq, t, param, value, exact));
        }
        for e in &entries.tokens {
            tokens.push(&(seq, t, e.param, &e.system, &e.code, &e.text));
        }
        for (param, target_type, target_id) in &entries.references {
            references.push(&(seq, t, param, target_type, target_id));
        }
        for (param, range) in &entries.dates {
            dates.push(&(seq, t, param, range.start, range.end));
        }
        for (param, value) in &entries.numbers {
            numbers.push(&(seq, t, param, value));
        }
        for q in &entries.quantities {
            quantities.push(&(seq, t, q.param, q.value, &q.system, &q.code, &q.unit));
        }
        for patient in &entries.compartments {
            compartments.push(&(seq, t, patient));
        }
        if keep_links {
            // idx_link holds only the references that no search parameter indexes already.
            for (target_type, target_id) in &entries.links {
                let indexed = entries
                    .references
                    .iter()
                    .any(|(_, rt, rid)| rt == target_type && rid == target_id);
                if !indexed {
                    links.push(&(seq, target_type, target_id));
                }
            }
        }
    }
}

/// A part of a transaction, begun by [`Tx::begin_part`] and ended by [`Tx::end_part`].
#[must_use = "a part is ended with Tx::end_part"]
#[derive(Debug)]
pub struct Part(());

/// `seq` values reserved for the versions a transaction writes.
#[derive(Default)]
struct Seqs {
    /// SQLite: the next one (the transaction holds the database's write lock, so every value
    /// past the highest ever used is its own).
    next: Option<i64>,
    /// PostgreSQL: values taken from the sequence, the smallest last.
    taken: Vec<i64>,
    /// How many times values were taken (each time more).
    takes: usize,
}

/// Versions queued before they are sent to the database in the background.
const SEND_AT: usize = 256;

/// Versions of an open part held back from the database: a part that ends before it writes
/// more, and succeeds, is sent after its checks and needs no savepoint (a savepoint makes SQLite
/// copy every page the part changes, once per part).
const PART_HELD: usize = 1_024;

/// The Bundle entry a write belongs to: its index and request line.
type EntryContext = Option<(usize, String)>;

/// A reference to check before commit.
struct Link {
    from: String,
    target: (String, String),
    entry: EntryContext,
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls everything back.
pub struct Tx {
    /// The database transaction, while no write is being sent through it in the background.
    tx: Option<Transaction<'static, Any>>,
    /// The write being sent in the background, which gives the transaction back.
    sending: Option<tokio::task::JoinHandle<(Transaction<'static, Any>, Result<()>)>>,
    /// Set when a write sent in the background failed: the transaction is to be undone.
    failed: bool,
    /// Where the current part's savepoint waits in `pending`, while nothing of the part has
    /// been sent.
    part_queued: Option<usize>,
    /// Its turn (see `Turns`), released after the transaction ends (fields drop in order).
    _database: Option<OwnedMutexGuard<()>>,
    _writer: Option<OwnedSemaphorePermit>,
    dialect: Dialect,
    now: i64,
    pending: Pending,
    seqs: Seqs,
    links: Vec<Link>,
    live: HashSet<(String, String)>,
    deleted: Vec<((String, String), EntryContext)>,
    entry: EntryContext,
}

impl Tx {
    pub(super) async fn begin(store: &Store, short: bool) -> Result<Tx> {
        // Take the turn before a connection: waiting writers hold none.
        let writer = match short {
            true => None,
            false => Some(
                store
                    .turns
                    .writers
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("the store is closed".into()))?,
            ),
        };
        let database = match &store.turns.database {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = match store.dialect {
            // Take the write lock now, not at the first write after a read (an upgrade that
            // fails at once when another connection wrote in between).
            Dialect::Sqlite => store.writer.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => store.writer.begin().await?,
        };
        Ok(Tx {
            tx: Some(tx),
            sending: None,
            failed: false,
            part_queued: None,
            _database: database,
            _writer: writer,
            dialect: store.dialect,
            now: datetime::now_micros(),
            pending: Pending::default(),
            seqs: Seqs::default(),
            links: Vec::new(),
            live: HashSet::new(),
            deleted: Vec::new(),
            entry: None,
        })
    }

    /// The time every write of this transaction is stamped with.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The database dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Marks the Bundle entry whose writes follow, so that late errors name it.
    pub fn set_entry(&mut self, index: usize, request: String) {
        self.entry = Some((index, request));
    }

    /// The connection, with all pending index rows written (for searches inside the transaction).
    pub(crate) async fn connection(&mut self) -> Result<&mut AnyConnection> {
        self.db().await
    }

    /// The connection, once every pending write is sent and written.
    async fn db(&mut self) -> Result<&mut AnyConnection> {
        self.send().await?;
        self.idle().await
    }

    /// The connection, once every write before the open part (if any) is sent and written:
    /// for reads that do not depend on the part's own writes.
    async fn db_before_part(&mut self) -> Result<&mut AnyConnection> {
        self.send_before_part().await?;
        self.idle().await
    }

    /// The connection, once the write sent in the background (if any) has ended, with what is
    /// still pending left pending: for statements that do not depend on this transaction's
    /// writes.
    async fn idle(&mut self) -> Result<&mut AnyConnection> {
        self.wait().await?;
        match self.tx.as_mut() {
            Some(tx) => Ok(&mut **tx),
            None => Err(Error::Internal("the transaction was lost".into())),
        }
    }

    /// Sends what is pending through the transaction in the background, so that the next
    /// writes are prepared meanwhile (after the write sent before ends).
    async fn send(&mut self) -> Result<()> {
        let queue = self.pending.take();
        self.part_queued = None;
        self.send_queue(queue).await
    }

    /// Sends what is pending before the open part, holding the part back; everything when no
    /// part is open or the part holds more than [`PART_HELD`] versions.
    async fn send_before_part(&mut self) -> Result<()> {
        let Some(at) = self.part_queued else {
            return self.send().await;
        };
        if self.pending.versions_from(at) > PART_HELD {
            return self.send().await;
        }
        let part = self.pending.queue.split_off(at);
        let earlier = std::mem::replace(&mut self.pending.queue, part);
        self.part_queued = Some(0);
        self.send_queue(earlier).await
    }

    /// Sends `queue` in the background, after the write sent before ends.
    async fn send_queue(&mut self, queue: Vec<Queued>) -> Result<()> {
        if queue.is_empty() {
            return Ok(());
        }
        self.wait().await?;
        let Some(mut tx) = self.tx.take() else {
            return Err(Error::Internal("the transaction was lost".into()));
        };
        let dialect = self.dialect;
        self.sending = Some(tokio::spawn(async move {
            let sent = write_queue(&mut tx, dialect, queue).await;
            (tx, sent)
        }));
        Ok(())
    }

    /// Waits for the write sent in the background; its failure fails the transaction.
    async fn wait(&mut self) -> Result<()> {
        if let Some(sending) = self.sending.take() {
            let (tx, sent) = sending
                .await
                .map_err(|e| Error::Internal(format!("a write of the transaction stopped: {e}")))?;
            self.tx = Some(tx);
            if let Err(e) = sent {
                self.failed = true;
                return Err(e);
            }
        }
        if self.failed {
            return Err(Error::Internal(
                "an earlier write of this transaction failed".into(),
            ));
        }
        Ok(())
    }

    /// Makes every other transaction that locks `key` wait until this one ends, so that
    /// read-then-write steps on the same key (an update of one resource, a conditional create)
    /// run one after the other. A PostgreSQL advisory lock; on SQLite write transactions are
    /// serial already.
    pub async fn lock(&mut self, key: &str) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock(4242002, hashtext($1))")
                .bind(key)
                .execute(self.db().await?)
                .await?;
        }
        Ok(())
    }

    /// The current version of `resource_type/id` as seen inside this transaction (`None` when
    /// absent or deleted), locked against concurrent writers of the same resource.
    pub async fn current(&mut self, resource_type: &str, id: &str) -> Result<Option<Version>> {
        self.lock(&resource_key(resource_type, id)).await?;
        let sql = format!(
            "SELECT {} FROM resources r WHERE r.res_type = $1 AND r.res_id = $2 AND r.current",
            version_columns_for(self.dialect)
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(resource_type)
            .bind(id)
            .fetch_optional(self.db().await?)
            .await?;
        let version = row.map(|r| version_from_row(&r)).transpose()?;
        Ok(version.filter(|v| v.content.is_some()))
    }

    /// The head version of `resource_type/id`.
    pub(crate) async fn head(&mut self, resource_type: &str, id: &str) -> Result<Option<Head>> {
        let row = sqlx::query(
            "SELECT seq, version, CASE WHEN deleted THEN 1 ELSE 0 END AS deleted \
             FROM resources WHERE res_type = $1 AND res_id = $2 AND current",
        )
        .bind(resource_type)
        .bind(id)
        .fetch_optional(self.db().await?)
        .await?;
        row.map(|r| -> Result<Head> {
            Ok(Head {
                seq: r.try_get("seq")?,
                version: r.try_get("version")?,
                deleted: r.try_get::<i64, _>("deleted")? != 0,
            })
        })
        .transpose()
    }

    /// Creates `resource` under a new server-assigned id (any id in the body is ignored).
    pub async fn create(&mut self, resource: Value) -> Result<Written> {
        self.create_with_id(resource, new_id()).await
    }

    /// Creates `resource` under `id`, which the caller has reserved (transactions assign ids
    /// before they write).
    pub async fn create_with_id(&mut self, mut resource: Value, id: String) -> Result<Written> {
        let resource_type = validate::validate(&resource, None)?;
        resource["id"] = json!(id);
        self.write(resource_type, id, None, Some(resource), "POST")
            .await
    }

    /// Updates (or creates, if absent) `resource_type/id` with `resource`, whose `id` must be
    /// `id`. With `if_match`, fails unless the current version is that one.
    pub async fn update(
        &mut self,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Written> {
        let resource_type = validate::validate(&resource, Some(resource_type))?;
        match resource.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(Error::invalid_at(
                    format!("{resource_type}.id"),
                    format!("the body's id {body_id:?} differs from the URL's id {id:?}"),
                ));
            }
            None => {
                return Err(Error::invalid_at(
                    format!("{resource_type}.id"),
                    format!("an update needs the id in the body (expected {id:?})"),
                ));
            }
        }
        if !types::is_valid_id(id) {
            return Err(Error::invalid(format!("{id:?} is not a valid FHIR id")));
        }
        self.lock(&resource_key(resource_type, id)).await?;
        let head = self.head(resource_type, id).await?;
        if let Some(expected) = if_match {
            let current = head.filter(|h| !h.deleted).map(|h| h.version);
            if current != Some(expected) {
                return Err(Error::PreconditionFailed(format!(
                    "If-Match expects version {expected} of {resource_type}/{id} but the current version is {}",
                    current.map_or("none".to_string(), |v| v.to_string())
                )));
            }
        }
        if let Some(h) = head.filter(|h| !h.deleted)
            && let Some(unchanged) = self.unchanged(resource_type, id, h, &resource).await?
        {
            return Ok(unchanged);
        }
        self.write(resource_type, id.to_string(), head, Some(resource), "PUT")
            .await
    }

    /// The current version, when `resource` says nothing new (an update that would only bump
    /// the version is skipped, so repeated imports change nothing).
    async fn unchanged(
        &mut self,
        resource_type: &'static str,
        id: &str,
        head: Head,
        resource: &Value,
    ) -> Result<Option<Written>> {
        let sql = format!(
            "SELECT {} AS content, r.last_updated FROM resources r WHERE r.seq = $1",
            self.dialect.json_text("r")
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(head.seq)
            .fetch_one(self.db().await?)
            .await?;
        let text: Option<String> = row.try_get("content")?;
        let Some(mut stored) = text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) else {
            return Ok(None);
        };
        let current = stored.clone();
        let mut candidate = resource.clone();
        for value in [&mut stored, &mut candidate] {
            if let Some(meta) = value.get_mut("meta").and_then(Value::as_object_mut) {
                meta.remove("versionId");
                meta.remove("lastUpdated");
                if meta.is_empty() {
                    value.as_object_mut().map(|m| m.remove("meta"));
                }
            }
        }
        Ok((stored == candidate).then(|| Written {
            resource_type,
            id: id.to_string(),
            version: head.version,
            last_updated: row.try_get("last_updated").unwrap_or(self.now),
            resource: Some(current),
            created: false,
            changed: false,
        }))
    }

    /// Deletes `resource_type/id`. Deleting what does not exist (or no longer does) changes
    /// nothing and returns `None`. Fails at commit if a live resource still references it.
    pub async fn delete(&mut self, resource_type: &str, id: &str) -> Result<Option<Written>> {
        let resource_type = types::resource_type(resource_type)?;
        self.lock(&resource_key(resource_type, id)).await?;
        let head = self.head(resource_type, id).await?;
        match head {
            Some(h) if !h.deleted => {
                let key = (resource_type.to_string(), id.to_string());
                self.live.remove(&key);
                self.deleted.push((key, self.entry.clone()));
                self.write(resource_type, id.to_string(), head, None, "DELETE")
                    .await
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn write(
        &mut self,
        resource_type: &'static str,
        id: String,
        head: Option<Head>,
        content: Option<Value>,
        method: &str,
    ) -> Result<Written> {
        let version = head.map_or(1, |h| h.version + 1);
        let created = head.is_none_or(|h| h.deleted);
        let content = content.map(|mut resource| {
            set_meta(&mut resource, version, self.now);
            resource
        });
        let entries = content
            .as_ref()
            .map(|r| extract::extract(resource_type, &id, r))
            .transpose()?;
        if let Some(h) = head {
            sqlx::query("UPDATE resources SET current = FALSE WHERE seq = $1")
                .bind(h.seq)
                .execute(self.db().await?)
                .await?;
            for table in INDEX_TABLES {
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM {} WHERE seq = $1",
                    table.name
                )))
                .bind(h.seq)
                .execute(self.db().await?)
                .await?;
            }
        }
        let seq = self.next_seq().await?;
        self.pending.rows.resources.push(vec![
            seq.into(),
            resource_type.into(),
            id.as_str().into(),
            version.into(),
            self.now.into(),
            method.into(),
            content.is_none().into(),
            true.into(),
            content.as_ref().map(Value::to_string).into(),
        ]);
        if let Some(entries) = entries {
            // AuditEvents record what happened to resources, including deleted ones: their
            // references neither need to resolve nor keep their targets alive.
            let checked = resource_type != "AuditEvent";
            if checked {
                for target in &entries.links {
                    self.links.push(Link {
                        from: format!("{resource_type}/{id}"),
                        target: target.clone(),
                        entry: self.entry.clone(),
                    });
                }
            }
            self.pending.rows.add(seq, resource_type, entries, checked);
            self.live.insert((resource_type.to_string(), id.clone()));
        }
        if self.pending.versions() >= SEND_AT {
            self.send_before_part().await?;
        }
        Ok(Written {
            resource_type,
            id,
            version,
            last_updated: self.now,
            resource: content,
            created,
            changed: true,
        })
    }

    /// The `seq` of the next version written.
    async fn next_seq(&mut self) -> Result<i64> {
        if let Some(next) = self.seqs.next.as_mut() {
            *next += 1;
            return Ok(*next - 1);
        }
        if let Some(seq) = self.seqs.taken.pop() {
            return Ok(seq);
        }
        match self.dialect {
            Dialect::Sqlite => {
                // sqlite_sequence keeps the highest seq ever used (AUTOINCREMENT never reuses one).
                let last: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(s), 0) AS s FROM (\
                     SELECT seq AS s FROM sqlite_sequence WHERE name = 'resources' \
                     UNION ALL SELECT MAX(seq) FROM resources)",
                )
                .fetch_one(self.idle().await?)
                .await?
                .try_get("s")?;
                self.seqs.next = Some(last + 2);
                Ok(last + 1)
            }
            Dialect::Postgres => {
                // one for a single write, then more at a time for a transaction of many (values
                // left unused are gaps, as a sequence leaves anyway)
                let count = [1, 16, 128, 1024][self.seqs.takes.min(3)];
                self.seqs.takes += 1;
                let rows = sqlx::query(
                    "SELECT nextval(pg_get_serial_sequence('resources', 'seq')) AS seq \
                     FROM generate_series(1, $1)",
                )
                .bind(count)
                .fetch_all(self.idle().await?)
                .await?;
                let mut taken = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("seq"))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                taken.sort_unstable_by(|a, b| b.cmp(a));
                let seq = taken.pop().expect("generate_series(1, n >= 1) gives a row");
                self.seqs.taken = taken;
                Ok(seq)
            }
        }
    }

    /// Checks references, writes the indexes and commits.
    pub async fn commit(mut self) -> Result<()> {
        self.check().await?;
        self.db().await?;
        match self.tx.take() {
            Some(tx) => Ok(tx.commit().await?),
            None => Err(Error::Internal("the transaction was lost".into())),
        }
    }

    /// Checks the references and deletions written so far (reading the database only for
    /// what this transaction did not write itself).
    async fn check(&mut self) -> Result<()> {
        self.check_links().await?;
        self.check_deletions().await?;
        // later checks find what was written in the database
        self.live.clear();
        Ok(())
    }

    /// Begins a part of the transaction that [`Tx::end_part`] keeps or undoes alone (an SQL
    /// savepoint): e.g. one Bundle of many loaded in one transaction. Parts do not nest.
    pub async fn begin_part(&mut self) -> Result<Part> {
        self.check().await?;
        self.pending.statement("SAVEPOINT part");
        self.part_queued = Some(self.pending.queue.len() - 1);
        Ok(Part(()))
    }

    /// Ends `part` with its `outcome`: kept when the outcome is a success and the part's
    /// references and deletions hold, otherwise undone (its writes, index entries and pending
    /// checks), leaving the transaction as it was before the part. Returns the outcome, or what
    /// failed the checks. A kept part's writes may still be on their way to the database.
    pub async fn end_part<T>(&mut self, part: Part, outcome: Result<T>) -> Result<T> {
        let Part(()) = part;
        let outcome = match outcome {
            Ok(value) => self.check().await.map(|()| value),
            Err(e) => Err(e),
        };
        let Err(error) = outcome else {
            match self.part_queued.take() {
                // nothing of the part was sent: it goes out as it is, without its savepoint
                Some(at) => {
                    let savepoint = self.pending.queue.remove(at);
                    debug_assert!(matches!(savepoint, Queued::Statement("SAVEPOINT part")));
                }
                None => self.pending.statement("RELEASE SAVEPOINT part"),
            }
            return outcome;
        };
        self.links.clear();
        self.deleted.clear();
        self.live.clear();
        if let Some(at) = self.part_queued.take() {
            // nothing of the part has left: forget it
            self.pending.queue.truncate(at);
            self.pending.rows = Rows::default();
            return Err(error);
        }
        // everything pending is the part's; what was sent of it is rolled back
        self.pending = Pending::default();
        let _ = self.wait().await;
        self.failed = false;
        for statement in ["ROLLBACK TO SAVEPOINT part", "RELEASE SAVEPOINT part"] {
            if let Err(e) = sqlx::query(statement).execute(self.db().await?).await {
                self.failed = true;
                return Err(e.into());
            }
        }
        Err(error)
    }

    /// Every reference written must point at a live resource.
    async fn check_links(&mut self) -> Result<()> {
        let live = &self.live;
        self.links.retain(|link| !live.contains(&link.target));
        let mut known: HashMap<(String, String), bool> = HashMap::new();
        for link in std::mem::take(&mut self.links) {
            let exists = if let Some(&exists) = known.get(&link.target) {
                exists
            } else {
                let (t, id) = &link.target;
                let exists = sqlx::query(
                    "SELECT seq FROM resources WHERE res_type = $1 AND res_id = $2 AND current AND NOT deleted",
                )
                .bind(t.as_str())
                .bind(id.as_str())
                .fetch_optional(self.db_before_part().await?)
                .await?
                .is_some();
                known.insert(link.target.clone(), exists);
                exists
            };
            if !exists {
                let (t, id) = &link.target;
                let error = if types::resource_type(t).is_err() {
                    Error::invalid(format!(
                        "{} references {t}/{id}, but {t} is not a resource type this server stores",
                        link.from
                    ))
                } else {
                    Error::invalid(format!(
                        "{} references {t}/{id}, which does not exist",
                        link.from
                    ))
                };
                return Err(in_entry(error, link.entry));
            }
        }
        Ok(())
    }

    /// A deleted resource must not be referenced by a live one.
    async fn check_deletions(&mut self) -> Result<()> {
        for ((t, id), entry) in std::mem::take(&mut self.deleted) {
            let row = sqlx::query(
                "SELECT r.res_type, r.res_id FROM idx_link l JOIN resources r ON r.seq = l.seq \
                 WHERE l.target_id = $1 AND l.target_type = $2 AND r.current AND NOT r.deleted \
                 UNION ALL \
                 SELECT r.res_type, r.res_id FROM idx_reference i JOIN resources r ON r.seq = i.seq \
                 WHERE i.target_id = $1 AND i.target_type = $2 AND i.res_type <> 'AuditEvent' \
                 AND r.current AND NOT r.deleted LIMIT 1",
            )
            .bind(id.as_str())
            .bind(t.as_str())
            .fetch_optional(self.db().await?)
            .await?;
            if let Some(row) = row {
                let (from_type, from_id): (String, String) =
                    (row.try_get("res_type")?, row.try_get("res_id")?);
                return Err(in_entry(
                    Error::Conflict(format!(
                        "cannot delete {t}/{id}: {from_type}/{from_id} still references it"
                    )),
                    entry,
                ));
            }
        }
        Ok(())
    }
}

/// The [`Tx::lock`] key of one resource.
fn resource_key(resource_type: &str, id: &str) -> String {
    format!("{resource_type}/{id}")
}

fn in_entry(error: Error, entry: EntryContext) -> Error {
    match entry {
        Some((index, request)) => Error::Entry {
            index,
            request,
            source: Box::new(error),
        },
        None => error,
    }
}

/// A concurrent writer created the same version first.
fn conflict_on_race(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(
            "a resource this transaction writes was changed by another request at the same \
             time; retry"
                .into(),
        ),
        _ => Error::Database(error),
    }
}

/// Stamps `meta.versionId` and `meta.lastUpdated`, keeping the rest of `meta`.
fn set_meta(resource: &mut Value, version: i64, now: i64) {
    if !resource.get("meta").is_some_and(Value::is_object) {
        resource["meta"] = json!({});
    }
    resource["meta"]["versionId"] = json!(version.to_string());
    resource["meta"]["lastUpdated"] = json!(datetime::format_instant(now));
}

/// A new logical id: a version 7 UUID, whose leading bits are the time, so that ids made one
/// after the other sort together and the indexes that hold them grow at one end (a version 4
/// UUID puts every new reference at a random place of the reference index, and each commit then
/// rewrites pages all over it).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_7_uuids_in_creation_order() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert!(types::is_valid_id(&id));
        let later: Vec<String> = (0..1000).map(|_| new_id()).collect();
        assert!(
            later.windows(2).all(|w| w[0] < w[1]),
            "ids sort in creation order"
        );
        assert!(id < later[0]);
    }
}
