//! Arithmetic on logarithms, for sums of terms far below or above the f64 range.

/// ln(e^a + e^b).
pub(crate) fn log_add(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

/// ln(erfc(x)), accurate also where erfc(x) underflows (x > 26): there the asymptotic series
/// erfc(x) ≈ e^(−x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + 105/(16x⁸)) is used.
pub(crate) fn log_erfc(x: f64) -> f64 {
    if x < 26.0 {
        return libm::erfc(x).ln();
    }
    let inverse_square = 1.0 / (x * x);
    let series = 1.0
        + inverse_square
            * (-0.5
                + inverse_square * (0.75 + inverse_square * (-1.875 + inverse_square * 6.5625)));
    -x * x - (x * std::f64::consts::PI.sqrt()).ln() + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_add_adds_in_linear_space() {
        let (a, b) = (3.0f64, 1.5f64);
        assert!((log_add(a, b) - (a.exp() + b.exp()).ln()).abs() < 1e-12);
        assert!((log_add(-800.0, -800.0) - (-800.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_add(f64::NEG_INFINITY, 2.0), 2.0);
    }

    #[test]
    fn log_erfc_is_continuous_where_the_asymptotic_series_takes_over() {
        let below = libm::erfc(25.999_999).ln();
        let above = log_erfc(26.0);
        assert!((below - above).abs() < 1e-3, "{below} vs {above}");
        assert!(log_erfc(40.0).is_finite());
        assert!((log_erfc(-3.0) - libm::erfc(-3.0).ln()).abs() < 1e-15);
    }
}
