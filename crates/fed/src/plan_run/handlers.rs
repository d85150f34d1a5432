//! The messages a node sends, each checked against the plan and the open
//! phase before it changes the state.

use learn::{FeatureStats, Metrics, Weights};

use super::{Phase, PlanEvent, PlanRun, Rejection, Review};
use crate::contribution::SignedContribution;
use crate::secure_round::SecureMessage;

impl PlanRun {
    /// `node` asked for a task: it is present again if it had been absent.
    /// Returns whether that changed the state.
    pub fn on_poll(&mut self, node: &str) -> bool {
        let before = self.state.absent.len();
        self.state.absent.retain(|n| n != node);
        before != self.state.absent.len()
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

    /// The checks every contribution passes, whichever way its update
    /// travels: the open round, the code the plan runs, a positive sample
    /// count and consistent privacy accounting.
    fn admit(&self, node: &str, update: &SignedContribution) -> Result<(), Rejection> {
        let c = &update.contribution;
        let s = &self.state;
        if c.round != s.round {
            return Err(Rejection::OutOfPhase(format!(
                "round {} is not open: the open round is {}",
                c.round, s.round
            )));
        }
        if s.updates.contains_key(node) {
            return Err(Rejection::Duplicate(format!(
                "{node} already sent its update for round {}",
                s.round
            )));
        }
        let expected_code = s.plan.code_hash();
        if c.code_hash != expected_code {
            return Err(Rejection::Invalid(format!(
                "update was produced by code {} but the plan runs {expected_code}",
                c.code_hash
            )));
        }
        if c.num_samples == 0 {
            return Err(Rejection::Invalid(
                "update claims zero training samples".into(),
            ));
        }
        self.check_epsilon(node, c.epsilon_round_micro, c.epsilon_total_micro)
    }

    /// Record an admitted contribution of the open round.
    fn accept(&mut self, node: &str, update: SignedContribution) {
        self.state
            .epsilon_spent_micro
            .insert(node.to_string(), update.contribution.epsilon_total_micro);
        self.state.updates.insert(node.to_string(), update);
    }

    /// A participant's model update for the open round, with the weights
    /// (plans without secure aggregation).
    pub fn on_update(
        &mut self,
        node: &str,
        plan_id: &str,
        update: SignedContribution,
        weights: Weights,
        now: i64,
    ) -> Result<Vec<PlanEvent>, Rejection> {
        self.check_plan(plan_id)?;
        self.require_phase(Phase::Training, "a model update")?;
        self.require_participant(node)?;
        if self.state.plan.secure_aggregation.is_some() {
            return Err(Rejection::Invalid(
                "this plan aggregates securely: updates come masked, through the secure round"
                    .into(),
            ));
        }
        self.admit(node, &update)?;
        let s = &self.state;
        let deadline = s.phase_opened_unix_ms + self.deadline_ms();
        if now > deadline {
            return Err(Rejection::OutOfPhase(format!(
                "round {} closed at its deadline {} ms ago",
                s.round,
                now - deadline
            )));
        }
        let global = self.global();
        if !weights.same_layout(global) {
            return Err(Rejection::Invalid(format!(
                "update has the wrong shape: expected {}, got {}",
                describe_layout(global),
                describe_layout(&weights)
            )));
        }
        if !weights.all_finite() {
            return Err(Rejection::Invalid(
                "update contains NaN or infinite values".into(),
            ));
        }
        let sha = weights.sha256_hex();
        if sha != update.contribution.update_sha256 {
            return Err(Rejection::Invalid(format!(
                "the weights hash to {sha} but the contribution states {}",
                update.contribution.update_sha256
            )));
        }
        self.keep(weights);
        self.accept(node, update);
        Ok(self.advance(now))
    }

    /// A message of the open round's secure aggregation. The first one from a
    /// node (its advertised keys) carries its contribution: sample count,
    /// metrics, privacy spent and its signed entry, whose update hash commits
    /// to the weights the coordinator never sees.
    pub fn on_secure(
        &mut self,
        node: &str,
        plan_id: &str,
        round: u32,
        message: SecureMessage,
        update: Option<SignedContribution>,
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
        let advertising = matches!(message, SecureMessage::AdvertiseKeys(_));
        if advertising != update.is_some() {
            return Err(Rejection::Invalid(
                "the update's statement comes with the advertised keys, and only then".into(),
            ));
        }
        if let Some(u) = &update {
            self.admit(node, u)?;
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
        if let Some(u) = update {
            self.accept(node, u);
        }
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
}

fn describe_layout(w: &Weights) -> String {
    w.layout()
        .iter()
        .map(|(n, s)| format!("{n}{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
