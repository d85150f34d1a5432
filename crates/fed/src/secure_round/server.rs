//! The coordinator's side of a secure round.

use std::collections::{BTreeMap, BTreeSet};

use privacy::secagg::{ClientId, SecAggError, SecAggServer};
use serde::{Deserialize, Serialize};

use super::{
    SecureMessage, SecureRoundError, SecureRoundParams, SecureStep, SecureSum, SecureTask,
};
use privacy::secagg::Quantizer;

/// What closing a step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    /// The round moved on to `step`; [`SecureRoundServer::task_for`] now gives its tasks.
    Advanced {
        /// The new current step.
        step: SecureStep,
        /// The parties that did not answer the closed step: they take no further part.
        dropped: Vec<String>,
    },
    /// The round is finished; [`SecureRoundServer::result`] gives the sum.
    Finished {
        /// The parties whose input is in the sum.
        contributors: Vec<String>,
        /// The survivors that did not answer the unmasking request (their input is still in
        /// the sum: the others' shares removed their masks).
        dropped: Vec<String>,
    },
}

/// The coordinator's state machine for one secure round attempt. It does no I/O and reads no
/// clock: the caller decides when a step's deadline has passed and calls
/// [`close_step`](Self::close_step).
///
/// Each step: [`task_for`](Self::task_for) gives every live party its task;
/// [`receive`](Self::receive) takes their answers (a refused message changes nothing);
/// when [`step_complete`](Self::step_complete) or at the deadline,
/// [`close_step`](Self::close_step) moves on if at least `threshold` parties answered, and
/// otherwise fails the round, revealing nothing. After the unmasking step,
/// [`result`](Self::result) gives the sum of the contributors' vectors.
///
/// The server only ever holds public keys, encrypted shares, the running sum of masked
/// inputs and revealed shares: never a party's input in the clear.
pub struct SecureRoundServer {
    params: SecureRoundParams,
    quantizer: Quantizer,
    secagg: SecAggServer,
    step: SecureStep,
    /// Each live party's task at the current step (the parties expected to answer it).
    tasks: BTreeMap<String, SecureTask>,
    /// The parties that answered the current step.
    answered: BTreeSet<String>,
    result: Option<SecureSum>,
    failure: Option<SecureRoundError>,
}

