//! Durable coordinator state: plan states in SQLite, model artifacts
//! content-addressed in an object store (a local directory by default).
//!
//! Artifacts are written before the state that references them, so a crash
//! between the two leaves at most an unreferenced file.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use fed::plan_run::{PlanState, RoundRecord};
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
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS plan_rounds (
                plan_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                record_json TEXT NOT NULL,
                PRIMARY KEY (plan_id, position)
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

    /// Write a plan's state durably: the state itself (replacing the
    /// previous one) and, in the same transaction, the finished rounds not yet
    /// stored, one row each, so each save writes what changed and not the
    /// whole history.
    pub async fn save_state(&self, state: &PlanState, now: i64) -> Result<(), StoreError> {
        let json = serde_json::to_string(state)
            .map_err(|e| StoreError::Corrupt(format!("plan state does not serialise: {e}")))?;
        let mut tx = self.db.begin().await?;
        let stored: i64 = sqlx::query("SELECT COUNT(*) FROM plan_rounds WHERE plan_id = ?1")
            .bind(&state.plan_id)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        let stored = usize::try_from(stored).unwrap_or(usize::MAX);
        if stored > state.history.len() {
            return Err(StoreError::Corrupt(format!(
                "plan {} has {stored} stored rounds but its state only {}",
                state.plan_id,
                state.history.len()
            )));
        }
        for (position, record) in state.history.iter().enumerate().skip(stored) {
            let record_json = serde_json::to_string(record)
                .map_err(|e| StoreError::Corrupt(format!("round does not serialise: {e}")))?;
            sqlx::query(
                "INSERT INTO plan_rounds (plan_id, position, record_json) VALUES (?1, ?2, ?3)",
            )
            .bind(&state.plan_id)
            .bind(position as i64)
            .bind(record_json)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO plan_states (plan_id, state_json, updated_unix_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(plan_id) DO UPDATE SET state_json = excluded.state_json,
                                               updated_unix_ms = excluded.updated_unix_ms",
        )
        .bind(&state.plan_id)
        .bind(json)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored state of a plan, with its finished rounds, if any.
    pub async fn load_state(&self, plan_id: &str) -> Result<Option<PlanState>, StoreError> {
        let row = sqlx::query("SELECT state_json FROM plan_states WHERE plan_id = ?1")
            .bind(plan_id)
            .fetch_optional(&self.db)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let json: String = row.get(0);
        let mut state: PlanState = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("plan state {plan_id}: {e}")))?;
        let rounds = sqlx::query(
            "SELECT position, record_json FROM plan_rounds WHERE plan_id = ?1 ORDER BY position",
        )
        .bind(plan_id)
        .fetch_all(&self.db)
        .await?;
        if rounds.is_empty() {
            // Databases written before rounds had their own rows kept the
            // history inside the state.
            state.history = legacy_history(&json)
                .map_err(|e| StoreError::Corrupt(format!("plan state {plan_id} history: {e}")))?;
        }
        for (expected, row) in rounds.iter().enumerate() {
            let position: i64 = row.get(0);
            if position != expected as i64 {
                return Err(StoreError::Corrupt(format!(
                    "plan {plan_id}: round row {position} where {expected} was expected"
                )));
            }
            let record_json: String = row.get(1);
            state
                .history
                .push(serde_json::from_str(&record_json).map_err(|e| {
                    StoreError::Corrupt(format!("plan {plan_id} round row {position}: {e}"))
                })?);
        }
        Ok(Some(state))
    }
}

/// The `history` array of a state stored whole, as earlier versions did.
fn legacy_history(state_json: &str) -> Result<Vec<RoundRecord>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Legacy {
        #[serde(default)]
        history: Vec<RoundRecord>,
    }
    Ok(serde_json::from_str::<Legacy>(state_json)?.history)
}

#[cfg(test)]
mod tests {
    use fed::contribution::{Contribution, SignedContribution};
    use fed::plan::TrainingPlan;
    use fed::plan_run::{PlanRun, PlanState, RoundRecord};

    use super::*;

