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

use std::collections::{BTreeMap, HashMap};

use learn::{FeatureStats, Metrics, Standardizer, Weights};
use serde::{Deserialize, Serialize};

use crate::plan::TrainingPlan;
use crate::secure_round::{
    SecureMessage, SecureRoundParams, SecureRoundServer, SecureTask, StepOutcome, Topology,
};
use crate::strategy::{ClientUpdate, Strategy};

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
    /// The node-signed PlanApproved ledger entry (hex) when approved.
    #[serde(default)]
    pub approval_entry_hex: String,
    /// The node-signed DatasetPrepared ledger entry (hex) when approved.
    #[serde(default)]
    pub dataset_entry_hex: String,
}

/// An accepted update of the open round (weights are kept as an artifact).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceivedUpdate {
    /// SHA-256 of the update's safetensors bytes.
    pub weights_sha256: String,
    /// Training records behind the update.
    pub num_samples: u64,
    /// The node's local training metrics.
    pub train: Metrics,
    /// The round's incoming global model on the node's test split.
    pub global_test: Metrics,
    /// The node-signed Contribution ledger entry (hex), kept as evidence.
    pub contribution_entry_hex: String,
    /// Epsilon (millionths) the node spent on this update (0 without DP).
    pub epsilon_round_micro: u64,
    /// Epsilon (millionths) the node has spent on the plan so far.
    pub epsilon_total_micro: u64,
    /// When the coordinator accepted it.
    pub received_unix_ms: i64,
}

/// What happened in one finished round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (from 1).
    pub round: u32,
    /// Hospitals whose updates were aggregated, with their sample counts.
    pub contributors: BTreeMap<String, u64>,
    /// Participants that sent nothing before the deadline.
    pub missing: Vec<String>,
    /// The global model the round started from.
    pub input_sha256: String,
    /// The aggregate.
    pub output_sha256: String,
    /// Each contributor's update hash.
    pub update_sha256: BTreeMap<String, String>,
    /// Each contributor's local training metrics.
    pub train: BTreeMap<String, Metrics>,
    /// The input model's test metrics at each contributor.
    pub input_test: BTreeMap<String, Metrics>,
    /// Each contributor's cumulative epsilon (millionths) after this round.
    pub epsilon_total_micro: BTreeMap<String, u64>,
    /// Each contributor's signed Contribution ledger entry (hex).
    pub contribution_entries: BTreeMap<String, String>,
    /// When the round opened and closed.
    pub opened_unix_ms: i64,
    /// When it was aggregated.
    pub closed_unix_ms: i64,
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
    /// Updates accepted in the open round.
    pub updates: BTreeMap<String, ReceivedUpdate>,
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

/// What a node should do next (the transport maps it to the wire).
#[derive(Clone, Debug, PartialEq)]
pub enum TaskKind {
    /// Nothing to do now.
    Wait,
    /// Review the plan.
    Review,
    /// Send feature sums.
    Statistics,
    /// Train from the global model in this round.
    Train {
        /// The open round.
        round: u32,
        /// The model to start from.
        global: Weights,
        /// Standardisation to apply.
        standardizer: Option<Standardizer>,
        /// Updates after this are refused.
        deadline_unix_ms: i64,
        /// The secure-aggregation round to mask the update in, when the plan uses one.
        secure: Option<SecureRoundParams>,
    },
    /// A step of the round's secure aggregation.
    SecureStep {
        /// The open round.
        round: u32,
        /// What to do.
        task: SecureTask,
    },
    /// Evaluate the final model.
    Evaluate {
        /// Rounds done.
        round: u32,
        /// The final model.
        model: Weights,
        /// Standardisation to apply.
        standardizer: Option<Standardizer>,
    },
    /// The plan is over.
    Finished {
        /// `completed` or `failed: ...`.
        outcome: String,
    },
}

