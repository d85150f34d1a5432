//! Errors of the differential-privacy mechanisms.

/// Why a mechanism refused its input.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DpError {
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
    /// A value to privatise is NaN or infinite.
    #[error("value at index {index} is not finite")]
    NonFinite {
        /// Its position.
        index: usize,
    },
    /// A slice has the wrong length.
    #[error("{what} has length {got}, expected {expected}")]
    WrongLength {
        /// What was measured.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The actual length.
        got: usize,
    },
}

/// Checks that `value` is finite and positive.
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<(), DpError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(DpError::InvalidParameter {
            name,
            value,
            expected: "a finite number above 0",
        })
    }
}

/// Checks that `value` is finite and not negative.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<(), DpError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(DpError::InvalidParameter {
            name,
            value,
            expected: "a finite number, at least 0",
        })
    }
}
