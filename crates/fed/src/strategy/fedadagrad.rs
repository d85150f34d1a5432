//! FedAdagrad (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
//! Algorithm 2): Adagrad applied on the server to the averaged client delta.
//!
//! Second moment: `v = v + Δ²` (a running sum, so the effective step only
//! shrinks).
//!
//! Choice: no momentum. Algorithm 2 writes the momentum update
//! `m = β1 · m + (1 - β1) · Δ` for all three optimisers, but
//! its configuration has no
//! `beta1`: this rule fixes `β1 = 0`, so `m = Δ` each round, which is
//! classical Adagrad. `m` is still kept in the persisted state (as the last
//! `Δ`) so that all three optimisers share one state layout. There is no `β2`
//! either (the shared core is given 0, which `v = v + Δ²` ignores). The rest
//! of the step (`Δ`, `next = global + η · m / (√v + τ)`, initial `v = τ²`, no
//! bias correction) is shared and documented in `fedopt.rs`.

use super::fedopt::{DEFAULT_ETA, DEFAULT_TAU, ServerOptimizer, server_optimizer_rule};
use super::{AggregationError, Param, RuleSpec, any_round};

/// Command-line name.
pub(super) const NAME: &str = "fedadagrad";

/// Registry entry: `eta` and `tau` with the server optimisers' defaults (`fedopt.rs`).
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "fed_adagrad",
    name: NAME,
    params: &[("eta", Param::Real(DEFAULT_ETA)), ("tau", Param::Real(DEFAULT_TAU))],
    build: |c| Ok(Box::new(FedAdagrad::new(c.real("eta"), c.real("tau"))?)),
    min_updates: any_round,
};

/// Server-side Adagrad without momentum. State: `m` (= last Δ), `v`.
#[derive(Clone, Debug)]
pub struct FedAdagrad(ServerOptimizer);

impl FedAdagrad {
    /// `eta > 0`, `tau > 0` (both finite).
    pub fn new(eta: f32, tau: f32) -> Result<Self, AggregationError> {
        // β1 = 0: no momentum; β2: none (ignored by the update below).
        ServerOptimizer::new(NAME, eta, 0.0, 0.0, tau).map(Self)
    }
}

server_optimizer_rule!(FedAdagrad, NAME, second_moment);

/// Adagrad: `v = v + Δ²` (there is no `β2`).
fn second_moment(_beta2: f64, v: f64, delta_sq: f64) -> f64 {
    v + delta_sq
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::{moments, update};

    // Hyper-parameters chosen so every intermediate value is exact in binary:
    // η = 2, τ = 0.75 (so v starts at τ² = 0.5625; 0.75² + 1² = 1.25²).
    fn adagrad() -> FedAdagrad {
        FedAdagrad::new(2.0, 0.75).unwrap()
    }

    const X0: [f32; 2] = [1.0, -1.0];
    // Round 1: equal samples, mean = [2, -1], so Δ1 = [1, 0].
    const R1: [[f32; 2]; 2] = [[1.5, -1.5], [2.5, -0.5]];
    // Round 2: samples 1 and 3 (coefficients 1/4, 3/4):
    // mean = [0.25·2 + 0.75·6, 0.25·3 + 0.75·(-1)] = [5, 0].
    const R2: [[f32; 2]; 2] = [[2.0, 3.0], [6.0, -1.0]];

    fn round1(adagrad: &mut FedAdagrad) -> Vec<f32> {
        let updates = [update("a", &R1[0], 10), update("b", &R1[1], 10)];
        adagrad.aggregate(&X0, &updates).unwrap()
    }

    #[test]
    fn fedadagrad_first_round_matches_hand_computation() {
        // Δ1 = [2, -1] - [1, -1] = [1, 0]
        // v1 = 0.5625 + Δ1² = [1.5625, 0.5625]       (√ = [1.25, 0.75])
        // m1 = Δ1 = [1, 0]                            (no momentum)
        // x1 = x0 + 2·m1/(√v1 + 0.75) = [1 + 2·1/2, -1 + 0] = [2, -1]
        let mut adagrad = adagrad();
        assert_eq!(round1(&mut adagrad), vec![2.0, -1.0]);
        assert_eq!(adagrad.state(), moments(&[1.0, 0.0], &[1.5625, 0.5625]));
    }

    #[test]
    fn fedadagrad_second_round_accumulates_squared_deltas_without_momentum() {
        // Δ2 = [5, 0] - [2, -1] = [3, 1]
        // v2 = [1.5625 + 9, 0.5625 + 1] = [10.5625, 1.5625]   (√ = [3.25, 1.25])
        // m2 = Δ2 = [3, 1]   (with momentum it would also carry Δ1 = [1, 0])
        // x2 = x1 + 2·m2/(√v2 + 0.75) = [2 + 6/4, -1 + 2/2] = [3.5, 0]
        let mut adagrad = adagrad();
        let x1 = round1(&mut adagrad);
        let updates = [update("a", &R2[0], 1), update("b", &R2[1], 3)];
        assert_eq!(adagrad.aggregate(&x1, &updates).unwrap(), vec![3.5, 0.0]);
        assert_eq!(adagrad.state(), moments(&[3.0, 1.0], &[10.5625, 1.5625]));
    }

    #[test]
    fn fedadagrad_rejects_bad_hyper_parameters() {
        assert!(matches!(
            FedAdagrad::new(0.0, 1e-3),
            Err(AggregationError::InvalidParameter {
                parameter: "eta",
                ..
            })
        ));
        assert!(matches!(
            FedAdagrad::new(0.1, 0.0),
            Err(AggregationError::InvalidParameter {
                parameter: "tau",
                ..
            })
        ));
    }
}