    fn record(round: u32) -> RoundRecord {
        let plan = TrainingPlan::heart_disease_default();
        let origin = ledger::entry::LogOrigin::new("test/log").unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let metrics = learn::Metrics {
            loss: 0.5,
            accuracy: 0.7,
            samples: 100,
        };
        let contributions = ["cleveland", "hungarian", "switzerland", "va"]
            .iter()
            .map(|h| {
                let contribution = Contribution {
                    round,
                    update_sha256: "ef".repeat(32),
                    num_samples: 100,
                    train: metrics,
                    global_test: metrics,
                    code_hash: plan.code_hash(),
                    epsilon_round_micro: 0,
                    epsilon_total_micro: 0,
                };
                let party = ledger::entry::PartyId::new(h).unwrap();
                let entry =
                    fed::record::sign_contribution(&plan, &contribution, &origin, party, &key)
                        .unwrap();
                let signed = SignedContribution {
                    contribution,
                    entry,
                };
                (h.to_string(), signed)
            })
            .collect();
        RoundRecord {
            round,
            contributions,
            missing: Vec::new(),
            input_sha256: "ab".repeat(32),
            output_sha256: "cd".repeat(32),
            opened_unix_ms: i64::from(round) * 1000,
            closed_unix_ms: i64::from(round) * 1000 + 500,
        }
    }

    fn state() -> PlanState {
        PlanRun::new(TrainingPlan::heart_disease_default(), 0)
            .unwrap()
            .state()
            .clone()
    }

    async fn state_row_bytes(dir: &Path, plan_id: &str) -> i64 {
        let store = CoordinatorStore::open(dir).await.unwrap();
        sqlx::query("SELECT length(state_json) FROM plan_states WHERE plan_id = ?1")
            .bind(plan_id)
            .fetch_one(&store.db)
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn saving_a_round_writes_the_same_state_row_whatever_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = CoordinatorStore::open(dir.path()).await.unwrap();
        let mut state = state();
        store.save_state(&state, 1).await.unwrap();
        let empty = state_row_bytes(dir.path(), &state.plan_id).await;
        for round in 1..=200 {
            state.history.push(record(round));
            store.save_state(&state, 2).await.unwrap();
        }
        assert_eq!(state_row_bytes(dir.path(), &state.plan_id).await, empty);
        let loaded = store.load_state(&state.plan_id).await.unwrap().unwrap();
        assert_eq!(loaded, state);
        // Saving again stores nothing twice.
        store.save_state(&state, 3).await.unwrap();
        assert_eq!(store.load_state(&state.plan_id).await.unwrap(), Some(state));
    }

    #[tokio::test]
    async fn a_state_stored_whole_by_an_earlier_version_keeps_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = CoordinatorStore::open(dir.path()).await.unwrap();
        let mut state = state();
        state.history = vec![record(1), record(2)];
        let mut legacy = serde_json::to_value(&state).unwrap();
        legacy["history"] = serde_json::to_value(&state.history).unwrap();
        sqlx::query(
            "INSERT INTO plan_states (plan_id, state_json, updated_unix_ms) VALUES (?1, ?2, 0)",
        )
        .bind(&state.plan_id)
        .bind(legacy.to_string())
        .execute(&store.db)
        .await
        .unwrap();
        let loaded = store.load_state(&state.plan_id).await.unwrap().unwrap();
        assert_eq!(loaded, state);
        // The next save moves the rounds into their own rows.
        state.history.push(record(3));
        store.save_state(&state, 1).await.unwrap();
        assert_eq!(store.load_state(&state.plan_id).await.unwrap(), Some(state));
    }

    #[tokio::test]
    async fn a_state_with_fewer_rounds_than_stored_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CoordinatorStore::open(dir.path()).await.unwrap();
        let mut state = state();
        state.history = vec![record(1), record(2)];
        store.save_state(&state, 1).await.unwrap();
        state.history.pop();
        let err = store.save_state(&state, 2).await.unwrap_err();
        assert!(err.to_string().contains("2 stored rounds"), "{err}");
    }
}
