//! Phase stepping: every transition that is due, the tasks each phase hands
//! out, and the record of a finished round.

use std::collections::BTreeMap;

use learn::{FeatureStats, Weights};

use super::{Phase, PlanEvent, PlanRun, RoundRecord, TaskKind, referenced_artifacts};
use crate::contribution::SignedContribution;
use crate::secure_round::SecureRoundParams;
use crate::strategy::ClientUpdate;

impl PlanRun {
    /// Participants a phase waits for: everyone not marked absent.
    pub(super) fn expected(&self) -> usize {
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
    pub(super) fn training_task(&self, node: &str) -> TaskKind {
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

    pub(super) fn open_phase(&mut self, phase: Phase, now: i64) {
        self.state.phase = phase;
        self.state.phase_opened_unix_ms = now;
        self.state.attempt = 1;
    }

    pub(super) fn fail(&mut self, reason: String) -> Option<Vec<PlanEvent>> {
        self.state.phase = Phase::Failed {
            reason: reason.clone(),
        };
        Some(vec![PlanEvent::Failed(reason)])
    }

    /// Reopen the current phase after a missed quorum, or fail the plan.
    pub(super) fn missed_quorum(&mut self, what: String, now: i64) -> Option<Vec<PlanEvent>> {
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
    pub(super) fn step(&mut self, now: i64) -> Option<Vec<PlanEvent>> {
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
    pub(super) fn after_round(&mut self, record: RoundRecord, now: i64) -> Vec<PlanEvent> {
        if self.state.round > self.state.plan.rounds {
            self.open_phase(Phase::Evaluation, now);
        } else {
            self.state.phase_opened_unix_ms = now;
            self.state.attempt = 1;
        }
        vec![PlanEvent::RoundAggregated(Box::new(record))]
    }

    pub(super) fn aggregate(&mut self, now: i64) -> Result<RoundRecord, String> {
        let round = self.state.round;
        let updates = std::mem::take(&mut self.state.updates);
        let global = self.global().clone();
        let client_updates: Vec<ClientUpdate<'_>> = updates
            .iter()
            .map(|(node, u)| ClientUpdate {
                node,
                weights: self.artifacts[&u.contribution.update_sha256].values(),
                num_samples: u.contribution.num_samples,
            })
            .collect();
        let values = self
            .strategy
            .aggregate(global.values(), &client_updates)
            .map_err(|e| format!("round {round}: aggregation failed: {e}"))?;
        let expected = self.state.participants.clone();
        self.finish_round(values, updates, &expected, now)
    }

    /// Record a round from its aggregate `values` and the contributions that made it; the
    /// round could take updates from the participants `expected`.
    pub(super) fn finish_round(
        &mut self,
        values: Vec<f32>,
        contributions: BTreeMap<String, SignedContribution>,
        expected: &[String],
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
        let missing = self
            .state
            .participants
            .iter()
            .filter(|p| !contributions.contains_key(*p))
            .cloned()
            .collect();
        let record = RoundRecord {
            round,
            contributions,
            missing,
            input_sha256: self.state.global_sha256.clone(),
            output_sha256: output.clone(),
            opened_unix_ms: self.state.phase_opened_unix_ms,
            closed_unix_ms: now,
        };
        // Absent from now on: who the round expected and did not hear from, and who is still
        // absent. A node left out of a secure round because it was absent when the round
        // opened, and that has asked for a task since, is present for the next.
        self.state.absent = record
            .missing
            .iter()
            .filter(|p| expected.contains(p) || self.state.absent.contains(p))
            .cloned()
            .collect();
        self.state.global_sha256 = output;
        self.state.history.push(record.clone());
        self.state.round += 1;
        self.prune();
        Ok(record)
    }

    /// Drop from memory the artifacts the state no longer needs and that are
    /// already handed out for storage.
    pub(super) fn prune(&mut self) {
        let keep = referenced_artifacts(&self.state);
        let unsaved = &self.unsaved;
        self.artifacts
            .retain(|sha, _| keep.contains(sha) || unsaved.contains(sha));
    }
}
