//! Reads: the current version, a given version, and history (instance, type, system).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::Sql;
use super::{Dialect, Store};
use crate::error::{Error, Result};

/// One stored version of a resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// Global write order.
    pub seq: i64,
    /// The resource type.
    pub resource_type: String,
    /// The logical id.
    pub id: String,
    /// The version number (1, 2, …).
    pub version: i64,
    /// When it was written, microseconds since the epoch.
    pub last_updated: i64,
    /// The interaction that wrote it: `POST`, `PUT` or `DELETE`.
    pub method: String,
    /// The resource as JSON text; `None` for a deletion.
    pub content: Option<String>,
}

/// A page of history, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPage {
    /// The versions on this page.
    pub versions: Vec<Version>,
    /// True when more versions follow.
    pub more: bool,
}

/// Columns selected for a [`Version`] from `resources` aliased `r`.
pub(crate) fn version_columns_for(dialect: Dialect) -> String {
    format!(
        "r.seq, r.res_type, r.res_id, r.version, r.last_updated, r.method, {} AS content",
        dialect.json_text("r")
    )
}

fn version_columns(store: &Store) -> String {
    version_columns_for(store.dialect)
}

/// Decodes a row selected with [`version_columns`].
pub(crate) fn version_from_row(row: &AnyRow) -> Result<Version> {
    Ok(Version {
        seq: row.try_get("seq")?,
        resource_type: row.try_get("res_type")?,
        id: row.try_get("res_id")?,
        version: row.try_get("version")?,
        last_updated: row.try_get("last_updated")?,
        method: row.try_get("method")?,
        content: row.try_get("content")?,
    })
}

impl Store {
    /// The current version of `resource_type/id`; [`Error::Gone`] if it was deleted.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<Version> {
        self.one_version(resource_type, id, None).await
    }

    /// Version `version` of `resource_type/id`; [`Error::Gone`] if that version is a deletion.
    pub async fn vread(&self, resource_type: &str, id: &str, version: i64) -> Result<Version> {
        self.one_version(resource_type, id, Some(version)).await
    }

    /// The given version, or the current one.
    async fn one_version(
        &self,
        resource_type: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Version> {
        let name = match version {
            Some(v) => format!("{resource_type}/{id}/_history/{v}"),
            None => format!("{resource_type}/{id}"),
        };
        if !crate::types::is_valid_id(id) {
            return Err(Error::NotFound(name));
        }
        let mut sql = Sql::default();
        let t = sql.arg(resource_type);
        let i = sql.arg(id);
        let which = match version {
            Some(v) => format!("r.version = {}", sql.arg(v)),
            None => "r.current".to_string(),
        };
        sql.text = format!(
            "SELECT {} FROM resources r WHERE r.res_type = {t} AND r.res_id = {i} AND {which}",
            version_columns(self)
        );
        let found = sql
            .query()
            .fetch_optional(&self.pool)
            .await?
            .map(|r| version_from_row(&r))
            .transpose()?
            .ok_or_else(|| Error::NotFound(name.clone()))?;
        if found.content.is_none() {
            return Err(Error::Gone(name));
        }
        Ok(found)
    }

    /// History newest first: of one resource (type and id), of a type, or of everything.
    /// `since` keeps versions written at or after it; `count` and `offset` page.
    pub async fn history(
        &self,
        resource_type: Option<&str>,
        id: Option<&str>,
        since: Option<i64>,
        count: usize,
        offset: usize,
    ) -> Result<HistoryPage> {
        let mut sql = Sql::new(format!(
            "SELECT {} FROM resources r WHERE 1 = 1",
            version_columns(self)
        ));
        if let Some(t) = resource_type {
            let p = sql.arg(t);
            sql.push(&format!(" AND r.res_type = {p}"));
        }
        if let Some(id) = id {
            let p = sql.arg(id);
            sql.push(&format!(" AND r.res_id = {p}"));
        }
        if let Some(since) = since {
            let p = sql.arg(since);
            sql.push(&format!(" AND r.last_updated >= {p}"));
        }
        let limit = sql.arg(i64::try_from(count + 1).unwrap_or(i64::MAX));
        let skip = sql.arg(i64::try_from(offset).unwrap_or(i64::MAX));
        sql.push(&format!(" ORDER BY r.seq DESC LIMIT {limit} OFFSET {skip}"));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut versions = rows
            .iter()
            .map(version_from_row)
            .collect::<Result<Vec<_>>>()?;
        let more = versions.len() > count;
        versions.truncate(count);
        if versions.is_empty()
            && offset == 0
            && let (Some(t), Some(id)) = (resource_type, id)
        {
            return Err(Error::NotFound(format!("{t}/{id}")));
        }
        Ok(HistoryPage { versions, more })
    }
}
