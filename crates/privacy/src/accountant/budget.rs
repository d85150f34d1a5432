//! A privacy budget that refuses the step that would exceed it.

use serde::{Deserialize, Serialize};

use super::conversion::{EpsilonBound, check_delta};
use super::{AccountantError, RdpAccountant, SampledGaussian};

/// An (ε, δ) budget, e.g. one per training plan and hospital, enforced by the node.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivacyBudget {
    /// The most ε that may be spent.
    pub epsilon_limit: f64,
    /// The δ at which ε is measured.
    pub delta: f64,
}

impl PrivacyBudget {
    /// Checks the budget.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] for a negative or non-finite ε limit, or δ outside
    /// (0, 1).
    pub fn validate(&self) -> Result<(), AccountantError> {
        if !(self.epsilon_limit.is_finite() && self.epsilon_limit >= 0.0) {
            return Err(AccountantError::InvalidParameter {
                name: "epsilon limit",
                value: self.epsilon_limit,
                expected: "a finite number, at least 0",
            });
        }
        check_delta(self.delta)
    }

    /// What `accountant` has spent, at this budget's δ.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] for an invalid budget.
    pub fn spent(&self, accountant: &RdpAccountant) -> Result<EpsilonBound, AccountantError> {
        self.validate()?;
        accountant.epsilon(self.delta)
    }

    /// Whether composing `step` onto `accountant` would take ε over the limit.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] for an invalid budget or step.
    pub fn would_exceed(
        &self,
        accountant: &RdpAccountant,
        step: &SampledGaussian,
    ) -> Result<bool, AccountantError> {
        let mut after = accountant.clone();
        after.compose(step)?;
        Ok(self.spent(&after)?.epsilon > self.epsilon_limit)
    }

    /// Composes `step` onto `accountant` if the budget allows it, and returns the new total.
    ///
    /// # Errors
    /// [`AccountantError::BudgetExceeded`] (and `accountant` is left unchanged) when the step
    /// would exceed the limit; [`AccountantError::InvalidParameter`] for an invalid budget or
    /// step.
    pub fn charge(
        &self,
        accountant: &mut RdpAccountant,
        step: &SampledGaussian,
    ) -> Result<EpsilonBound, AccountantError> {
        let mut after = accountant.clone();
        after.compose(step)?;
        let bound = self.spent(&after)?;
        if bound.epsilon > self.epsilon_limit {
            return Err(AccountantError::BudgetExceeded {
                epsilon: bound.epsilon,
                limit: self.epsilon_limit,
                delta: self.delta,
            });
        }
        *accountant = after;
        Ok(bound)
    }
}
