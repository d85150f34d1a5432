//! Per-example gradients of the cross-entropy, for DP-SGD's per-example clipping.
//!
//! candle's autograd only gives the gradient of a scalar, i.e. of the whole batch. DP-SGD must
//! clip every example's gradient on its own, so the backward pass is written out here, batched
//! over the rows: for a layer with input `h` `[rows, in]` and output error `delta`
//! `[rows, out]` (the derivative of each row's loss with respect to that row's pre-activation),
//! row `i`'s weight gradient is the outer product `delta_i h_iᵀ` and its bias gradient is
//! `delta_i`; the error moves back a layer as `(delta W) ⊙ relu'(pre)`. Logistic regression is
//! the one-layer case, whose gradient is the closed form `(sigmoid(z_i) − y_i) [x_i, 1]`.

use candle_core::{DType, Tensor};

use crate::Error;
use crate::metrics::logit_loss;
use crate::model::dense;

/// The gradient of every row's own loss at the parameters `params` (weight, bias, weight, bias,
/// ... in layout order) on the batch `x` `[rows, inputs]` with labels `y`: row-major, one row
/// of `Σ params' sizes` values per example, in the flat parameter order of [`crate::Weights`].
/// Also returns the summed loss of the rows.
///
/// ReLU's derivative at exactly 0 is taken as 1, as candle's autograd does, so the rows' sum
/// equals the batch gradient that autograd computes.
pub(crate) fn per_example_gradients(
    params: &[Tensor],
    x: &Tensor,
    y: &[f32],
) -> Result<(Vec<f32>, f64), Error> {
    let rows = y.len();
    let layers = params.len() / 2;
    // Forward, keeping every layer's input and pre-activation.
    let mut inputs = Vec::with_capacity(layers);
    let mut pre = Vec::with_capacity(layers);
    let mut h = x.clone();
    for (i, layer) in params.chunks_exact(2).enumerate() {
        let z = dense(&h, &layer[0], &layer[1])?;
        inputs.push(h);
        h = if i + 1 < layers { z.relu()? } else { z.clone() };
        pre.push(z);
    }
    let logits: Vec<f32> = h.flatten_all()?.to_vec1()?;
    let mut loss = 0f64;
    let residual: Vec<f32> = logits
        .iter()
        .zip(y)
        .map(|(&zi, &yi)| {
            loss += logit_loss(zi, yi);
            sigmoid(zi) - yi
        })
        .collect();
    // Backward: d loss_i / d z_i = sigmoid(z_i) - y_i for the output logit.
    let mut delta = Tensor::from_vec(residual, (rows, 1), x.device())?;
    let mut blocks = Vec::with_capacity(params.len());
    for l in (0..layers).rev() {
        let w = &params[2 * l];
        let (fan_out, fan_in) = w.dims2()?;
        let weight = delta
            .unsqueeze(2)?
            .broadcast_mul(&inputs[l].unsqueeze(1)?)?
            .reshape((rows, fan_out * fan_in))?;
        blocks.push(delta.clone());
        blocks.push(weight);
        if l > 0 {
            // As in `dense`: no matmul for a one-output layer.
            let back = if fan_out == 1 {
                delta.broadcast_mul(w)?
            } else {
                delta.matmul(w)?
            };
            let gate = pre[l - 1].ge(0f32)?.to_dtype(DType::F32)?;
            delta = back.mul(&gate)?;
        }
    }
    blocks.reverse();
    let all = Tensor::cat(&blocks, 1)?;
    Ok((all.flatten_all()?.to_vec1()?, loss))
}

/// Logistic sigmoid.
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}
