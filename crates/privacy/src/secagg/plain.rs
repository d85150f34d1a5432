//! The plain (unmasked) quantised aggregation, for comparison with the secure round: quantise
//! each input, add the words in Z_2^32, dequantise. It gives exactly what a secure round over
//! the same inputs gives.

use super::{Quantizer, SecAggError};

/// Sum of `inputs` through quantisation, without masks.
///
/// # Errors
/// [`SecAggError::WrongLength`] when the inputs differ in length;
/// [`SecAggError::NonFiniteInput`] for a NaN or infinite value.
pub fn plain_sum(quantizer: &Quantizer, inputs: &[&[f32]]) -> Result<Vec<f32>, SecAggError> {
    let Some(first) = inputs.first() else {
        return Ok(Vec::new());
    };
    let mut sum = vec![0u32; first.len()];
    for input in inputs {
        if input.len() != sum.len() {
            return Err(SecAggError::WrongLength {
                what: "input",
                expected: sum.len(),
                got: input.len(),
            });
        }
        let words = quantizer.quantize(input)?.words;
        sum.iter_mut()
            .zip(&words)
            .for_each(|(acc, &w)| *acc = acc.wrapping_add(w));
    }
    Ok(quantizer.dequantize_sum(&sum))
}
