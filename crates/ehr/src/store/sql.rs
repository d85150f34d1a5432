//! SQL text with numbered parameters (`$1`, `$2`, … work in SQLite and PostgreSQL) and the
//! values bound to them.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

/// A value bound to a parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// Text (or NULL).
    Text(Option<String>),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Real(f64),
    /// A boolean.
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}

/// A statement being built.
#[derive(Clone, Debug, Default)]
pub struct Sql {
    /// The text.
    pub text: String,
    /// The values of `$1..`.
    pub args: Vec<Arg>,
}

impl Sql {
    /// Starts a statement with `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Adds a value and returns its placeholder.
    pub fn arg(&mut self, value: impl Into<Arg>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// Appends text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// The sqlx query with every value bound.
    pub fn query(&self) -> Query<'_, Any, AnyArguments> {
        bind_all(sqlx::query(AssertSqlSafe(self.text.clone())), &self.args)
    }
}

/// Binds `args` in order.
pub fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments>,
    args: &'q [Arg],
) -> Query<'q, Any, AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v.as_deref()),
            Arg::Int(v) => query.bind(*v),
            Arg::Real(v) => query.bind(*v),
            Arg::Bool(v) => query.bind(*v),
        };
    }
    query
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer.
    Int,
    /// A double.
    Real,
    /// Text.
    Text,
    /// A boolean.
    Bool,
    /// JSON text (a `jsonb` on PostgreSQL).
    Json,
}

impl Kind {
    /// The PostgreSQL type a value is cast to.
    fn postgres(self) -> &'static str {
        match self {
            Kind::Int => "bigint",
            Kind::Real => "double precision",
            Kind::Text => "text",
            Kind::Bool => "boolean",
            Kind::Json => "jsonb",
        }
    }
}

/// A table rows are inserted into.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// The columns each row gives, in order.
    pub columns: &'static [(&'static str, Kind)],
}

impl Table {
    fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }
}

/// Inserts `rows` (each `table.columns.len()` values) with multi-row statements.
///
/// Statements hold a fixed number of rows (the last one fewer), so that their text repeats and
/// the prepared statement is reused. SQLite gets anonymous `?` placeholders: sqlx looks up named
/// parameters by name, which costs time quadratic in their number.
pub async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    dialect: super::Dialect,
    table: Table,
    rows: Vec<Vec<Arg>>,
) -> Result<(), sqlx::Error> {
    const ROWS_PER_STATEMENT: usize = 128;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::new(format!(
            "{} {} ({}) VALUES ",
            dialect.bulk_insert(),
            table.name,
            table.column_list()
        ));
        for (i, row) in rows.by_ref().take(ROWS_PER_STATEMENT).enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                let placeholder = sql.arg(value);
                match dialect {
                    super::Dialect::Sqlite => sql.push("?"),
                    super::Dialect::Postgres if table.columns[j].1 == Kind::Json => {
                        sql.push(&format!("{placeholder}::jsonb"))
                    }
                    super::Dialect::Postgres => sql.push(&placeholder),
                };
            }
            sql.push(")");
        }
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows for [`insert_json`]: a JSON array of arrays, one value per column, built row by row.
#[derive(Debug, Default)]
pub struct JsonRows {
    text: Vec<u8>,
    count: usize,
}

impl JsonRows {
    /// Appends a row: a tuple of the table's column values in order.
    pub fn push(&mut self, row: &impl serde::Serialize) {
        self.text.push(if self.count == 0 { b'[' } else { b',' });
        serde_json::to_writer(&mut self.text, row).expect("rows of numbers and strings serialise");
        self.count += 1;
    }
}

/// Inserts `rows` into `table` with one statement and one parameter: the database unpacks the
/// JSON array (`jsonb_each` on SQLite, whose rows stay in SQLite's binary JSON so that each
/// column is read without parsing text again; `jsonb_array_elements` on PostgreSQL). Binding
/// thousands of index values one by one costs more than the rows' insertion itself.
pub async fn insert_json(
    conn: &mut sqlx::AnyConnection,
    dialect: super::Dialect,
    table: Table,
    rows: JsonRows,
) -> Result<(), sqlx::Error> {
    if rows.count == 0 {
        return Ok(());
    }
    let mut text = rows.text;
    text.push(b']');
    let text = String::from_utf8(text).expect("serde_json writes UTF-8");
    let values: Vec<String> = (0..table.columns.len())
        .map(|i| match dialect {
            super::Dialect::Sqlite => format!("value->>{i}"),
            super::Dialect::Postgres => {
                format!("(e->>{i})::{}", table.columns[i].1.postgres())
            }
        })
        .collect();
    let source = match dialect {
        super::Dialect::Sqlite => "jsonb_each($1)",
        super::Dialect::Postgres => "jsonb_array_elements($1::jsonb) AS e",
    };
    let sql = format!(
        "{} {} ({}) SELECT {} FROM {source}",
        dialect.bulk_insert(),
        table.name,
        table.column_list(),
        values.join(", ")
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(text)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        let a = sql.arg("x");
        sql.push(&a).push(" AND b = ");
        let b = sql.arg(2_i64);
        sql.push(&b);
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b = $2");
        assert_eq!(sql.args, vec![Arg::from("x"), Arg::Int(2)]);
    }
}
