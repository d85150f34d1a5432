//! Fixed-point quantisation of real vectors into Z_2^32, the group the masks live in.
//!
//! A value x is clipped to [−R, R] and mapped to round(x·s) as a two's-complement 32-bit word.
//! The scale s = ((2^31 − 1)/n − 1/2) / R is the largest for which the sum of n clipped values
//! (n = `max_clients`) stays within (−2^31, 2^31): the wrapping sum of n words, read back as a
//! signed integer, is then the exact integer sum, and dequantising divides by s.
//!
//! Error bound: for values inside [−R, R], each quantised value is within 1/(2s) of the true
//! one, so a dequantised sum of m ≤ n contributions is within m/(2s) of the true sum (for
//! R = 1 and n = 10, s ≈ 2.1·10^8 and the bound is 2.3·10^−8 per coordinate). Values outside
//! [−R, R] are clipped (and counted); more than n contributions can overflow.

use serde::{Deserialize, Serialize};

use super::SecAggError;

/// A quantiser for sums of at most `max_clients` vectors with coordinates in [−range, range].
/// Serialises as its range and client count (checked again, and the scale recomputed, on
/// loading).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "QuantizerParameters", into = "QuantizerParameters")]
pub struct Quantizer {
    range: f64,
    max_clients: u32,
    scale: f64,
}

/// The serialised form of a [`Quantizer`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct QuantizerParameters {
    range: f64,
    max_clients: u32,
}

impl TryFrom<QuantizerParameters> for Quantizer {
    type Error = SecAggError;

    fn try_from(parameters: QuantizerParameters) -> Result<Self, Self::Error> {
        Quantizer::new(parameters.range, parameters.max_clients)
    }
}

impl From<Quantizer> for QuantizerParameters {
    fn from(quantizer: Quantizer) -> Self {
        QuantizerParameters {
            range: quantizer.range,
            max_clients: quantizer.max_clients,
        }
    }
}

/// A quantised vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantized {
    /// The words, ready to be masked.
    pub words: Vec<u32>,
    /// How many values lay outside [−R, R] and were clipped.
    pub clipped: usize,
}

impl Quantizer {
    /// A quantiser for coordinates in [−`range`, `range`] and at most `max_clients` summands.
    ///
    /// # Errors
    /// [`SecAggError::InvalidConfig`] when `range` is not positive and finite or `max_clients`
    /// is zero or 2^31 or more.
    pub fn new(range: f64, max_clients: u32) -> Result<Quantizer, SecAggError> {
        if !(range.is_finite() && range > 0.0) {
            return Err(SecAggError::InvalidConfig(format!(
                "quantisation range {range} must be positive"
            )));
        }
        if max_clients == 0 || max_clients >= 1 << 31 {
            return Err(SecAggError::InvalidConfig(format!(
                "max_clients {max_clients} must be in 1..2^31"
            )));
        }
        let scale = (f64::from(i32::MAX) / f64::from(max_clients) - 0.5) / range;
        Ok(Quantizer {
            range,
            max_clients,
            scale,
        })
    }

    /// The clipping range R.
    pub fn range(&self) -> f64 {
        self.range
    }

    /// The most summands the quantiser was sized for.
    pub fn max_clients(&self) -> u32 {
        self.max_clients
    }

    /// The scale s (quantisation steps per unit).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The largest error of a dequantised sum of `contributors` in-range vectors, per
    /// coordinate: contributors / (2s).
    pub fn sum_error_bound(&self, contributors: usize) -> f64 {
        contributors as f64 / (2.0 * self.scale)
    }

    /// Clips and quantises `values`.
    ///
    /// # Errors
    /// [`SecAggError::NonFiniteInput`] for a NaN or infinite value.
    pub fn quantize(&self, values: &[f32]) -> Result<Quantized, SecAggError> {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(SecAggError::NonFiniteInput { index });
        }
        let range = self.range;
        let clipped = values.iter().filter(|v| f64::from(v.abs()) > range).count();
        let words = values
            .iter()
            .map(|&v| {
                let scaled = f64::from(v).clamp(-range, range) * self.scale;
                // Round half away from zero; |scaled| < 2^31, so the cast is exact.
                (scaled + 0.5f64.copysign(scaled)) as i32 as u32
            })
            .collect();
        Ok(Quantized { words, clipped })
    }

    /// Reads a wrapping sum of words as signed integers and divides by the scale.
    pub fn dequantize_sum(&self, words: &[u32]) -> Vec<f32> {
        let inverse = 1.0 / self.scale;
        words
            .iter()
            .map(|&w| (f64::from(w as i32) * inverse) as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_of_n_clients_sum_without_overflow() {
        let quantizer = Quantizer::new(2.5, 7).unwrap();
        for extreme in [2.5f32, -2.5] {
            let words = quantizer.quantize(&[extreme]).unwrap().words;
            let sum = (0..7).fold(0u32, |acc, _| acc.wrapping_add(words[0]));
            let back = quantizer.dequantize_sum(&[sum])[0];
            assert!((f64::from(back) - 7.0 * f64::from(extreme)).abs() < 1e-5);
        }
    }

    #[test]
    fn out_of_range_values_are_clipped_and_counted() {
        let quantizer = Quantizer::new(1.0, 2).unwrap();
        let quantized = quantizer.quantize(&[3.0, -0.5, -9.0]).unwrap();
        assert_eq!(quantized.clipped, 2);
        let back = quantizer.dequantize_sum(&quantized.words);
        assert!((back[0] - 1.0).abs() < 1e-6 && (back[2] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn non_finite_values_are_refused() {
        let quantizer = Quantizer::new(1.0, 2).unwrap();
        assert_eq!(
            quantizer.quantize(&[0.0, f32::NAN]),
            Err(SecAggError::NonFiniteInput { index: 1 })
        );
    }

    #[test]
    fn serialised_quantizer_is_checked_on_loading() {
        let quantizer = Quantizer::new(2.0, 5).unwrap();
        let json = serde_json::to_string(&quantizer).unwrap();
        assert_eq!(serde_json::from_str::<Quantizer>(&json).unwrap(), quantizer);
        assert!(serde_json::from_str::<Quantizer>(r#"{"range":-1.0,"max_clients":5}"#).is_err());
    }

    #[test]
    fn degenerate_parameters_are_refused() {
        assert!(Quantizer::new(0.0, 3).is_err());
        assert!(Quantizer::new(f64::INFINITY, 3).is_err());
        assert!(Quantizer::new(1.0, 0).is_err());
    }
}
