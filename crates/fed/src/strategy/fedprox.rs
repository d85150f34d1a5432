//! FedProx (Li et al., "Federated Optimization in Heterogeneous Networks",
//! MLSys 2020).
//!
//! FedProx changes the *client* objective, not the server: each client
//! minimises `F_k(w) + (mu / 2) · ||w - w_global||²`, which keeps local models
//! close to the global one on heterogeneous (non-IID) data. Clients obtain
//! `mu` from [`StrategyConfig::proximal_mu`](super::StrategyConfig::proximal_mu).
//! On the server this rule aggregates exactly like [`FedAvg`](super::fedavg::FedAvg)
//! (sample-weighted mean, see `fedavg.rs`); it only reports its own name. With
//! `mu = 0` it is FedAvg.

use super::{
    Aggregated, AggregationError, ClientUpdate, Param, RoundInput, Rule, RuleSpec, any_round,
    finish, invalid, weighted_mean,
};

/// Command-line name.
pub(super) const NAME: &str = "fedprox";

/// Registry entry: `mu = 0.01` by default (one of the values explored by Li et al. 2020).
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "fed_prox",
    name: NAME,
    params: &[("mu", Param::Real(0.01))],
    build: |c| Ok(Box::new(FedProx::new(c.real("mu"))?)),
    min_updates: any_round,
};

/// FedAvg on the server; carries the clients' proximal coefficient `mu`.
#[derive(Clone, Debug)]
pub struct FedProx {
    mu: f32,
}

impl FedProx {
    /// `mu` must be finite and `>= 0`.
    pub fn new(mu: f32) -> Result<Self, AggregationError> {
        if !(mu.is_finite() && mu >= 0.0) {
            return Err(invalid(NAME, "mu", mu, "finite and >= 0"));
        }
        Ok(Self { mu })
    }

    /// The proximal coefficient clients use.
    pub fn mu(&self) -> f32 {
        self.mu
    }
}

impl Rule for FedProx {
    const NAME: &'static str = NAME;

    /// FedAvg's computation, under FedProx's name.
    fn combine(&mut self, _global: &[f32], updates: &[ClientUpdate<'_>]) -> Aggregated {
        finish(NAME, weighted_mean(updates)?)
    }

    const INPUT: RoundInput = RoundInput::WeightedMean;

    fn combine_mean(&mut self, _global: &[f32], mean: Vec<f64>) -> Aggregated {
        finish(NAME, mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::update;

    #[test]
    fn fedprox_server_side_is_the_sample_weighted_mean() {
        // coefficients 1/4, 3/4: 0.25·1 + 0.75·3 = 2.5 ; 0.25·2 + 0.75·4 = 3.5
        let updates = [update("a", &[1.0, 2.0], 1), update("b", &[3.0, 4.0], 3)];
        let next = FedProx::new(0.5)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates)
            .unwrap();
        assert_eq!(next, vec![2.5, 3.5]);
    }

    #[test]
    fn fedprox_rejects_negative_or_non_finite_mu() {
        for mu in [-0.1, f32::NAN, f32::INFINITY] {
            let err = FedProx::new(mu).unwrap_err();
            assert!(
                matches!(
                    err,
                    AggregationError::InvalidParameter {
                        parameter: "mu",
                        ..
                    }
                ),
                "{mu}: {err}"
            );
        }
    }

    #[test]
    fn fedprox_accepts_zero_mu() {
        assert_eq!(FedProx::new(0.0).unwrap().mu(), 0.0);
    }
}
