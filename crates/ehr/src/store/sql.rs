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
        };
    }
    query
}

/// Inserts `rows` (each `columns.len()` values) into `table` with multi-row statements of at
/// most `chunk` rows.
///
/// Statements hold a fixed number of rows (the last one fewer), so that their text repeats and
/// the prepared statement is reused. SQLite gets anonymous `?` placeholders: sqlx looks up named
/// parameters by name, which costs time quadratic in their number.
pub async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    dialect: super::Dialect,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Arg>>,
) -> Result<(), sqlx::Error> {
    const ROWS_PER_STATEMENT: usize = 128;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::new(format!(
            "INSERT INTO {table} ({}) VALUES ",
            columns.join(", ")
        ));
        for (i, row) in rows.by_ref().take(ROWS_PER_STATEMENT).enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                let placeholder = sql.arg(value);
                sql.push(match dialect {
                    super::Dialect::Sqlite => "?",
                    super::Dialect::Postgres => &placeholder,
                });
            }
            sql.push(")");
        }
        sql.query().execute(&mut *conn).await?;
    }
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
