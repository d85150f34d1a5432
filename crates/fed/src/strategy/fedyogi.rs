//! FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
//! Algorithm 2): Yogi applied on the server to the averaged client delta.
//!
//! Second moment: `v = v - (1 - β2) · Δ² · sign(v - Δ²)`, with `sign(0) = 0`
//! (so `v` is left unchanged when `v = Δ²`; note that Rust's `f64::signum`
//! would give `+1` there, which is why a three-way sign is used). Unlike Adam,
//! `v` moves by an additive amount that does not depend on the size of `v`,
//! so it grows and shrinks more gradually. The rest of the step (`Δ`, `m`,
//! `next = global + η · m / (√v + τ)`, initial `m = 0`, `v = τ²`, no bias
//! correction, state `m`/`v`) is shared and documented in `fedopt.rs`.

use super::fedopt::{SERVER_OPTIMIZER_PARAMS, ServerOptimizer, server_optimizer_rule};
use super::{AggregationError, RuleSpec, any_round};

/// Command-line name.
pub(super) const NAME: &str = "fedyogi";

/// Registry entry: the server optimisers' defaults (`fedopt.rs`).
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "fed_yogi",
    name: NAME,
    params: SERVER_OPTIMIZER_PARAMS,
    build: |c| {
        let rule = FedYogi::new(c.real("eta"), c.real("beta1"), c.real("beta2"), c.real("tau"))?;
        Ok(Box::new(rule))
    },
    min_updates: any_round,
};

/// Server-side Yogi. State: `m`, `v`.
#[derive(Clone, Debug)]
pub struct FedYogi(ServerOptimizer);

impl FedYogi {
    /// `eta > 0`, `0 <= beta1 < 1`, `0 <= beta2 < 1`, `tau > 0` (all finite).
    pub fn new(eta: f32, beta1: f32, beta2: f32, tau: f32) -> Result<Self, AggregationError> {
        ServerOptimizer::new(NAME, eta, beta1, beta2, tau).map(Self)
    }
}

/// `-1`, `0` or `+1` (zero maps to zero).
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

server_optimizer_rule!(FedYogi, NAME, second_moment);

/// Yogi: `v = v - (1 - β2) · Δ² · sign(v - Δ²)`.
fn second_moment(beta2: f64, v: f64, delta_sq: f64) -> f64 {
    v - (1.0 - beta2) * delta_sq * sign(v - delta_sq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::{moments, update};

    // Hyper-parameters chosen so every intermediate value is exact in binary:
    // η = 5, β1 = 0.5, β2 = 0.5, τ = 0.75 (so v starts at τ² = 0.5625).
    fn yogi() -> FedYogi {
        FedYogi::new(5.0, 0.5, 0.5, 0.75).unwrap()
    }

    const X0: [f32; 2] = [-1.0, 1.0];
    // Round 1: equal samples, mean = [2, 0.25], so Δ1 = [3, -0.75].
    const R1: [[f32; 2]; 2] = [[1.0, 0.5], [3.0, 0.0]];
    // Round 2: equal samples, mean = [3.5, -3.25].
    const R2: [[f32; 2]; 3] = [[2.5, -2.25], [3.5, -3.25], [4.5, -4.25]];

    fn round1(yogi: &mut FedYogi) -> Vec<f32> {
        let updates = [update("a", &R1[0], 4), update("b", &R1[1], 4)];
        yogi.aggregate(&X0, &updates).unwrap()
    }

    #[test]
    fn fedyogi_first_round_matches_hand_computation() {
        // Δ1 = [2, 0.25] - [-1, 1] = [3, -0.75];  Δ1² = [9, 0.5625]
        // coord 0: v0 - Δ² = 0.5625 - 9 < 0 → sign -1 → v1 = 0.5625 + 0.5·9 = 5.0625 (√ = 2.25)
        // coord 1: v0 - Δ² = 0 → sign 0 → v1 = 0.5625 unchanged              (√ = 0.75)
        // m1 = 0.5·Δ1 = [1.5, -0.375]
        // x1 = x0 + 5·m1/(√v1 + 0.75) = [-1 + 5·1.5/3, 1 + 5·(-0.375)/1.5] = [1.5, -0.25]
        let mut yogi = yogi();
        assert_eq!(round1(&mut yogi), vec![1.5, -0.25]);
        assert_eq!(yogi.state(), moments(&[1.5, -0.375], &[5.0625, 0.5625]));
    }

    #[test]
    fn fedyogi_second_round_can_shrink_v_additively() {
        // Δ2 = [3.5, -3.25] - [1.5, -0.25] = [2, -3];  Δ2² = [4, 9]
        // coord 0: 5.0625 - 4 > 0 → sign +1 → v2 = 5.0625 - 0.5·4 = 3.0625 (√ = 1.75)
        // coord 1: 0.5625 - 9 < 0 → sign -1 → v2 = 0.5625 + 0.5·9 = 5.0625 (√ = 2.25)
        // m2 = 0.5·[1.5, -0.375] + 0.5·[2, -3] = [1.75, -1.6875]
        // x2 = x1 + 5·m2/(√v2 + 0.75) = [1.5 + 8.75/2.5, -0.25 - 8.4375/3] = [5, -3.0625]
        let mut yogi = yogi();
        let x1 = round1(&mut yogi);
        let updates = [
            update("a", &R2[0], 2),
            update("b", &R2[1], 2),
            update("c", &R2[2], 2),
        ];
        assert_eq!(yogi.aggregate(&x1, &updates).unwrap(), vec![5.0, -3.0625]);
        assert_eq!(yogi.state(), moments(&[1.75, -1.6875], &[3.0625, 5.0625]));
    }

    #[test]
    fn yogi_sign_of_zero_is_zero() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-0.0), 0.0);
        assert_eq!(sign(2.5), 1.0);
        assert_eq!(sign(-1e-300), -1.0);
    }
}
