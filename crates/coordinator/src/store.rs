//! Durable coordinator state: plan states in SQLite, model artifacts
//! content-addressed in an object store (a local directory by default).
//!
//! Artifacts are written before the state that references them, so a crash
//! between the two leaves at most an unreferenced file.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use fed::server::PlanState;
use learn::Weights;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("coordinator database: {0}")]
    Database(#[from] sqlx::Error),
    /// The artifact store failed.
    #[error("artifact store: {0}")]
    Objects(#[from] object_store::Error),
    /// A directory could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Stored bytes do not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The coordinator's database and artifact store.
#[derive(Clone)]
pub struct CoordinatorStore {
    db: SqlitePool,
    objects: Arc<dyn ObjectStore>,
}

impl CoordinatorStore {
    /// Open (creating if needed) `dir/coordinator.sqlite` and `dir/artifacts/`.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let artifacts = dir.join("artifacts");
        std::fs::create_dir_all(&artifacts).map_err(|source| StoreError::Directory {
            path: artifacts.display().to_string(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join("coordinator.sqlite"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let db = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS plan_states (
                plan_id TEXT PRIMARY KEY,
                state_json TEXT NOT NULL,
                updated_unix_ms INTEGER NOT NULL
            )",
        )
        .execute(&db)
        .await?;
        let objects: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&artifacts)?);
        Ok(CoordinatorStore { db, objects })
    }

    fn artifact_path(sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("models/{sha256}.safetensors"))
    }

    /// Store weights under their hash (idempotent).
    pub async fn put_artifact(&self, sha256: &str, weights: &Weights) -> Result<(), StoreError> {
        let bytes = weights.to_safetensors();
        self.objects
            .put(&Self::artifact_path(sha256), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Load weights by hash, checking the hash.
    pub async fn get_artifact(&self, sha256: &str) -> Result<Weights, StoreError> {
        let bytes = self
            .objects
            .get(&Self::artifact_path(sha256))
            .await?
            .bytes()
            .await?;
        let weights = Weights::from_safetensors(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("artifact {sha256}: {e}")))?;
        if weights.sha256_hex() != sha256 {
            return Err(StoreError::Corrupt(format!(
                "artifact {sha256} hashes to {}",
                weights.sha256_hex()
            )));
        }
        Ok(weights)
    }

    /// Raw safetensors bytes of an artifact.
    pub async fn artifact_bytes(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .objects
            .get(&Self::artifact_path(sha256))
            .await?
            .bytes()
            .await?
            .to_vec())
    }

    /// Write a plan's state (replacing the previous one) durably.
    pub async fn save_state(&self, state: &PlanState, now: i64) -> Result<(), StoreError> {
        let json = serde_json::to_string(state)
            .map_err(|e| StoreError::Corrupt(format!("plan state does not serialise: {e}")))?;
        sqlx::query(
            "INSERT INTO plan_states (plan_id, state_json, updated_unix_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(plan_id) DO UPDATE SET state_json = excluded.state_json,
                                               updated_unix_ms = excluded.updated_unix_ms",
        )
        .bind(&state.plan_id)
        .bind(json)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The stored state of a plan, if any.
    pub async fn load_state(&self, plan_id: &str) -> Result<Option<PlanState>, StoreError> {
        let row = sqlx::query("SELECT state_json FROM plan_states WHERE plan_id = ?1")
            .bind(plan_id)
            .fetch_optional(&self.db)
            .await?;
        row.map(|r| {
            let json: String = r.get(0);
            serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("plan state {plan_id}: {e}")))
        })
        .transpose()
    }
}