impl std::fmt::Debug for SecureRoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureRoundServer")
            .field("round_id", &self.params.round_id)
            .field("participants", &self.params.participants.len())
            .field("step", &self.step)
            .field("expected", &self.tasks.len())
            .field("answered", &self.answered.len())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl SecureRoundServer {
    /// The server of a round with `params`, at step [`SecureStep::AdvertiseKeys`] with every
    /// participant expected.
    ///
    /// # Errors
    /// [`SecureRoundError::InvalidParams`] when the parameters are invalid.
    pub fn new(params: SecureRoundParams) -> Result<SecureRoundServer, SecureRoundError> {
        params.validate()?;
        let quantizer = params.quantizer()?;
        let secagg = SecAggServer::new(params.round_config())
            .map_err(|e| SecureRoundError::InvalidParams(e.to_string()))?;
        let task = SecureTask::AdvertiseKeys {
            params: params.clone(),
        };
        let tasks = params
            .participants
            .iter()
            .map(|party| (party.clone(), task.clone()))
            .collect();
        Ok(SecureRoundServer {
            params,
            quantizer,
            secagg,
            step: SecureStep::AdvertiseKeys,
            tasks,
            answered: BTreeSet::new(),
            result: None,
            failure: None,
        })
    }

    /// The round's parameters.
    pub fn params(&self) -> &SecureRoundParams {
        &self.params
    }

    /// The current step.
    pub fn step(&self) -> SecureStep {
        self.step
    }

    /// Why the round failed, once it has.
    pub fn failure(&self) -> Option<&SecureRoundError> {
        self.failure.as_ref()
    }

    /// The parties expected to answer the current step (those that have not dropped out).
    pub fn live_parties(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }

    /// The live parties that have not yet answered the current step.
    pub fn waiting_for(&self) -> Vec<String> {
        self.tasks
            .keys()
            .filter(|party| !self.answered.contains(*party))
            .cloned()
            .collect()
    }

    /// Whether every live party answered the current step (false once finished or failed).
    pub fn step_complete(&self) -> bool {
        self.is_collecting() && self.answered.len() == self.tasks.len()
    }

    fn is_collecting(&self) -> bool {
        !matches!(self.step, SecureStep::Finished | SecureStep::Failed)
    }

    /// What `party` must do now; `None` when it already answered the current step, dropped
    /// out earlier, is not a participant, or the round is over.
    pub fn task_for(&self, party: &str) -> Option<SecureTask> {
        if self.answered.contains(party) {
            return None;
        }
        self.tasks.get(party).cloned()
    }

    fn closed_error(&self) -> SecureRoundError {
        match &self.failure {
            Some(failure) => SecureRoundError::RoundFailed {
                reason: failure.to_string(),
            },
            None => SecureRoundError::RoundFinished,
        }
    }

    /// Takes `party`'s answer to the current step. `party` is the sender as the transport
    /// authenticated it; the message must name that party's client id and this round.
    ///
    /// # Errors
    /// Refuses (and otherwise ignores) a message from a party that is not a participant
    /// ([`UnknownParty`](SecureRoundError::UnknownParty)), for another step
    /// ([`WrongStep`](SecureRoundError::WrongStep)), from a party that dropped out earlier
    /// ([`NotInStep`](SecureRoundError::NotInStep)), a second answer
    /// ([`Duplicate`](SecureRoundError::Duplicate)), a message claiming another sender or round,
    /// a masked input of the wrong length ([`Malformed`](SecureRoundError::Malformed)), or one
    /// the protocol refuses ([`Refused`](SecureRoundError::Refused)). Once the round is over:
    /// [`RoundFinished`](SecureRoundError::RoundFinished) or
    /// [`RoundFailed`](SecureRoundError::RoundFailed).
    pub fn receive(&mut self, party: &str, message: SecureMessage) -> Result<(), SecureRoundError> {
        let Some(id) = self.params.client_id(party) else {
            return Err(SecureRoundError::UnknownParty {
                party: party.to_owned(),
            });
        };
        if !self.is_collecting() {
            return Err(self.closed_error());
        }
        if message.step() != self.step {
            return Err(SecureRoundError::WrongStep {
                party: party.to_owned(),
                message: message.step(),
                step: self.step,
            });
        }
        if !self.tasks.contains_key(party) {
            return Err(SecureRoundError::NotInStep {
                party: party.to_owned(),
                step: self.step,
            });
        }
        if self.answered.contains(party) {
            return Err(SecureRoundError::Duplicate {
                party: party.to_owned(),
                step: self.step,
            });
        }
        self.check_header(party, id, &message)?;
        let refused = |source: SecAggError| SecureRoundError::Refused {
            party: party.to_owned(),
            source,
        };
        match message {
            SecureMessage::AdvertiseKeys(m) => self.secagg.receive_keys(m),
            SecureMessage::ShareKeys(m) => self.secagg.receive_shares(m),
            SecureMessage::MaskedInput(m) => self.secagg.receive_masked_input(m),
            SecureMessage::Unmasking(m) => self.secagg.receive_unmasking(m),
        }
        .map_err(refused)?;
        self.answered.insert(party.to_owned());
        Ok(())
    }

    fn check_header(
        &self,
        party: &str,
        id: ClientId,
        message: &SecureMessage,
    ) -> Result<(), SecureRoundError> {
        if message.sender() != id {
            return Err(SecureRoundError::SenderMismatch {
                party: party.to_owned(),
                claimed: message.sender(),
                expected: id,
            });
        }
        if message.round_id() != self.params.round_id {
            return Err(SecureRoundError::WrongRound {
                party: party.to_owned(),
                expected: self.params.round_id,
                got: message.round_id(),
            });
        }
        if let SecureMessage::MaskedInput(input) = message
            && input.words.len() != self.params.vector_len
        {
            return Err(SecureRoundError::Malformed {
                party: party.to_owned(),
                reason: format!(
                    "masked input has {} words, expected {}",
                    input.words.len(),
                    self.params.vector_len
                ),
            });
        }
        Ok(())
    }

    /// Closes the current step, when every live party answered or at the caller's deadline:
    /// the parties that did not answer are dropped, and the round moves on to the next step
    /// (or finishes) if at least `threshold` answered.
    ///
    /// # Errors
    /// [`TooFewParties`](SecureRoundError::TooFewParties) when fewer than the threshold
    /// answered (or, at unmasking, some secret has fewer than the threshold of shares), and
    /// [`RoundFailed`](SecureRoundError::RoundFailed) when the revealed shares are inconsistent:
    /// the round has then failed, reveals nothing and accepts nothing more. When the round is
    /// already over: [`RoundFinished`](SecureRoundError::RoundFinished) or
    /// [`RoundFailed`](SecureRoundError::RoundFailed).
    pub fn close_step(&mut self) -> Result<StepOutcome, SecureRoundError> {
        let dropped = self.waiting_for();
        let closed = self.step;
        let next: Result<(SecureStep, BTreeMap<String, SecureTask>), SecAggError> = match closed {
            SecureStep::AdvertiseKeys => self.secagg.key_directories().map(|directories| {
                let tasks = directories
                    .into_iter()
                    .filter_map(|directory| {
                        let party = self.params.party(directory.recipient)?.to_owned();
                        Some((party, SecureTask::ShareKeys { directory }))
                    })
                    .collect();
                (SecureStep::ShareKeys, tasks)
            }),
            SecureStep::ShareKeys => self.secagg.share_deliveries().map(|deliveries| {
                let tasks = deliveries
                    .into_iter()
                    .filter_map(|delivery| {
                        let party = self.params.party(delivery.recipient)?.to_owned();
                        Some((party, SecureTask::MaskInput { delivery }))
                    })
                    .collect();
                (SecureStep::MaskedInput, tasks)
            }),
            SecureStep::MaskedInput => self.secagg.unmasking_request().map(|request| {
                let tasks = request
                    .survivors
                    .iter()
                    .filter_map(|&id| {
                        let party = self.params.party(id)?.to_owned();
                        let task = SecureTask::Unmask {
                            request: request.clone(),
                        };
                        Some((party, task))
                    })
                    .collect();
                (SecureStep::Unmasking, tasks)
            }),
            SecureStep::Unmasking => match self.secagg.finish() {
                Ok(outcome) => {
                    let contributors: Vec<String> = outcome
                        .contributors
                        .iter()
                        .filter_map(|&id| self.params.party(id).map(str::to_owned))
                        .collect();
                    let sum = self.quantizer.dequantize_sum(&outcome.sum);
                    self.result = Some(SecureSum {
                        sum,
                        contributors: contributors.clone(),
                    });
                    self.step = SecureStep::Finished;
                    self.tasks.clear();
                    self.answered.clear();
                    return Ok(StepOutcome::Finished {
                        contributors,
                        dropped,
                    });
                }
                Err(error) => Err(error),
            },
            SecureStep::Finished | SecureStep::Failed => return Err(self.closed_error()),
        };
        match next {
            Ok((step, tasks)) => {
                self.step = step;
                self.tasks = tasks;
                self.answered.clear();
                Ok(StepOutcome::Advanced { step, dropped })
            }
            Err(error) => Err(self.fail(closed, error)),
        }
    }

    fn fail(&mut self, step: SecureStep, error: SecAggError) -> SecureRoundError {
        let failure = match error {
            SecAggError::TooFewClients {
                available,
                threshold,
                ..
            } => SecureRoundError::TooFewParties {
                step,
                available,
                threshold,
            },
            other => SecureRoundError::RoundFailed {
                reason: format!("step '{step}' could not be closed: {other}"),
            },
        };
        self.step = SecureStep::Failed;
        self.tasks.clear();
        self.answered.clear();
        self.failure = Some(failure.clone());
        failure
    }

    /// The sum and its contributors, once the round is finished; `None` before and after a
    /// failure.
    pub fn result(&self) -> Option<&SecureSum> {
        self.result.as_ref()
    }
}
