//! The tables: `resources` (every version; `current` marks the head) and one index table per
//! search parameter type, keyed by the `seq` of the version they index.

use sqlx::{AssertSqlSafe, Executor};

use super::{Dialect, Store};
use crate::error::Result;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS resources (
    seq {seq},
    res_type {text} NOT NULL,
    res_id {text} NOT NULL,
    version BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    method {text} NOT NULL,
    deleted BOOLEAN NOT NULL,
    current BOOLEAN NOT NULL,
    content {json},
    UNIQUE (res_type, res_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS resources_head ON resources (res_type, res_id) WHERE current;
CREATE INDEX IF NOT EXISTS resources_type_seq ON resources (res_type, seq) WHERE current;
CREATE INDEX IF NOT EXISTS resources_updated ON resources (last_updated);
CREATE TABLE IF NOT EXISTS idx_string (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
    value {text} NOT NULL, exact {text} NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_string_value ON idx_string (res_type, param, value);
CREATE INDEX IF NOT EXISTS idx_string_seq ON idx_string (seq);
CREATE TABLE IF NOT EXISTS idx_token (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
    system {text}, code {text}, text {text}
);
CREATE INDEX IF NOT EXISTS idx_token_code ON idx_token (res_type, param, code, system);
CREATE INDEX IF NOT EXISTS idx_token_seq ON idx_token (seq);
CREATE TABLE IF NOT EXISTS idx_reference (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
    target_type {text} NOT NULL, target_id {text} NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (target_id, target_type, res_type, param);
CREATE INDEX IF NOT EXISTS idx_reference_seq ON idx_reference (seq);
CREATE TABLE IF NOT EXISTS idx_date (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
    lo BIGINT NOT NULL, hi BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_date_lo ON idx_date (res_type, param, lo);
CREATE INDEX IF NOT EXISTS idx_date_seq ON idx_date (seq);
CREATE TABLE IF NOT EXISTS idx_number (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL, value {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_number_value ON idx_number (res_type, param, value);
CREATE INDEX IF NOT EXISTS idx_number_seq ON idx_number (seq);
CREATE TABLE IF NOT EXISTS idx_quantity (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL, value {real} NOT NULL,
    system {text}, code {text}, unit {text}
);
CREATE INDEX IF NOT EXISTS idx_quantity_value ON idx_quantity (res_type, param, value);
CREATE INDEX IF NOT EXISTS idx_quantity_seq ON idx_quantity (seq);
CREATE TABLE IF NOT EXISTS idx_compartment (
    seq BIGINT NOT NULL, res_type {text} NOT NULL, patient_id {text} NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_compartment_patient ON idx_compartment (patient_id, res_type);
CREATE INDEX IF NOT EXISTS idx_compartment_seq ON idx_compartment (seq);
CREATE TABLE IF NOT EXISTS idx_link (
    seq BIGINT NOT NULL, target_type {text} NOT NULL, target_id {text} NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_link_target ON idx_link (target_id, target_type);
CREATE INDEX IF NOT EXISTS idx_link_seq ON idx_link (seq);
CREATE TABLE IF NOT EXISTS auth_tokens (
    token_hash {text} PRIMARY KEY,
    name {text} NOT NULL,
    scopes {text} NOT NULL,
    patient {text},
    created BIGINT NOT NULL,
    expires BIGINT,
    revoked BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS import_sources (
    source {text} PRIMARY KEY,
    res_type {text} NOT NULL,
    res_id {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    name {text} PRIMARY KEY,
    value {text} NOT NULL
);
";

/// Creates the tables and indexes that do not exist yet.
pub(super) async fn migrate(store: &Store) -> Result<()> {
    let (seq, text, json, real) = match store.dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "TEXT", "REAL"),
        Dialect::Postgres => (
            "BIGSERIAL PRIMARY KEY",
            "TEXT COLLATE \"C\"",
            "JSONB",
            "DOUBLE PRECISION",
        ),
    };
    let ddl = TABLES
        .replace("{seq}", seq)
        .replace("{text}", text)
        .replace("{json}", json)
        .replace("{real}", real);
    let mut conn = store.pool.acquire().await?;
    if store.dialect == Dialect::Postgres {
        // Serialise concurrent migrations of one database (several nodes or tests at once).
        conn.execute("SELECT pg_advisory_lock(4242001)").await?;
    }
    let mut result = Ok(());
    for statement in ddl.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if let Err(e) = sqlx::query(AssertSqlSafe(statement.to_string()))
            .execute(&mut *conn)
            .await
        {
            result = Err(e.into());
            break;
        }
    }
    if store.dialect == Dialect::Postgres {
        conn.execute("SELECT pg_advisory_unlock(4242001)").await?;
    }
    result
}
