//! The persisted data model of a plan: its phase, the hospitals' reviews,
//! the contributions of the open round and the record of each finished round.

use std::collections::BTreeMap;

use learn::{FeatureStats, Metrics, Standardizer};
use ledger::entry::SignedEntry;
use serde::{Deserialize, Serialize};

use crate::contribution::SignedContribution;
use crate::plan::TrainingPlan;

/// Where a plan stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for hospitals to approve or decline the plan.
    Review,
    /// Collecting feature sums for standardisation.
    Statistics,
    /// Running round `PlanState::round`.
    Training,
    /// Collecting test metrics of the final model.
    Evaluation,
    /// Done; the final model is `PlanState::global_sha256`.
    Completed,
    /// Stopped for the reason given.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// A hospital's answer to a plan offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Whether the hospital takes part.
    pub approved: bool,
    /// Why it declined.
    pub reason: String,
    /// The node-signed PlanApproved ledger entry, when approved.
    #[serde(default, with = "crate::contribution::entry_hex::option")]
    pub approval_entry: Option<SignedEntry>,
    /// The node-signed DatasetPrepared ledger entry, when approved.
    #[serde(default, with = "crate::contribution::entry_hex::option")]
    pub dataset_entry: Option<SignedEntry>,
}

/// What happened in one finished round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (from 1).
    pub round: u32,
    /// The aggregated contributions, by hospital.
    pub contributions: BTreeMap<String, SignedContribution>,
    /// Participants that sent nothing before the deadline.
    pub missing: Vec<String>,
    /// The global model the round started from.
    pub input_sha256: String,
    /// The aggregate.
    pub output_sha256: String,
    /// When the round opened.
    pub opened_unix_ms: i64,
    /// When it was aggregated.
    pub closed_unix_ms: i64,
}

impl RoundRecord {
    /// Each contributor's local training metrics.
    pub fn train(&self) -> BTreeMap<String, Metrics> {
        self.per_contributor(|c| c.train)
    }

    /// The input model's test metrics at each contributor.
    pub fn input_test(&self) -> BTreeMap<String, Metrics> {
        self.per_contributor(|c| c.global_test)
    }

    fn per_contributor<T>(
        &self,
        f: impl Fn(&crate::contribution::Contribution) -> T,
    ) -> BTreeMap<String, T> {
        self.contributions
            .iter()
            .map(|(n, c)| (n.clone(), f(&c.contribution)))
            .collect()
    }
}

/// Everything the coordinator persists about a plan (model weights by hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanState {
    /// The plan.
    pub plan: TrainingPlan,
    /// Its identity.
    pub plan_id: String,
    /// Current phase.
    pub phase: Phase,
    /// When the current phase (or round) opened.
    pub phase_opened_unix_ms: i64,
    /// How many times the current phase has been opened.
    pub attempt: u32,
    /// Answers to the plan offer.
    pub reviews: BTreeMap<String, Review>,
    /// Hospitals that approved, fixed when review ends (less those that withdrew).
    pub participants: Vec<String>,
    /// Hospitals that withdrew from the plan, with their reason.
    pub withdrawn: BTreeMap<String, String>,
    /// Each participant's cumulative epsilon (millionths) as last reported.
    pub epsilon_spent_micro: BTreeMap<String, u64>,
    /// Feature sums per hospital.
    pub statistics: BTreeMap<String, FeatureStats>,
    /// The federation's standardisation, once computed.
    pub standardizer: Option<Standardizer>,
    /// The open round (1-based) while training; rounds done + 1 afterwards.
    pub round: u32,
    /// The current global model.
    pub global_sha256: String,
    /// Server optimiser state, when the strategy has one.
    pub strategy_state_sha256: Option<String>,
    /// Contributions accepted in the open round (under plain rounds, the
    /// weights are kept as artifacts named by `update_sha256`).
    pub updates: BTreeMap<String, SignedContribution>,
    /// Participants that missed a round's deadline and have not asked for a
    /// task since: rounds do not wait for them (they still may contribute).
    pub absent: Vec<String>,
    /// Finished rounds. Append-only and not part of the serialised state:
    /// a store keeps each record once, as it is appended (the coordinator's
    /// `plan_rounds` table), so saving the state costs the same every round.
    #[serde(skip)]
    pub history: Vec<RoundRecord>,
    /// Test metrics of the final model per hospital.
    pub final_evaluation: BTreeMap<String, Metrics>,
    /// Secure-aggregation rounds started so far (each attempt has its own id).
    #[serde(default)]
    pub secure_round_id: u64,
    /// Adaptive clipping of client-level DP: the clip norm the next round uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipping: Option<privacy::dp::AdaptiveClipping>,
}
