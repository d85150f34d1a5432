//! Federated training core, independent of any transport: training plans,
//! aggregation strategies, the coordinator's plan state machine
//! ([`plan_run::PlanRun`]), the facts of an update ([`contribution`]) and the
//! node's local steps ([`client`]).
//!
//! ```
//! use fed::plan::TrainingPlan;
//! let plan = TrainingPlan::heart_disease_default();
//! plan.validate().unwrap();
//! assert_eq!(plan.plan_id().len(), 64);
//! ```

pub mod client;
pub mod client_dp;
pub mod contribution;
pub mod plan;
pub mod plan_run;
pub mod record;
pub mod secure_round;
pub mod simulation;
pub mod strategy;
pub mod task;

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}
