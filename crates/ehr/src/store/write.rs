//! The write path: a transaction that creates, updates and deletes resources, keeps every
//! version, writes their index entries, and checks references before it commits.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit};

use super::sql::{Arg, insert_rows};
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

/// Index rows not yet inserted, per table.
#[derive(Default)]
struct Pending {
    tables: HashMap<&'static str, Vec<Vec<Arg>>>,
    /// The versions that have rows here.
    seqs: HashSet<i64>,
}

const INDEX_TABLES: [(&str, &[&str]); 8] = [
    (
        "idx_string",
        &["seq", "res_type", "param", "value", "exact"],
    ),
    (
        "idx_token",
        &["seq", "res_type", "param", "system", "code", "text"],
    ),
    (
        "idx_reference",
        &["seq", "res_type", "param", "target_type", "target_id"],
    ),
    ("idx_date", &["seq", "res_type", "param", "lo", "hi"]),
    ("idx_number", &["seq", "res_type", "param", "value"]),
    (
        "idx_quantity",
        &[
            "seq", "res_type", "param", "value", "system", "code", "unit",
        ],
    ),
    ("idx_compartment", &["seq", "res_type", "patient_id"]),
    ("idx_link", &["seq", "target_type", "target_id"]),
];

impl Pending {
    fn add(&mut self, seq: i64, resource_type: &str, entries: Entries, keep_links: bool) {
        self.seqs.insert(seq);
        // idx_link holds only the references that no search parameter indexes already.
        let unindexed: Vec<(String, String)> = entries
            .links
            .into_iter()
            .filter(|(t, id)| {
                !entries
                    .references
                    .iter()
                    .any(|(_, rt, rid)| rt == t && rid == id)
            })
            .collect();
        let t = || Arg::from(resource_type);
        let mut put = |table: &'static str, row: Vec<Arg>| {
            let mut full = vec![Arg::Int(seq)];
            full.extend(row);
            self.tables.entry(table).or_default().push(full);
        };
        for (param, value, exact) in entries.strings {
            put(
                "idx_string",
                vec![t(), param.into(), value.into(), exact.into()],
            );
        }
        for e in entries.tokens {
            put(
                "idx_token",
                vec![
                    t(),
                    e.param.into(),
                    e.system.into(),
                    e.code.into(),
                    e.text.into(),
                ],
            );
        }
        for (param, target_type, target_id) in entries.references {
            put(
                "idx_reference",
                vec![t(), param.into(), target_type.into(), target_id.into()],
            );
        }
        for (param, range) in entries.dates {
            put(
                "idx_date",
                vec![t(), param.into(), range.start.into(), range.end.into()],
            );
        }
        for (param, value) in entries.numbers {
            put("idx_number", vec![t(), param.into(), value.into()]);
        }
        for q in entries.quantities {
            put(
                "idx_quantity",
                vec![
                    t(),
                    q.param.into(),
                    q.value.into(),
                    q.system.into(),
                    q.code.into(),
                    q.unit.into(),
                ],
            );
        }
        for patient in entries.compartments {
            put("idx_compartment", vec![t(), patient.into()]);
        }
        if keep_links {
            for (target_type, target_id) in unindexed {
                put("idx_link", vec![target_type.into(), target_id.into()]);
            }
        }
    }

    fn forget(&mut self, seq: i64) {
        if !self.seqs.remove(&seq) {
            return;
        }
        for rows in self.tables.values_mut() {
            rows.retain(|row| row.first() != Some(&Arg::Int(seq)));
        }
    }
}

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
    tx: Transaction<'static, Any>,
    /// Its turn (see `Turns`), released after the transaction ends (fields drop in order).
    _database: Option<OwnedMutexGuard<()>>,
    _writer: Option<OwnedSemaphorePermit>,
    dialect: Dialect,
    now: i64,
    pending: Pending,
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
            Dialect::Sqlite => store.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => store.pool.begin().await?,
        };
        Ok(Tx {
            tx,
            _database: database,
            _writer: writer,
            dialect: store.dialect,
            now: datetime::now_micros(),
            pending: Pending::default(),
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
        self.flush().await?;
        Ok(&mut self.tx)
    }

    /// Makes every other transaction that locks `key` wait until this one ends, so that
    /// read-then-write steps on the same key (an update of one resource, a conditional create)
    /// run one after the other. A PostgreSQL advisory lock; on SQLite write transactions are
    /// serial already.
    pub async fn lock(&mut self, key: &str) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock(4242002, hashtext($1))")
                .bind(key)
                .execute(&mut *self.tx)
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
            .fetch_optional(&mut *self.tx)
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
        .fetch_optional(&mut *self.tx)
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
            .fetch_one(&mut *self.tx)
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
                .execute(&mut *self.tx)
                .await?;
            self.pending.forget(h.seq);
            for (table, _) in INDEX_TABLES {
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE seq = $1")))
                    .bind(h.seq)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        let text = content.as_ref().map(Value::to_string);
        let sql = format!(
            "INSERT INTO resources (res_type, res_id, version, last_updated, method, deleted, current, content) \
             VALUES ($1, $2, $3, $4, $5, {}, TRUE, {}) RETURNING seq",
            if content.is_some() { "FALSE" } else { "TRUE" },
            self.dialect.json_param(6)
        );
        let seq: i64 = sqlx::query(AssertSqlSafe(sql))
            .bind(resource_type)
            .bind(&id)
            .bind(version)
            .bind(self.now)
            .bind(method)
            .bind(text)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(|e| conflict_on_race(e, resource_type, &id))?
            .try_get("seq")?;
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
            self.pending.add(seq, resource_type, entries, checked);
            self.live.insert((resource_type.to_string(), id.clone()));
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

    async fn flush(&mut self) -> Result<()> {
        self.pending.seqs.clear();
        for (table, columns) in INDEX_TABLES {
            if let Some(rows) = self.pending.tables.remove(table)
                && !rows.is_empty()
            {
                insert_rows(&mut self.tx, self.dialect, table, columns, rows).await?;
            }
        }
        Ok(())
    }

    /// Checks references, writes the indexes and commits.
    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        self.check_links().await?;
        self.check_deletions().await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Every reference written must point at a live resource.
    async fn check_links(&mut self) -> Result<()> {
        let mut known: HashMap<(String, String), bool> = HashMap::new();
        for link in std::mem::take(&mut self.links) {
            let exists = if self.live.contains(&link.target) {
                true
            } else if let Some(&exists) = known.get(&link.target) {
                exists
            } else {
                let (t, id) = &link.target;
                let exists = sqlx::query(
                    "SELECT seq FROM resources WHERE res_type = $1 AND res_id = $2 AND current AND NOT deleted",
                )
                .bind(t.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *self.tx)
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
            .fetch_optional(&mut *self.tx)
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
fn conflict_on_race(error: sqlx::Error, resource_type: &str, id: &str) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(format!(
            "{resource_type}/{id} was changed by another request at the same time; retry"
        )),
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

/// A new random logical id (a version 4 UUID).
pub fn new_id() -> String {
    let bits = rand::random::<u128>() & !(0xF << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_4_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert!(types::is_valid_id(&id));
        assert_ne!(new_id(), id);
    }
}