/// An update as a node submitted it.
#[derive(Clone, Debug)]
pub struct UpdateSubmission {
    /// Round the node trained for.
    pub round: u32,
    /// The weights.
    pub weights: Weights,
    /// Training records behind it.
    pub num_samples: u64,
    /// Local training metrics.
    pub train: Metrics,
    /// Incoming global model's test metrics.
    pub global_test: Metrics,
    /// The code hash the node ran.
    pub code_hash: String,
    /// The node-signed Contribution ledger entry (hex; verified by the transport layer).
    pub contribution_entry_hex: String,
    /// Epsilon (millionths) spent on this update.
    pub epsilon_round_micro: u64,
    /// Cumulative epsilon (millionths) on the plan.
    pub epsilon_total_micro: u64,
}

/// What a node states about the update it masks under secure aggregation
/// (the coordinator never sees the weights).
#[derive(Clone, Debug)]
pub struct SecureUpdate {
    /// SHA-256 (hex) of the update's safetensors bytes: a commitment.
    pub update_sha256: String,
    /// Training rows behind it.
    pub num_samples: u64,
    /// Local training metrics.
    pub train: Metrics,
    /// Incoming global model's test metrics.
    pub global_test: Metrics,
    /// The code hash the node ran.
    pub code_hash: String,
    /// The node-signed Contribution ledger entry (hex).
    pub contribution_entry_hex: String,
    /// Epsilon (millionths) spent on this update.
    pub epsilon_round_micro: u64,
    /// Cumulative epsilon (millionths) on the plan.
    pub epsilon_total_micro: u64,
}

/// Why a message was refused. The variants map to gRPC status codes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Rejection {
    /// The message does not fit the plan's current phase or round.
    #[error("{0}")]
    OutOfPhase(String),
    /// The sender does not take part in this plan.
    #[error("{0}")]
    NotParticipant(String),
    /// The message content is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The same message was already accepted.
    #[error("{0}")]
    Duplicate(String),
}

/// Something that happened while advancing, for progress display and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanEvent {
    /// Review ended with these participants.
    Approved(Vec<String>),
    /// Standardisation computed.
    Standardized,
    /// A round was aggregated.
    RoundAggregated(Box<RoundRecord>),
    /// A phase missed its quorum and was reopened.
    Reopened {
        /// Phase reopened.
        phase: String,
        /// Attempt number now starting.
        attempt: u32,
    },
    /// A secure-aggregation step of the round opened.
    SecureStep {
        /// The round.
        round: u32,
        /// The step now expected from the parties.
        step: &'static str,
        /// Parties dropped when the previous step closed.
        dropped: Vec<String>,
    },
    /// The final evaluation is in.
    Completed,
    /// The plan failed.
    Failed(String),
}

