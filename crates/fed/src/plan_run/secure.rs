//! The secure round: a SecAgg+ aggregation per training round attempt,
//! its tasks, its messages and its closing into the next global model.

use super::{Phase, PlanEvent, PlanRun};
use crate::secure_round::{SecureRoundParams, SecureRoundServer, StepOutcome, Topology};

impl PlanRun {
    /// Start the open round's secure aggregation if the plan asks for one and
    /// none is running: over the participants present, each with a fresh id.
    pub(super) fn ensure_secure_round(&mut self) {
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

    /// One transition of a secure round, when its step is complete or due.
    pub(super) fn step_secure(
        &mut self,
        now: i64,
        deadline_passed: bool,
    ) -> Option<Vec<PlanEvent>> {
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
                let expected = server.params().participants.clone();
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
                match self.finish_round(values, updates, &expected, now) {
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
}
