//! The coordinator's side of one training plan, as a state machine.
//!
//! [`PlanRun`] does no I/O and reads no clock: every call takes `now` (Unix
//! milliseconds), so the same inputs always give the same run. The
//! coordinator service feeds it protocol messages, persists
//! [`PlanRun::state`] and the artifacts it names after every change, and calls
//! [`PlanRun::advance`] when time passes.
//!
//! Phases: `Review` (each eligible hospital accepts or declines) →
//! `Statistics` (federated feature sums, when the plan standardises) →
//! `Training` (rounds 1..=R: open, collect updates until every participant
//! has sent one or the deadline passes with a quorum, aggregate) →
//! `Evaluation` (participants test the final model) → `Completed`.
//! A phase that misses its quorum at the deadline is reopened up to
//! `round_attempts` times, then the plan is `Failed`.

mod handlers;
mod messages;
mod model;
mod phases;
mod secure;

use std::collections::{BTreeMap, HashMap};

use learn::Weights;

use crate::plan::TrainingPlan;
use crate::secure_round::SecureRoundServer;
use crate::strategy::Strategy;

pub use messages::{PlanEvent, Rejection, RunError, TaskKind};
pub use model::{Phase, PlanState, Review, RoundRecord};

/// The live state machine of one plan.
pub struct PlanRun {
    state: PlanState,
    strategy: Box<dyn Strategy>,
    artifacts: HashMap<String, Weights>,
    unsaved: Vec<String>,
    /// The open round's secure aggregation (kept in memory only: after a
    /// restart the round starts a new secure attempt).
    secure: Option<SecureRoundServer>,
}

impl PlanRun {
    /// Start a plan at `now`: initial weights from the plan's seed.
    pub fn new(plan: TrainingPlan, now: i64) -> Result<Self, RunError> {
        plan.validate()?;
        let strategy = plan.strategy.build()?;
        let clipping = match plan.client_dp.as_ref().and_then(|dp| dp.initial_clipping()) {
            Some(c) => Some(c.map_err(|e| {
                crate::plan::PlanError::Invalid(format!("client_dp.adaptive: {e}"))
            })?),
            None => None,
        };
        let initial = plan.model.init(plan.seed);
        let global_sha256 = initial.sha256_hex();
        let state = PlanState {
            plan_id: plan.plan_id(),
            plan,
            phase: Phase::Review,
            phase_opened_unix_ms: now,
            attempt: 1,
            reviews: BTreeMap::new(),
            participants: Vec::new(),
            withdrawn: BTreeMap::new(),
            epsilon_spent_micro: BTreeMap::new(),
            statistics: BTreeMap::new(),
            standardizer: None,
            round: 1,
            global_sha256: global_sha256.clone(),
            strategy_state_sha256: None,
            updates: BTreeMap::new(),
            absent: Vec::new(),
            history: Vec::new(),
            final_evaluation: BTreeMap::new(),
            secure_round_id: 0,
            clipping,
        };
        let mut run = PlanRun {
            state,
            strategy,
            artifacts: HashMap::new(),
            unsaved: Vec::new(),
            secure: None,
        };
        run.keep(initial);
        Ok(run)
    }

    /// Rebuild a run from persisted state; `load` fetches artifacts by hash.
    pub fn restore(
        state: PlanState,
        mut load: impl FnMut(&str) -> Option<Weights>,
    ) -> Result<Self, RunError> {
        state.plan.validate()?;
        let mut strategy = state.plan.strategy.build()?;
        let mut artifacts = HashMap::new();
        for sha in referenced_artifacts(&state) {
            let weights = load(&sha).ok_or_else(|| RunError::MissingArtifact(sha.clone()))?;
            artifacts.insert(sha, weights);
        }
        if let Some(sha) = &state.strategy_state_sha256 {
            let saved = &artifacts[sha];
            let mut offset = 0;
            let mut named = Vec::new();
            for (name, shape) in saved.layout() {
                let len: usize = shape.iter().product();
                named.push((name, saved.values()[offset..offset + len].to_vec()));
                offset += len;
            }
            strategy.restore(named)?;
        }
        let mut run = PlanRun {
            state,
            strategy,
            artifacts,
            unsaved: Vec::new(),
            secure: None,
        };
        run.ensure_secure_round();
        Ok(run)
    }

    /// The persisted state.
    pub fn state(&self) -> &PlanState {
        &self.state
    }

    /// An artifact this run references, by hash.
    pub fn artifact(&self, sha256: &str) -> Option<&Weights> {
        self.artifacts.get(sha256)
    }

    /// The current global model.
    pub fn global(&self) -> &Weights {
        &self.artifacts[&self.state.global_sha256]
    }

    /// Artifacts created since the last call, to be stored before the state.
    pub fn take_unsaved(&mut self) -> Vec<(String, Weights)> {
        std::mem::take(&mut self.unsaved)
            .into_iter()
            .map(|sha| {
                let w = self.artifacts[&sha].clone();
                (sha, w)
            })
            .collect()
    }

    /// Whether the plan is over (completed or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state.phase, Phase::Completed | Phase::Failed { .. })
    }

    /// When the current phase closes, if it is open.
    pub fn deadline_unix_ms(&self) -> Option<i64> {
        if self.is_finished() {
            return None;
        }
        Some(self.state.phase_opened_unix_ms + self.deadline_ms())
    }

    fn deadline_ms(&self) -> i64 {
        (self.state.plan.round_deadline_secs as i64).saturating_mul(1000)
    }

    fn keep(&mut self, weights: Weights) -> String {
        let sha = weights.sha256_hex();
        if !self.artifacts.contains_key(&sha) {
            self.artifacts.insert(sha.clone(), weights);
            self.unsaved.push(sha.clone());
        }
        sha
    }

    fn is_participant(&self, node: &str) -> bool {
        self.state.participants.iter().any(|p| p == node)
    }
}

/// Hashes of the artifacts a state needs in memory to continue.
pub fn referenced_artifacts(state: &PlanState) -> Vec<String> {
    let mut shas = vec![state.global_sha256.clone()];
    shas.extend(state.strategy_state_sha256.iter().cloned());
    if state.plan.secure_aggregation.is_none() {
        shas.extend(
            state
                .updates
                .values()
                .map(|u| u.contribution.update_sha256.clone()),
        );
    }
    shas.sort();
    shas.dedup();
    shas
}
