//! Runs a [`SearchRequest`] against the store: the page of matches, the total, and the
//! included resources.

use std::collections::HashSet;

use sqlx::AnyConnection;

use crate::error::{Error, Result};
use crate::search::filter;
use crate::search::parameters::{self, Kind};
use crate::search::request::{Include, SearchRequest, Total};
use crate::store::sql::Sql;
use crate::store::{Dialect, Store, Tx, Version};
use crate::store::{version_columns_for, version_from_row};

/// The outcome of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The matches on this page, in order.
    pub matches: Vec<Version>,
    /// Resources added by `_include` and `_revinclude`.
    pub included: Vec<Version>,
    /// The number of matches, when counted (or evident).
    pub total: Option<usize>,
    /// True when another page follows.
    pub more: bool,
}

/// `WHERE` clause (without the keyword) selecting the live matches of `request` as alias `r`.
fn where_clause(sql: &mut Sql, request: &SearchRequest, base: Option<&str>) -> Result<String> {
    let t = sql.arg(request.resource_type);
    let mut clauses = vec![format!("r.res_type = {t} AND r.current AND NOT r.deleted")];
    // The most selective criterion drives the search; `_id` drives it through the head index.
    let mut criteria: Vec<&(String, String)> = request.criteria.iter().collect();
    criteria.sort_by_key(|(key, _)| filter::selectivity_rank(request.resource_type, key));
    let by_id = criteria.first().is_some_and(|(key, _)| key == "_id");
    for (i, (key, value)) in criteria.into_iter().enumerate() {
        let driving = i == 0 && !by_id;
        clauses.push(filter::condition(
            sql,
            request.resource_type,
            "r",
            key,
            value,
            base,
            driving,
        )?);
    }
    if let Some(patient) = &request.compartment {
        let p = sql.arg(patient.as_str());
        let t = sql.arg(request.resource_type);
        clauses.push(format!(
            "r.seq IN (SELECT seq FROM idx_compartment WHERE patient_id = {p} AND res_type = {t})"
        ));
    }
    Ok(clauses.join(" AND "))
}

fn order_by(sql: &mut Sql, request: &SearchRequest) -> String {
    let mut keys = Vec::new();
    for (name, descending) in &request.sort {
        let direction = if *descending { "DESC" } else { "ASC" };
        let expression = match name.as_str() {
            "_id" => "r.res_id".to_string(),
            "_lastUpdated" => "r.last_updated".to_string(),
            name => {
                let Some(param) = parameters::find(request.resource_type, name) else {
                    continue;
                };
                let (table, low, high) = match param.kind {
                    Kind::Date => ("idx_date", "lo", "hi"),
                    Kind::String => ("idx_string", "value", "value"),
                    Kind::Token | Kind::Uri => ("idx_token", "code", "code"),
                    Kind::Reference => ("idx_reference", "target_id", "target_id"),
                    Kind::Number => ("idx_number", "value", "value"),
                    Kind::Quantity => ("idx_quantity", "value", "value"),
                };
                let (aggregate, column) = if *descending {
                    ("MAX", high)
                } else {
                    ("MIN", low)
                };
                let rows = filter::rows_of(sql, "s", param);
                format!(
                    "(SELECT {aggregate}(s.{column}) FROM {table} s WHERE s.seq = r.seq AND {rows})"
                )
            }
        };
        // Missing values sort last in both databases.
        keys.push(format!("({expression}) IS NULL, {expression} {direction}"));
    }
    keys.push("r.seq ASC".to_string());
    keys.join(", ")
}

/// Runs `request` on `conn`.
pub(crate) async fn run(
    conn: &mut AnyConnection,
    dialect: Dialect,
    request: &SearchRequest,
    base: Option<&str>,
) -> Result<SearchResult> {
    let mut sql = Sql::default();
    let condition = where_clause(&mut sql, request, base)?;
    let mut matches = Vec::new();
    let mut more = false;
    if request.count > 0 {
        let mut page = sql.clone();
        let order = order_by(&mut page, request);
        let limit = page.arg(i64::try_from(request.count + 1).unwrap_or(i64::MAX));
        let offset = page.arg(i64::try_from(request.offset).unwrap_or(i64::MAX));
        page.text = format!(
            "SELECT {} FROM resources r WHERE {condition} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            version_columns_for(dialect)
        );
        let rows = page.query().fetch_all(&mut *conn).await?;
        matches = rows
            .iter()
            .map(version_from_row)
            .collect::<Result<Vec<_>>>()?;
        more = matches.len() > request.count;
        matches.truncate(request.count);
    }
    let evident = !more && (request.offset == 0 || !matches.is_empty()) && request.count > 0;
    let total = if evident {
        Some(request.offset + matches.len())
    } else if request.total == Total::Accurate || request.count == 0 {
        let mut count = sql.clone();
        count.text = format!("SELECT COUNT(*) AS n FROM resources r WHERE {condition}");
        let n: i64 = sqlx::Row::try_get(&count.query().fetch_one(&mut *conn).await?, "n")?;
        Some(usize::try_from(n).unwrap_or(0))
    } else {
        None
    };
    let included = includes(conn, dialect, request, &matches).await?;
    Ok(SearchResult {
        matches,
        included,
        total,
        more,
    })
}

