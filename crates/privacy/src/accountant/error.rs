//! Errors of the privacy accountant.

/// Why an accounting request was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AccountantError {
    /// A parameter is out of its domain.
    #[error("{name} = {value} is invalid: expected {expected}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
        /// Its domain.
        expected: &'static str,
    },
    /// RDP values and orders do not match (a corrupted saved accountant).
    #[error("{orders} orders but {values} RDP values")]
    MismatchedOrders {
        /// Number of orders.
        orders: usize,
        /// Number of RDP values.
        values: usize,
    },
    /// The step would take the spent epsilon over the budget; nothing was charged.
    #[error(
        "privacy budget exceeded: epsilon would be {epsilon}, limit is {limit} (delta {delta})"
    )]
    BudgetExceeded {
        /// Epsilon after the refused step.
        epsilon: f64,
        /// The budget's epsilon limit.
        limit: f64,
        /// The budget's delta.
        delta: f64,
    },
}
