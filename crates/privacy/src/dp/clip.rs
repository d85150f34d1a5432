//! L2 clipping, the step that bounds each contribution's sensitivity.

use super::DpError;
use super::error::check_positive;

/// Scales a clipped vector a hair below the clip norm, so that rounding each coordinate to f32
/// (relative error at most 2^−24 each, so at most 2^−24 on the norm) cannot push it above.
const ROUNDING_MARGIN: f64 = 1.0 - 1.0 / (1u64 << 22) as f64;

/// What clipping did to one vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clipping {
    /// The L2 norm before clipping.
    pub norm: f64,
    /// Whether the vector was scaled down.
    pub clipped: bool,
}

/// The L2 norm, accumulated in f64.
pub fn l2_norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// Scales `values` down to L2 norm at most `max_norm` when it is above it.
///
/// # Errors
/// [`DpError::InvalidParameter`] for a `max_norm` that is not positive and finite;
/// [`DpError::NonFinite`] for a NaN or infinite value (then `values` is left unchanged).
pub fn clip_l2(values: &mut [f32], max_norm: f64) -> Result<Clipping, DpError> {
    check_positive("clip norm", max_norm)?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(DpError::NonFinite { index });
    }
    let norm = l2_norm(values);
    let clipped = norm > max_norm;
    if clipped {
        let scale = max_norm / norm * ROUNDING_MARGIN;
        values
            .iter_mut()
            .for_each(|v| *v = (f64::from(*v) * scale) as f32);
    }
    Ok(Clipping { norm, clipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_vectors_are_scaled_to_the_clip_norm() {
        let mut values = vec![3.0f32, 4.0];
        let clipping = clip_l2(&mut values, 1.0).unwrap();
        assert_eq!(
            clipping,
            Clipping {
                norm: 5.0,
                clipped: true
            }
        );
        assert!(l2_norm(&values) <= 1.0 && l2_norm(&values) > 0.999_99);
        assert!(
            (values[0] / values[1] - 0.75).abs() < 1e-6,
            "direction is kept"
        );
    }

    #[test]
    fn short_vectors_are_left_alone() {
        let mut values = vec![0.3f32, 0.4];
        assert!(!clip_l2(&mut values, 1.0).unwrap().clipped);
        assert_eq!(values, vec![0.3, 0.4]);
    }

    #[test]
    fn clipped_norm_never_exceeds_the_bound_after_rounding() {
        for length in [1usize, 7, 1000, 100_000] {
            let mut values: Vec<f32> = (0..length)
                .map(|i| ((i * 7919) % 1000) as f32 + 0.123)
                .collect();
            clip_l2(&mut values, 0.1).unwrap();
            assert!(
                l2_norm(&values) <= 0.1,
                "length {length}: {}",
                l2_norm(&values)
            );
        }
    }

    #[test]
    fn non_finite_values_and_bad_norms_are_refused() {
        assert_eq!(
            clip_l2(&mut [1.0, f32::NAN], 1.0),
            Err(DpError::NonFinite { index: 1 })
        );
        assert!(clip_l2(&mut [1.0], 0.0).is_err());
        assert!(clip_l2(&mut [1.0], f64::NAN).is_err());
    }
}