async fn includes(
    conn: &mut AnyConnection,
    dialect: Dialect,
    request: &SearchRequest,
    matches: &[Version],
) -> Result<Vec<Version>> {
    let mut seen: HashSet<i64> = matches.iter().map(|v| v.seq).collect();
    let mut out = Vec::new();
    if matches.is_empty() {
        return Ok(out);
    }
    let columns = version_columns_for(dialect);
    for include in &request.include {
        let mut sql = Sql::default();
        let seqs: Vec<String> = matches.iter().map(|m| sql.arg(m.seq)).collect();
        let rows = include_rows(&mut sql, include)?;
        let mut text = format!(
            "SELECT {columns} FROM idx_reference i JOIN resources r ON r.res_type = i.target_type \
             AND r.res_id = i.target_id AND r.current AND NOT r.deleted \
             WHERE i.seq IN ({}) AND {rows}",
            seqs.join(", ")
        );
        if let Some(target) = include.target {
            text.push_str(&format!(" AND i.target_type = {}", sql.arg(target)));
        }
        sql.text = text + " ORDER BY r.seq";
        collect(conn, &sql, &mut seen, &mut out).await?;
    }
    for include in &request.revinclude {
        if include.target.is_some_and(|t| t != request.resource_type) {
            continue;
        }
        let mut sql = Sql::default();
        let ids: Vec<String> = matches.iter().map(|m| sql.arg(m.id.as_str())).collect();
        let s = sql.arg(include.source);
        let rows = include_rows(&mut sql, include)?;
        let t = sql.arg(request.resource_type);
        sql.text = format!(
            "SELECT {columns} FROM idx_reference i JOIN resources r ON r.seq = i.seq \
             WHERE i.target_id IN ({}) AND i.target_type = {t} AND i.res_type = {s} AND {rows} \
             AND r.current AND NOT r.deleted ORDER BY r.seq",
            ids.join(", ")
        );
        collect(conn, &sql, &mut seen, &mut out).await?;
    }
    Ok(out)
}

/// The index rows of an `_include`/`_revinclude`'s reference parameter.
fn include_rows(sql: &mut Sql, include: &Include) -> Result<String> {
    let param = parameters::find(include.source, include.param).ok_or_else(|| {
        Error::invalid(format!(
            "{} is not a search parameter of {}",
            include.param, include.source
        ))
    })?;
    Ok(filter::rows_of(sql, "i", param))
}

async fn collect(
    conn: &mut AnyConnection,
    sql: &Sql,
    seen: &mut HashSet<i64>,
    out: &mut Vec<Version>,
) -> Result<()> {
    for row in sql.query().fetch_all(&mut *conn).await? {
        let version = version_from_row(&row)?;
        if seen.insert(version.seq) {
            out.push(version);
        }
    }
    Ok(())
}

impl Store {
    /// Runs a search; `base` is this server's base URL (absolute references to it count as
    /// local).
    pub async fn search(
        &self,
        request: &SearchRequest,
        base: Option<&str>,
    ) -> Result<SearchResult> {
        let mut conn = self.pool().acquire().await?;
        run(&mut conn, self.dialect(), request, base).await
    }
}

impl Tx {
    /// The ids of the live resources of `resource_type` matching `criteria` (a query string's
    /// pairs), at most `limit` of them, as seen inside this transaction (conditional
    /// interactions).
    pub async fn matching_ids(
        &mut self,
        resource_type: &str,
        criteria: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut request = SearchRequest::parse(resource_type, criteria)?;
        if request.criteria.is_empty() {
            return Err(Error::invalid(format!(
                "a conditional interaction on {resource_type} needs search criteria"
            )));
        }
        request.count = limit;
        request.offset = 0;
        request.total = Total::None;
        let dialect = self.dialect();
        let conn = self.connection().await?;
        let result = run(conn, dialect, &request, None).await?;
        Ok(result.matches.into_iter().map(|v| v.id).collect())
    }

    /// The one live resource of `resource_type` matching the criteria of a conditional
    /// `interaction` (`create`, `update`, `delete`): `None` when nothing matches,
    /// [`Error::PreconditionFailed`] when several do.
    ///
    /// Transactions asking with the same criteria run one after the other from here to their
    /// end ([`Tx::lock`]), so two conditional creates cannot both find nothing and both create.
    pub async fn conditional_match(
        &mut self,
        resource_type: &str,
        criteria: &[(String, String)],
        interaction: &str,
    ) -> Result<Option<String>> {
        let mut key: Vec<String> = criteria.iter().map(|(k, v)| format!("{k}={v}")).collect();
        key.sort();
        self.lock(&format!("{resource_type}?{}", key.join("&")))
            .await?;
        let ids = self.matching_ids(resource_type, criteria, 2).await?;
        match ids.as_slice() {
            [] => Ok(None),
            [id] => Ok(Some(id.clone())),
            _ => Err(Error::PreconditionFailed(format!(
                "the conditional {interaction} matches more than one {resource_type}"
            ))),
        }
    }
}