/// Errors restoring or creating a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A stored artifact is missing.
    #[error("artifact {0} referenced by the plan state is missing")]
    MissingArtifact(String),
    /// The strategy could not be rebuilt.
    #[error("strategy: {0}")]
    Strategy(#[from] crate::strategy::AggregationError),
}

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

    /// `node` asked for a task: it is present again if it had been absent.
    /// Returns whether that changed the state.
    pub fn on_poll(&mut self, node: &str) -> bool {
        let before = self.state.absent.len();
        self.state.absent.retain(|n| n != node);
        before != self.state.absent.len()
    }

    /// Participants a phase waits for: everyone not marked absent.
    fn expected(&self) -> usize {
        self.state.participants.len() - self.state.absent.len()
    }

    /// The next task for `node`.
    pub fn task_for(&self, node: &str) -> TaskKind {
        let s = &self.state;
        match &s.phase {
            Phase::Completed => {
                return TaskKind::Finished {
                    outcome: "completed".into(),
                };
            }
            Phase::Failed { reason } => {
                return TaskKind::Finished {
                    outcome: format!("failed: {reason}"),
                };
            }
            _ => {}
        }
        if !s.plan.hospitals.iter().any(|h| h == node) {
            return TaskKind::Wait;
        }
        match s.phase {
            Phase::Review if !s.reviews.contains_key(node) => TaskKind::Review,
            Phase::Statistics if self.is_participant(node) && !s.statistics.contains_key(node) => {
                TaskKind::Statistics
            }
            Phase::Training if self.is_participant(node) => self.training_task(node),
            Phase::Evaluation
                if self.is_participant(node) && !s.final_evaluation.contains_key(node) =>
            {
                TaskKind::Evaluate {
                    round: s.round - 1,
                    model: self.global().clone(),
                    standardizer: s.standardizer.clone(),
                }
            }
            _ => TaskKind::Wait,
        }
    }

    /// A participant's task in the open round: train (and, under secure
    /// aggregation, advertise its keys), or the secure round's next step.
    fn training_task(&self, node: &str) -> TaskKind {
        let s = &self.state;
        let train = |secure: Option<SecureRoundParams>| TaskKind::Train {
            round: s.round,
            global: self.global().clone(),
            standardizer: s.standardizer.clone(),
            deadline_unix_ms: s.phase_opened_unix_ms + self.deadline_ms(),
            secure,
        };
        match (&s.plan.secure_aggregation, &self.secure) {
            (None, _) if !s.updates.contains_key(node) => train(None),
            (None, _) | (Some(_), None) => TaskKind::Wait,
            (Some(_), Some(server)) => {
                if server.step() == crate::secure_round::SecureStep::AdvertiseKeys {
                    let enrolled = server.params().participants.iter().any(|p| p == node);
                    if enrolled && !s.updates.contains_key(node) {
                        return train(Some(server.params().clone()));
                    }
                    return TaskKind::Wait;
                }
                match server.task_for(node) {
                    Some(task) => TaskKind::SecureStep {
                        round: s.round,
                        task,
                    },
                    None => TaskKind::Wait,
                }
            }
        }
    }

    /// Start the open round's secure aggregation if the plan asks for one and
    /// none is running: over the participants present, each with a fresh id.
    fn ensure_secure_round(&mut self) {
        let Some(secure) = self.state.plan.secure_aggregation else {
            return;
        };
        if self.state.phase != Phase::Training || self.secure.is_some() {
            return;
        }
        let mut present: Vec<String> = self
            .state
            .participants
            .iter()
            .filter(|p| !self.state.absent.contains(p))
            .cloned()
            .collect();
        present.sort();
        if present.is_empty() {
            return;
        }
        self.state.secure_round_id += 1;
        let topology = match secure.num_shares {
            Some(num_shares) if num_shares < present.len() => {
                // The ring order is public and fresh for every attempt.
                let id = format!("{}/{}", self.state.plan_id, self.state.secure_round_id);
                Topology::Harary {
                    num_shares,
                    seed: crate::sha256(id.as_bytes()),
                }
            }
            _ => Topology::Complete,
        };
        // On the complete graph the protocol itself stops below the plan's
        // quorum; on the sparse one the threshold is per neighbourhood and the
        // quorum is checked when the sum is known.
        let minimal = SecureRoundParams::minimal_threshold(present.len(), &topology);
        let threshold = match topology {
            Topology::Complete => minimal.max(self.state.plan.min_hospitals.min(present.len())),
            Topology::Harary { .. } => minimal,
        };
        self.state.updates.clear();
        let client_dp = self.state.plan.client_dp;
        let extra = client_dp.map_or(0, |dp| dp.extra_coordinates());
        let params = SecureRoundParams::new(
            self.state.secure_round_id,
            present,
            threshold,
            topology,
            self.global().len() + 1 + extra,
            secure.range,
        )
        .and_then(|mut params| {
            if let Some(dp) = client_dp {
                let most = dp
                    .max_clip_norm(secure.range, threshold)
                    .map_err(crate::secure_round::SecureRoundError::InvalidParams)?;
                let current = self.state.clipping.map_or(dp.clip_norm, |c| c.clip_norm());
                params.client_clip_norm = Some(current.min(most));
            }
            Ok(params)
        });
        match params.and_then(SecureRoundServer::new) {
            Ok(server) => self.secure = Some(server),
            Err(e) => {
                self.state.phase = Phase::Failed {
                    reason: format!("cannot start secure aggregation: {e}"),
                };
            }
        }
    }

    /// A message of the open round's secure aggregation. The first one from a
    /// node (its advertised keys) carries what it states about its update:
    /// sample count, metrics, privacy spent and its signed contribution entry,
    /// whose update hash commits to the weights the coordinator never sees.
    pub fn on_secure(
        &mut self,
        node: &str,
        plan_id: &str,
        round: u32,
        message: SecureMessage,
        update: Option<SecureUpdate>,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_phase(Phase::Training, "a secure-aggregation message")?;
        self.require_participant(node)?;
        if round != self.state.round {
            return Err(Rejection::OutOfPhase(format!(
                "round {round} is not open: the open round is {}",
                self.state.round
            )));
        }
        let expected_code = self.state.plan.code_hash();
        let received = match update {
            Some(u) => {
                if u.num_samples == 0 {
                    return Err(Rejection::Invalid(
                        "update claims zero training samples".into(),
                    ));
                }
                if u.code_hash != expected_code {
                    return Err(Rejection::Invalid(format!(
                        "update was produced by code {} but the plan runs {expected_code}",
                        u.code_hash
                    )));
                }
                self.check_epsilon(node, u.epsilon_round_micro, u.epsilon_total_micro)?;
                Some(ReceivedUpdate {
                    weights_sha256: u.update_sha256,
                    num_samples: u.num_samples,
                    train: u.train,
                    global_test: u.global_test,
                    contribution_entry_hex: u.contribution_entry_hex,
                    epsilon_round_micro: u.epsilon_round_micro,
                    epsilon_total_micro: u.epsilon_total_micro,
                    received_unix_ms: now,
                })
            }
            None => None,
        };
        let advertising = matches!(message, SecureMessage::AdvertiseKeys(_));
        if advertising != received.is_some() {
            return Err(Rejection::Invalid(
                "the update's statement comes with the advertised keys, and only then".into(),
            ));
        }
        let Some(server) = self.secure.as_mut() else {
            return Err(Rejection::OutOfPhase(
                "no secure aggregation is running in this round".into(),
            ));
        };
        server.receive(node, message).map_err(|e| match e {
            crate::secure_round::SecureRoundError::Duplicate { .. } => {
                Rejection::Duplicate(e.to_string())
            }
            other => Rejection::Invalid(other.to_string()),
        })?;
        if let Some(r) = received {
            self.state
                .epsilon_spent_micro
                .insert(node.to_string(), r.epsilon_total_micro);
            self.state.updates.insert(node.to_string(), r);
        }
        Ok(self.advance(now))
    }

    /// One transition of a secure round, when its step is complete or due.
    fn step_secure(&mut self, now: i64, deadline_passed: bool) -> Option<Vec<PlanEvent>> {
        let server = self.secure.as_mut()?;
        if !(server.step_complete() || deadline_passed) {
            return None;
        }
        match server.close_step() {
            Ok(StepOutcome::Advanced { step, dropped }) => {
                self.state.phase_opened_unix_ms = now;
                Some(vec![PlanEvent::SecureStep {
                    round: self.state.round,
                    step: step.name(),
                    dropped,
                }])
            }
            Ok(StepOutcome::Finished { .. }) => {
                let mut sum = server.result().cloned()?;
                self.secure = None;
                let round = self.state.round;
                let quorum = self
                    .state
                    .plan
                    .min_hospitals
                    .min(self.state.participants.len());
                if sum.contributors.len() < quorum {
                    self.state.updates.clear();
                    return self.missed_quorum(
                        format!(
                            "round {round}: {} contributions in the secure sum, fewer than {quorum}",
                            sum.contributors.len()
                        ),
                        now,
                    );
                }
                if let Some(clipping) = self.state.clipping.as_mut() {
                    let report = sum.sum.pop().map_or(f64::NAN, f64::from);
                    if let Err(e) = clipping.update(report, sum.contributors.len()) {
                        return self.fail(format!("round {round}: adaptive clipping: {e}"));
                    }
                }
                let global = self.global().clone();
                let values = match crate::secure_round::aggregate_secure_sum(
                    self.strategy.as_mut(),
                    global.values(),
                    &sum,
                ) {
                    Ok(v) => v,
                    Err(e) => return self.fail(format!("round {round}: secure aggregation: {e}")),
                };
                let mut updates = std::mem::take(&mut self.state.updates);
                updates.retain(|n, _| sum.contributors.contains(n));
                match self.finish_round(values, updates, now) {
                    Ok(record) => Some(self.after_round(record, now)),
                    Err(reason) => self.fail(reason),
                }
            }
            Err(e) => {
                self.secure = None;
                self.state.updates.clear();
                self.missed_quorum(
                    format!("round {}: secure aggregation: {e}", self.state.round),
                    now,
                )
            }
        }
    }

    fn check_plan(&self, plan_id: &str) -> Result<(), Rejection> {
        if plan_id != self.state.plan_id {
            return Err(Rejection::OutOfPhase(format!(
                "unknown plan {plan_id}; the active plan is {}",
                self.state.plan_id
            )));
        }
        Ok(())
    }

    fn require_phase(&self, phase: Phase, what: &str) -> Result<(), Rejection> {
        if self.state.phase != phase {
            return Err(Rejection::OutOfPhase(format!(
                "{what} is not expected now: the plan is in phase {:?}",
                self.state.phase
            )));
        }
        Ok(())
    }

    fn require_participant(&self, node: &str) -> Result<(), Rejection> {
        if !self.is_participant(node) {
            return Err(Rejection::NotParticipant(format!(
                "{node} does not take part in plan {}",
                self.state.plan_id
            )));
        }
        Ok(())
    }

    /// A hospital approves or declines the plan.
    pub fn on_review(
        &mut self,
        node: &str,
        plan_id: &str,
        review: Review,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_phase(Phase::Review, "a plan review")?;
        if !self.state.plan.hospitals.iter().any(|h| h == node) {
            return Err(Rejection::NotParticipant(format!(
                "{node} is not eligible for plan {plan_id}"
            )));
        }
        if self.state.reviews.contains_key(node) {
            return Err(Rejection::Duplicate(format!(
                "{node} already reviewed plan {plan_id}"
            )));
        }
        self.state.reviews.insert(node.to_string(), review);
        Ok(self.advance(now))
    }

    /// A participant's feature sums.
    pub fn on_statistics(
        &mut self,
        node: &str,
        plan_id: &str,
        stats: FeatureStats,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_phase(Phase::Statistics, "feature statistics")?;
        self.require_participant(node)?;
        if self.state.statistics.contains_key(node) {
            return Err(Rejection::Duplicate(format!(
                "{node} already sent its statistics"
            )));
        }
        let inputs = self.state.plan.model.inputs();
        if stats.sum.len() != inputs || stats.sum_sq.len() != inputs {
            return Err(Rejection::Invalid(format!(
                "statistics have {} sums and {} squared sums, the model has {inputs} inputs",
                stats.sum.len(),
                stats.sum_sq.len()
            )));
        }
        if stats.count == 0 {
            return Err(Rejection::Invalid("statistics over zero records".into()));
        }
        if !stats.sum.iter().chain(&stats.sum_sq).all(|v| v.is_finite()) {
            return Err(Rejection::Invalid(
                "statistics contain NaN or infinity".into(),
            ));
        }
        self.state.statistics.insert(node.to_string(), stats);
        Ok(self.advance(now))
    }

    /// A participant's model update for the open round.
    pub fn on_update(
        &mut self,
        node: &str,
        plan_id: &str,
        update: UpdateSubmission,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_phase(Phase::Training, "a model update")?;
        self.require_participant(node)?;
        let s = &self.state;
        if update.round != s.round {
            return Err(Rejection::OutOfPhase(format!(
                "round {} is not open: the open round is {}",
                update.round, s.round
            )));
        }
        if s.updates.contains_key(node) {
            return Err(Rejection::Duplicate(format!(
                "{node} already sent its update for round {}",
                s.round
            )));
        }
        let deadline = s.phase_opened_unix_ms + self.deadline_ms();
        if now > deadline {
            return Err(Rejection::OutOfPhase(format!(
                "round {} closed at its deadline {} ms ago",
                s.round,
                now - deadline
            )));
        }
        let expected_code = s.plan.code_hash();
        if update.code_hash != expected_code {
            return Err(Rejection::Invalid(format!(
                "update was produced by code {} but the plan runs {expected_code}",
                update.code_hash
            )));
        }
        let global = self.global();
        if !update.weights.same_layout(global) {
            return Err(Rejection::Invalid(format!(
                "update has the wrong shape: expected {}, got {}",
                describe_layout(global),
                describe_layout(&update.weights)
            )));
        }
        if !update.weights.all_finite() {
            return Err(Rejection::Invalid(
                "update contains NaN or infinite values".into(),
            ));
        }
        if update.num_samples == 0 {
            return Err(Rejection::Invalid(
                "update claims zero training samples".into(),
            ));
        }
        self.check_epsilon(node, update.epsilon_round_micro, update.epsilon_total_micro)?;
        let received = ReceivedUpdate {
            weights_sha256: self.keep(update.weights),
            num_samples: update.num_samples,
            train: update.train,
            global_test: update.global_test,
            contribution_entry_hex: update.contribution_entry_hex,
            epsilon_round_micro: update.epsilon_round_micro,
            epsilon_total_micro: update.epsilon_total_micro,
            received_unix_ms: now,
        };
        self.state
            .epsilon_spent_micro
            .insert(node.to_string(), received.epsilon_total_micro);
        self.state.updates.insert(node.to_string(), received);
        Ok(self.advance(now))
    }

    /// The privacy claims of an update: none without DP; with DP, within the
    /// plan's budget and never less than what the node reported before.
    fn check_epsilon(&self, node: &str, round: u64, total: u64) -> Result<(), Rejection> {
        match &self.state.plan.privacy_budget {
            None if total != 0 || round != 0 => Err(Rejection::Invalid(
                "update reports privacy spending but the plan has no privacy budget".into(),
            )),
            None => Ok(()),
            Some(budget) => {
                let limit = (budget.epsilon * 1e6).round() as u64;
                if total > limit {
                    return Err(Rejection::Invalid(format!(
                        "update brings {node}'s epsilon to {} over the plan's budget {}",
                        total as f64 / 1e6,
                        budget.epsilon
                    )));
                }
                let before = self
                    .state
                    .epsilon_spent_micro
                    .get(node)
                    .copied()
                    .unwrap_or(0);
                if total < before || round == 0 {
                    return Err(Rejection::Invalid(format!(
                        "update's privacy accounting is inconsistent: total epsilon {} after {}, {} this round",
                        total as f64 / 1e6,
                        before as f64 / 1e6,
                        round as f64 / 1e6
                    )));
                }
                Ok(())
            }
        }
    }

    /// A participant withdraws from the plan (e.g. its privacy budget is spent):
    /// later rounds go on without it while the quorum holds.
    pub fn on_withdraw(
        &mut self,
        node: &str,
        plan_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_participant(node)?;
        self.state.participants.retain(|p| p != node);
        self.state.absent.retain(|p| p != node);
        self.state
            .withdrawn
            .insert(node.to_string(), reason.to_string());
        let left = self.state.participants.len();
        let training = matches!(self.state.phase, Phase::Statistics | Phase::Training);
        if left < self.state.plan.min_hospitals && training {
            self.secure = None;
            return Ok(self
                .fail(format!(
                    "{node} withdrew ({reason}): {left} participants left, fewer than the plan's \
                     minimum of {}",
                    self.state.plan.min_hospitals
                ))
                .unwrap_or_default());
        }
        Ok(self.advance(now))
    }

    /// A participant's test metrics of the final model.
    pub fn on_evaluation(
        &mut self,
        node: &str,
        plan_id: &str,
        model_sha256: &str,
        metrics: Metrics,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_phase(Phase::Evaluation, "an evaluation")?;
        self.require_participant(node)?;
        if model_sha256 != self.state.global_sha256 {
            return Err(Rejection::Invalid(format!(
                "evaluation is of model {model_sha256}, the final model is {}",
                self.state.global_sha256
            )));
        }
        if self.state.final_evaluation.contains_key(node) {
            return Err(Rejection::Duplicate(format!(
                "{node} already sent its evaluation"
            )));
        }
        self.state
            .final_evaluation
            .insert(node.to_string(), metrics);
        Ok(self.advance(now))
    }

    /// Make every transition that is due at `now`.
    pub fn advance(&mut self, now: i64) -> Vec<PlanEvent> {
        let mut events = Vec::new();
        loop {
            self.ensure_secure_round();
            match self.step(now) {
                Some(mut step) => events.append(&mut step),
                None => break,
            }
        }
        events
    }

    fn open_phase(&mut self, phase: Phase, now: i64) {
        self.state.phase = phase;
        self.state.phase_opened_unix_ms = now;
        self.state.attempt = 1;
    }

    fn fail(&mut self, reason: String) -> Option<Vec<PlanEvent>> {
        self.state.phase = Phase::Failed {
            reason: reason.clone(),
        };
        Some(vec![PlanEvent::Failed(reason)])
    }

    /// Reopen the current phase after a missed quorum, or fail the plan.
    fn missed_quorum(&mut self, what: String, now: i64) -> Option<Vec<PlanEvent>> {
        if self.state.attempt >= self.state.plan.round_attempts {
            return self.fail(format!("{what} after {} attempts", self.state.attempt));
        }
        self.state.attempt += 1;
        self.state.phase_opened_unix_ms = now;
        Some(vec![PlanEvent::Reopened {
            phase: format!("{:?}", self.state.phase),
            attempt: self.state.attempt,
        }])
    }

    /// One transition, if one is due.
    fn step(&mut self, now: i64) -> Option<Vec<PlanEvent>> {
        let deadline_passed = now > self.state.phase_opened_unix_ms + self.deadline_ms();
        let min = self.state.plan.min_hospitals;
        match self.state.phase {
            Phase::Review => {
                let eligible = self.state.plan.hospitals.len();
                let approved: Vec<String> = self
                    .state
                    .reviews
                    .iter()
                    .filter(|(_, r)| r.approved)
                    .map(|(n, _)| n.clone())
                    .collect();
                let all_answered = self.state.reviews.len() == eligible;
                if !(all_answered || deadline_passed) {
                    return None;
                }
                if approved.len() < min {
                    if all_answered {
                        return self.fail(format!(
                            "only {} of {eligible} hospitals approved the plan, {min} needed",
                            approved.len()
                        ));
                    }
                    return self
                        .missed_quorum(format!("{} approvals, {min} needed", approved.len()), now);
                }
                self.state.participants = approved.clone();
                let next = if self.state.plan.standardize {
                    Phase::Statistics
                } else {
                    Phase::Training
                };
                self.open_phase(next, now);
                Some(vec![PlanEvent::Approved(approved)])
            }
            Phase::Statistics => {
                let got = self.state.statistics.len();
                if got < self.state.participants.len() && !deadline_passed {
                    return None;
                }
                if got < min {
                    return self.missed_quorum(
                        format!("statistics from {got} hospitals, {min} needed"),
                        now,
                    );
                }
                let mut total: Option<FeatureStats> = None;
                for stats in self.state.statistics.values() {
                    match &mut total {
                        None => total = Some(stats.clone()),
                        Some(t) => {
                            if let Err(e) = t.merge(stats) {
                                return self.fail(format!("statistics do not add up: {e}"));
                            }
                        }
                    }
                }
                match total.expect("at least one").standardizer() {
                    Ok(s) => self.state.standardizer = Some(s),
                    Err(e) => return self.fail(format!("cannot standardise: {e}")),
                }
                self.open_phase(Phase::Training, now);
                Some(vec![PlanEvent::Standardized])
            }
            Phase::Training if self.state.plan.secure_aggregation.is_some() => {
                self.step_secure(now, deadline_passed)
            }
            Phase::Training => {
                let got = self.state.updates.len();
                let waiting_for_present =
                    self.state.participants.iter().any(|p| {
                        !self.state.updates.contains_key(p) && !self.state.absent.contains(p)
                    });
                if (waiting_for_present || got < min) && !deadline_passed {
                    return None;
                }
                if got < min {
                    return self.missed_quorum(
                        format!(
                            "round {}: updates from {got} hospitals, {min} needed",
                            self.state.round
                        ),
                        now,
                    );
                }
                match self.aggregate(now) {
                    Ok(record) => Some(self.after_round(record, now)),
                    Err(reason) => self.fail(reason),
                }
            }
            Phase::Evaluation => {
                let got = self.state.final_evaluation.len();
                if got < self.expected() && !deadline_passed {
                    return None;
                }
                self.state.phase = Phase::Completed;
                Some(vec![PlanEvent::Completed])
            }
            Phase::Completed | Phase::Failed { .. } => None,
        }
    }

    /// Open the next round, or the evaluation after the last one.
    fn after_round(&mut self, record: RoundRecord, now: i64) -> Vec<PlanEvent> {
        if self.state.round > self.state.plan.rounds {
            self.open_phase(Phase::Evaluation, now);
        } else {
            self.state.phase_opened_unix_ms = now;
            self.state.attempt = 1;
        }
        vec![PlanEvent::RoundAggregated(Box::new(record))]
    }

    fn aggregate(&mut self, now: i64) -> Result<RoundRecord, String> {
        let round = self.state.round;
        let updates = std::mem::take(&mut self.state.updates);
        let global = self.global().clone();
        let client_updates: Vec<ClientUpdate<'_>> = updates
            .iter()
            .map(|(node, u)| ClientUpdate {
                node,
                weights: self.artifacts[&u.weights_sha256].values(),
                num_samples: u.num_samples,
            })
            .collect();
        let values = self
            .strategy
            .aggregate(global.values(), &client_updates)
            .map_err(|e| format!("round {round}: aggregation failed: {e}"))?;
        self.finish_round(values, updates, now)
    }

    /// Record a round from its aggregate `values` and the updates that made it.
    fn finish_round(
        &mut self,
        values: Vec<f32>,
        updates: BTreeMap<String, ReceivedUpdate>,
        now: i64,
    ) -> Result<RoundRecord, String> {
        let round = self.state.round;
        let global = self.global().clone();
        let next = global
            .with_values(values)
            .map_err(|e| format!("round {round}: aggregate has the wrong shape: {e}"))?;
        if !next.all_finite() {
            return Err(format!("round {round}: the aggregate is not finite"));
        }
        let output = self.keep(next);
        let state = self.strategy.state();
        if !state.is_empty() {
            let layout = state
                .iter()
                .map(|(n, v)| (n.clone(), vec![v.len()]))
                .collect();
            let values = state.into_iter().flat_map(|(_, v)| v).collect();
            let saved = Weights::new(layout, values)
                .map_err(|e| format!("round {round}: strategy state: {e}"))?;
            self.state.strategy_state_sha256 = Some(self.keep(saved));
        }
        let record = RoundRecord {
            round,
            contributors: updates
                .iter()
                .map(|(n, u)| (n.clone(), u.num_samples))
                .collect(),
            missing: self
                .state
                .participants
                .iter()
                .filter(|p| !updates.contains_key(*p))
                .cloned()
                .collect(),
            input_sha256: self.state.global_sha256.clone(),
            output_sha256: output.clone(),
            update_sha256: updates
                .iter()
                .map(|(n, u)| (n.clone(), u.weights_sha256.clone()))
                .collect(),
            train: updates.iter().map(|(n, u)| (n.clone(), u.train)).collect(),
            input_test: updates
                .iter()
                .map(|(n, u)| (n.clone(), u.global_test))
                .collect(),
            epsilon_total_micro: updates
                .iter()
                .map(|(n, u)| (n.clone(), u.epsilon_total_micro))
                .collect(),
            contribution_entries: updates
                .iter()
                .map(|(n, u)| (n.clone(), u.contribution_entry_hex.clone()))
                .collect(),
            opened_unix_ms: self.state.phase_opened_unix_ms,
            closed_unix_ms: now,
        };
        self.state.absent = record.missing.clone();
        self.state.global_sha256 = output;
        self.state.history.push(record.clone());
        self.state.round += 1;
        self.prune();
        Ok(record)
    }

    /// Drop from memory the artifacts the state no longer needs and that are
    /// already handed out for storage.
    fn prune(&mut self) {
        let keep = referenced_artifacts(&self.state);
        let unsaved = &self.unsaved;
        self.artifacts
            .retain(|sha, _| keep.contains(sha) || unsaved.contains(sha));
    }
}

/// Hashes of the artifacts a state needs in memory to continue.
pub fn referenced_artifacts(state: &PlanState) -> Vec<String> {
    let mut shas = vec![state.global_sha256.clone()];
    shas.extend(state.strategy_state_sha256.iter().cloned());
    shas.extend(state.updates.values().map(|u| u.weights_sha256.clone()));
    shas.sort();
    shas.dedup();
    shas
}

fn describe_layout(w: &Weights) -> String {
    w.layout()
        .iter()
        .map(|(n, s)| format!("{n}{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
