//! FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
//! Algorithm 2): Adam applied on the server to the averaged client delta.
//!
//! Second moment: `v = β2 · v + (1 - β2) · Δ²`. The rest of the step
//! (`Δ`, `m`, `next = global + η · m / (√v + τ)`, initial `m = 0`, `v = τ²`,
//! no bias correction, state `m`/`v`) is shared with FedYogi and FedAdagrad
//! and documented in `fedopt.rs`.

use super::fedopt::{SERVER_OPTIMIZER_PARAMS, ServerOptimizer, server_optimizer_rule};
use super::{AggregationError, RuleSpec, any_round};

/// Command-line name.
pub(super) const NAME: &str = "fedadam";

/// Registry entry: the server optimisers' defaults (`fedopt.rs`).
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "fed_adam",
    name: NAME,
    params: SERVER_OPTIMIZER_PARAMS,
    build: |c| {
        let rule = FedAdam::new(c.real("eta"), c.real("beta1"), c.real("beta2"), c.real("tau"))?;
        Ok(Box::new(rule))
    },
    min_updates: any_round,
};

/// Server-side Adam. State: `m`, `v`.
#[derive(Clone, Debug)]
pub struct FedAdam(ServerOptimizer);

impl FedAdam {
    /// `eta > 0`, `0 <= beta1 < 1`, `0 <= beta2 < 1`, `tau > 0` (all finite).
    pub fn new(eta: f32, beta1: f32, beta2: f32, tau: f32) -> Result<Self, AggregationError> {
        ServerOptimizer::new(NAME, eta, beta1, beta2, tau).map(Self)
    }
}

server_optimizer_rule!(FedAdam, NAME, second_moment);

/// Adam: `v = β2 · v + (1 - β2) · Δ²`.
fn second_moment(beta2: f64, v: f64, delta_sq: f64) -> f64 {
    beta2 * v + (1.0 - beta2) * delta_sq
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::{moments, update};

    // Hyper-parameters chosen so every intermediate value is exact in binary:
    // η = 6, β1 = 0.5, β2 = 0.5, τ = 1 (so v starts at τ² = 1).
    fn adam() -> FedAdam {
        FedAdam::new(6.0, 0.5, 0.5, 1.0).unwrap()
    }

    const X0: [f32; 2] = [1.0, 2.0];
    // Round 1: equal samples, mean = [8, 1], so Δ1 = [7, -1].
    const R1: [[f32; 2]; 3] = [[7.0, 2.0], [8.0, 1.0], [9.0, 0.0]];
    // Round 2: samples 1 and 3 (coefficients 1/4, 3/4):
    // mean = [0.25·12.5 + 0.75·8.5, 0.25·(-2) + 0.75·(-8)] = [9.5, -6.5].
    const R2: [[f32; 2]; 2] = [[12.5, -2.0], [8.5, -8.0]];

    fn round1(adam: &mut FedAdam) -> Vec<f32> {
        let updates = [
            update("a", &R1[0], 1),
            update("b", &R1[1], 1),
            update("c", &R1[2], 1),
        ];
        adam.aggregate(&X0, &updates).unwrap()
    }

    #[test]
    fn fedadam_first_round_matches_hand_computation() {
        // Δ1 = [8, 1] - [1, 2] = [7, -1]
        // m1 = 0.5·0 + 0.5·Δ1            = [3.5, -0.5]
        // v1 = 0.5·1 + 0.5·Δ1²           = [0.5 + 24.5, 0.5 + 0.5] = [25, 1]
        // x1 = x0 + 6·m1/(√v1 + 1)       = [1 + 6·3.5/6, 2 + 6·(-0.5)/2] = [4.5, 0.5]
        let mut adam = adam();
        assert_eq!(round1(&mut adam), vec![4.5, 0.5]);
        assert_eq!(adam.state(), moments(&[3.5, -0.5], &[25.0, 1.0]));
    }

    #[test]
    fn fedadam_second_round_builds_on_the_first_rounds_moments() {
        // Δ2 = [9.5, -6.5] - [4.5, 0.5]  = [5, -7]
        // m2 = 0.5·[3.5, -0.5] + 0.5·Δ2  = [4.25, -3.75]
        // v2 = 0.5·[25, 1] + 0.5·[25, 49] = [25, 25]
        // x2 = x1 + 6·m2/(5 + 1)         = [4.5 + 4.25, 0.5 - 3.75] = [8.75, -3.25]
        let mut adam = adam();
        let x1 = round1(&mut adam);
        let updates = [update("a", &R2[0], 1), update("b", &R2[1], 3)];
        assert_eq!(adam.aggregate(&x1, &updates).unwrap(), vec![8.75, -3.25]);
        assert_eq!(adam.state(), moments(&[4.25, -3.75], &[25.0, 25.0]));
    }

    #[test]
    fn fedadam_does_not_move_when_clients_return_the_global_model() {
        // Δ = 0 → m = 0 → step 0.
        let mut adam = adam();
        let next = adam.aggregate(&X0, &[update("a", &X0, 5)]).unwrap();
        assert_eq!(next, X0.to_vec());
    }
}
