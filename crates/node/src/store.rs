//! The node's own record of what it agreed to and what left the hospital:
//! reviewed plans and every message carrying data derived from patients.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

/// The node's SQLite database.
#[derive(Clone)]
pub struct NodeStore {
    db: SqlitePool,
}

/// One message that left the node.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Disclosure {
    /// The plan.
    pub plan_id: String,
    /// The round (0 for statistics).
    pub round: u32,
    /// `statistics`, `update` or `evaluation`.
    pub kind: String,
    /// Hash of the model sent, when one was.
    pub sha256: String,
    /// Records behind it.
    pub records: u64,
}

/// The privacy a training round cost, in millionths of epsilon at the plan's delta: the round
/// alone and the plan's total after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The round alone.
    pub epsilon_round_micro: u64,
    /// The plan so far, this round included.
    pub epsilon_total_micro: u64,
}

/// A disclosure as the log keeps it: what left and when.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Recorded {
    /// What left.
    #[serde(flatten)]
    pub disclosure: Disclosure,
    /// When it was recorded, just before it was sent (Unix milliseconds).
    pub unix_ms: i64,
}

impl NodeStore {
    /// Open (creating) `dir/node.sqlite`.
    pub async fn open(dir: &Path) -> Result<Self, sqlx::Error> {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join("node.sqlite"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let db = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS reviewed_plans (
                plan_id TEXT PRIMARY KEY, plan_json TEXT NOT NULL,
                approved INTEGER NOT NULL, reason TEXT NOT NULL, unix_ms INTEGER NOT NULL)",
        )
        .execute(&db)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS node_secret (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL)",
        )
        .execute(&db)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS privacy_accountants (
                plan_id TEXT PRIMARY KEY, accountant_json TEXT NOT NULL)",
        )
        .execute(&db)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS privacy_charges (
                plan_id TEXT NOT NULL, round INTEGER NOT NULL,
                epsilon_round_micro INTEGER NOT NULL, epsilon_total_micro INTEGER NOT NULL,
                PRIMARY KEY (plan_id, round))",
        )
        .execute(&db)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS disclosures (
                id INTEGER PRIMARY KEY AUTOINCREMENT, plan_id TEXT NOT NULL, round INTEGER NOT NULL,
                kind TEXT NOT NULL, sha256 TEXT NOT NULL, records INTEGER NOT NULL,
                unix_ms INTEGER NOT NULL)",
        )
        .execute(&db)
        .await?;
        Ok(NodeStore { db })
    }

    /// Close the database, its write-ahead log folded back into the file.
    pub async fn close(self) {
        self.db.close().await;
    }

    /// Remember a review decision.
    pub async fn record_review(
        &self,
        plan_id: &str,
        plan_json: &str,
        approved: bool,
        reason: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT OR REPLACE INTO reviewed_plans (plan_id, plan_json, approved, reason, unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(plan_id)
        .bind(plan_json)
        .bind(approved)
        .bind(reason)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The JSON of a plan this node approved, if it did.
    pub async fn approved_plan(&self, plan_id: &str) -> Result<Option<String>, sqlx::Error> {
        let row =
            sqlx::query("SELECT plan_json FROM reviewed_plans WHERE plan_id = ?1 AND approved = 1")
                .bind(plan_id)
                .fetch_optional(&self.db)
                .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The node's own secret (created on first use): it seeds DP-SGD noise
    /// so that nobody outside the hospital can recompute and subtract it.
    pub async fn secret(&self) -> Result<[u8; 32], sqlx::Error> {
        if let Some(row) = sqlx::query("SELECT key FROM node_secret WHERE id = 1")
            .fetch_optional(&self.db)
            .await?
        {
            let key: Vec<u8> = row.get(0);
            if let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) {
                return Ok(key);
            }
        }
        let key: [u8; 32] = rand::random();
        sqlx::query("INSERT OR REPLACE INTO node_secret (id, key) VALUES (1, ?1)")
            .bind(key.to_vec())
            .execute(&self.db)
            .await?;
        Ok(key)
    }

    /// Give the node `key` as its secret unless it already has one (for
    /// simulations that must be reproducible, see `NodeSettings::secret`; a
    /// real node draws its own).
    pub(crate) async fn install_secret(&self, key: [u8; 32]) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT OR IGNORE INTO node_secret (id, key) VALUES (1, ?1)")
            .bind(key.to_vec())
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// The privacy accountant of a plan (empty when nothing was spent yet).
    pub async fn accountant(
        &self,
        plan_id: &str,
    ) -> Result<privacy::accountant::RdpAccountant, sqlx::Error> {
        let row = sqlx::query("SELECT accountant_json FROM privacy_accountants WHERE plan_id = ?1")
            .bind(plan_id)
            .fetch_optional(&self.db)
            .await?;
        match row {
            None => Ok(privacy::accountant::RdpAccountant::new()),
            Some(row) => {
                let json: String = row.get(0);
                serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            }
        }
    }

    /// What training round `round` of a plan was charged, if it was.
    pub async fn charge(&self, plan_id: &str, round: u32) -> Result<Option<Charge>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT epsilon_round_micro, epsilon_total_micro FROM privacy_charges
             WHERE plan_id = ?1 AND round = ?2",
        )
        .bind(plan_id)
        .bind(round)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| Charge {
            epsilon_round_micro: r.get::<i64, _>(0) as u64,
            epsilon_total_micro: r.get::<i64, _>(1) as u64,
        }))
    }

    /// Store a plan's accountant after charging round `round`, and the charge, together
    /// (before anything they account for leaves).
    pub async fn save_charge(
        &self,
        plan_id: &str,
        accountant: &privacy::accountant::RdpAccountant,
        round: u32,
        charge: Charge,
    ) -> Result<(), sqlx::Error> {
        let json =
            serde_json::to_string(accountant).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT OR REPLACE INTO privacy_accountants (plan_id, accountant_json) VALUES (?1, ?2)",
        )
        .bind(plan_id)
        .bind(json)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO privacy_charges (plan_id, round, epsilon_round_micro, epsilon_total_micro)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(plan_id)
        .bind(round)
        .bind(charge.epsilon_round_micro as i64)
        .bind(charge.epsilon_total_micro as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Log a message that left the node.
    pub async fn record_disclosure(&self, d: &Disclosure, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO disclosures (plan_id, round, kind, sha256, records, unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&d.plan_id)
        .bind(d.round)
        .bind(&d.kind)
        .bind(&d.sha256)
        .bind(d.records as i64)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Everything that left the node, oldest first.
    pub async fn disclosures(&self) -> Result<Vec<Recorded>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT plan_id, round, kind, sha256, records, unix_ms FROM disclosures ORDER BY id",
        )
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Recorded {
                disclosure: Disclosure {
                    plan_id: r.get(0),
                    round: r.get::<i64, _>(1) as u32,
                    kind: r.get(2),
                    sha256: r.get(3),
                    records: r.get::<i64, _>(4) as u64,
                },
                unix_ms: r.get(5),
            })
            .collect())
    }
}
