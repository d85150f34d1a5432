//! FedAvg — Federated Averaging (McMahan et al., "Communication-Efficient
//! Learning of Deep Networks from Decentralized Data", AISTATS 2017).
//!
//! The next global model is the sample-weighted mean of the client models:
//! `w = Σ_k (n_k / n) · w_k` with `n = Σ_k n_k`. The current global vector is
//! not used (beyond its length). Coefficients `n_k / n` and the sum are
//! computed in `f64`, accumulating clients in the order given (sorted by node
//! name), then rounded to `f32` once. A round whose sample counts sum to zero
//! is an error ([`AggregationError::ZeroSamples`]); an individual client with
//! zero samples simply gets weight zero.

use super::{
    Aggregated, ClientUpdate, RoundInput, Rule, RuleSpec, any_round, finish, weighted_mean,
};

/// Command-line name.
pub(super) const NAME: &str = "fedavg";

/// Registry entry: no hyper-parameters.
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "fed_avg",
    name: NAME,
    params: &[],
    build: |_| Ok(Box::new(FedAvg::new())),
    min_updates: any_round,
};

/// Sample-weighted mean of the client weights (stateless).
#[derive(Clone, Debug, Default)]
pub struct FedAvg;

impl FedAvg {
    pub fn new() -> Self {
        Self
    }
}

impl Rule for FedAvg {
    const NAME: &'static str = NAME;

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
    use crate::strategy::AggregationError;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::{bits, update};

    #[test]
    fn fedavg_weights_clients_by_their_sample_counts() {
        // a: n=1, b: n=1, c: n=2 → total 4, coefficients 1/4, 1/4, 1/2.
        // coord 0: 0/4 + 3/4 + 6/2 = 0 + 0.75 + 3   = 3.75
        // coord 1: 6/4 + 0/4 + 3/2 = 1.5 + 0 + 1.5  = 3.0
        let updates = [
            update("a", &[0.0, 6.0], 1),
            update("b", &[3.0, 0.0], 1),
            update("c", &[6.0, 3.0], 2),
        ];
        let next = FedAvg::new().aggregate(&[0.0, 0.0], &updates).unwrap();
        assert_eq!(next, vec![3.75, 3.0]);
    }

    #[test]
    fn fedavg_with_equal_samples_is_the_plain_mean() {
        // (1 + 2 + 6) / 3 = 3 ; (-3 + 0 + 0) / 3 = -1
        let updates = [
            update("a", &[1.0, -3.0], 7),
            update("b", &[2.0, 0.0], 7),
            update("c", &[6.0, 0.0], 7),
        ];
        let next = FedAvg::new().aggregate(&[9.0, 9.0], &updates).unwrap();
        assert_eq!(next, vec![3.0, -1.0]);
    }

    #[test]
    fn fedavg_ignores_the_current_global_values() {
        let updates = [update("a", &[1.0, 2.0], 1), update("b", &[3.0, 4.0], 3)];
        // 1/4·1 + 3/4·3 = 2.5 ; 1/4·2 + 3/4·4 = 3.5, whatever the global was.
        let from_zero = FedAvg::new().aggregate(&[0.0, 0.0], &updates).unwrap();
        let from_other = FedAvg::new().aggregate(&[-7.0, 100.0], &updates).unwrap();
        assert_eq!(from_zero, vec![2.5, 3.5]);
        assert_eq!(from_other, from_zero);
    }

    #[test]
    fn fedavg_gives_a_zero_sample_client_no_weight() {
        let updates = [update("a", &[1.0], 0), update("b", &[5.0], 2)];
        let next = FedAvg::new().aggregate(&[0.0], &updates).unwrap();
        assert_eq!(next, vec![5.0]);
    }

    #[test]
    fn fedavg_rejects_a_round_with_zero_total_samples() {
        let updates = [update("a", &[1.0], 0), update("b", &[5.0], 0)];
        let err = FedAvg::new().aggregate(&[0.0], &updates).unwrap_err();
        assert_eq!(err, AggregationError::ZeroSamples);
    }

    #[test]
    fn fedavg_is_bit_identical_across_runs() {
        let a = [0.1f32, 1e-7, 3.3333];
        let b = [0.2f32, -2e-7, 1.0 / 3.0];
        let c = [0.7f32, 5e-8, 2.0 / 7.0];
        let updates = [
            update("a", &a, 13),
            update("b", &b, 29),
            update("c", &c, 71),
        ];
        let first = FedAvg::new().aggregate(&[0.0; 3], &updates).unwrap();
        let second = FedAvg::new().aggregate(&[0.0; 3], &updates).unwrap();
        assert_eq!(bits(&first), bits(&second));
    }
}
