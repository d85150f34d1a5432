//! Coordinate-wise trimmed mean (Yin, Chen, Ramchandran, Bartlett,
//! "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
//! Rates", ICML 2018).
//!
//! For each coordinate, the n client values are sorted, the `k = floor(β·n)`
//! smallest and the `k` largest are dropped, and the next global value is the
//! plain (unweighted) mean of the remaining `n - 2k`, summed in `f64` in sorted
//! order. `0 <= β < 0.5`. `num_samples` and the current global values are not
//! used. The result does not depend on the order of the updates.
//!
//! Notes:
//! * With few clients `k` may be 0, and the rule is then the plain mean: with
//!   β = 0.1, nothing is trimmed below 10 clients; with β = 0.2, one value per
//!   end is trimmed from 5 clients on.
//! * `β` is an `f32`, and decimal fractions such as 0.35 or 0.45 are stored
//!   slightly *below* their decimal value (0.35 becomes 0.3499999940…), which
//!   would make `floor(0.35 · 20)` come out as 6 instead of 7. To honour the
//!   value as written, `β·n` is computed in `f64` and a product within
//!   `n · f32::EPSILON` below an integer counts as that integer.
//! * If trimming would leave nothing (only possible for β within `f32`
//!   rounding of 0.5), the round fails with
//!   [`AggregationError::NotEnoughForRule`].

use super::{
    Aggregated, AggregationError, ClientUpdate, Param, Rule, RuleSpec, any_round, finish, invalid,
};

/// Command-line name.
pub(super) const NAME: &str = "trimmed-mean";

/// Registry entry: `beta = 0.2` by default (trims one value per end from 5 clients on; 0.1
/// would trim nothing below 10 clients).
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "trimmed_mean",
    name: NAME,
    params: &[("beta", Param::Real(0.2))],
    build: |c| Ok(Box::new(TrimmedMean::new(c.real("beta"))?)),
    min_updates: any_round,
};

/// Coordinate-wise β-trimmed mean (stateless, unweighted).
#[derive(Clone, Debug)]
pub struct TrimmedMean {
    beta: f32,
}

impl TrimmedMean {
    /// `beta` = fraction trimmed at each end, `0 <= beta < 0.5`.
    pub fn new(beta: f32) -> Result<Self, AggregationError> {
        if !(0.0..0.5).contains(&beta) {
            return Err(invalid(NAME, "beta", beta, "in [0, 0.5)"));
        }
        Ok(Self { beta })
    }

    /// How many values are dropped at each end for `n` clients.
    pub fn trimmed_per_end(&self, n: usize) -> usize {
        let n = n as f64;
        let product = f64::from(self.beta) * n;
        (product + n * f64::from(f32::EPSILON)).floor() as usize
    }
}

impl Rule for TrimmedMean {
    const NAME: &'static str = NAME;

    fn combine(&mut self, global: &[f32], updates: &[ClientUpdate<'_>]) -> Aggregated {
        let n = updates.len();
        let k = self.trimmed_per_end(n);
        if 2 * k >= n {
            return Err(AggregationError::NotEnoughForRule {
                rule: NAME,
                needed: 2 * k + 1,
                got: n,
            });
        }
        let kept = (n - 2 * k) as f64;
        let mut column = Vec::with_capacity(n);
        let means = (0..global.len()).map(|j| {
            column.clear();
            column.extend(updates.iter().map(|u| u.weights[j]));
            column.sort_unstable_by(f32::total_cmp);
            column[k..n - k].iter().map(|&x| f64::from(x)).sum::<f64>() / kept
        });
        finish(NAME, means)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::update;

    fn five_clients() -> [[f32; 2]; 5] {
        [
            [1.0, 5.0],
            [2.0, -5.0],
            [3.0, 0.0],
            [4.0, 1.0],
            [100.0, 2.0],
        ]
    }

    #[test]
    fn trimmed_mean_drops_the_extremes_of_each_coordinate_independently() {
        // β = 0.2, n = 5 → k = floor(1.0) = 1 per end.
        // coord 0: 1, 2, 3, 4, 100 → keep 2, 3, 4   → 3
        // coord 1: -5, 0, 1, 2, 5  → keep 0, 1, 2   → 1
        // (the clients trimmed differ per coordinate: "e" then "a", "b")
        let w = five_clients();
        let names = ["a", "b", "c", "d", "e"];
        let updates: Vec<_> = names.iter().zip(&w).map(|(n, w)| update(n, w, 1)).collect();
        let next = TrimmedMean::new(0.2)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates)
            .unwrap();
        assert_eq!(next, vec![3.0, 1.0]);
    }

    #[test]
    fn trimmed_mean_with_beta_zero_is_the_unweighted_mean() {
        // coord 0: (1 + 2 + 3 + 4 + 100)/5 = 22 ; coord 1: (5 - 5 + 0 + 1 + 2)/5 = 0.6
        let w = five_clients();
        let names = ["a", "b", "c", "d", "e"];
        // Sample counts differ wildly and must not matter.
        let updates: Vec<_> = names
            .iter()
            .zip(&w)
            .zip(1..)
            .map(|((n, w), s)| update(n, w, s * 1000))
            .collect();
        let next = TrimmedMean::new(0.0)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates)
            .unwrap();
        assert_eq!(next, vec![22.0, 0.6]);
    }

    #[test]
    fn trimmed_mean_resists_one_outlier() {
        // β = 0.25, n = 4 → k = 1. coord 0: 1, 2, 3, 1e6 → (2 + 3)/2 = 2.5 ;
        // coord 1: -1e6, 1, 2, 3 → (1 + 2)/2 = 1.5
        let updates = [
            update("a", &[1.0, 1.0], 1),
            update("b", &[2.0, 2.0], 1),
            update("c", &[3.0, 3.0], 1),
            update("evil", &[1e6, -1e6], 1),
        ];
        let next = TrimmedMean::new(0.25)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates)
            .unwrap();
        assert_eq!(next, vec![2.5, 1.5]);
    }

    #[test]
    fn trimmed_count_is_floor_of_beta_times_n() {
        let t = TrimmedMean::new(0.2).unwrap();
        // 0.2·4 = 0.8 → 0 ; 0.2·5 = 1 → 1 ; 0.2·9 = 1.8 → 1 ; 0.2·10 = 2 → 2
        assert_eq!([4, 5, 9, 10].map(|n| t.trimmed_per_end(n)), [0, 1, 1, 2]);
        assert_eq!(TrimmedMean::new(0.1).unwrap().trimmed_per_end(9), 0);
    }

    #[test]
    fn trimmed_count_honours_decimal_betas_stored_below_their_value() {
        // 0.35f32 = 0.3499999940…, 0.45f32 = 0.4499999880…; as written:
        // 0.35·20 = 7 and 0.45·20 = 9.
        assert_eq!(TrimmedMean::new(0.35).unwrap().trimmed_per_end(20), 7);
        assert_eq!(TrimmedMean::new(0.45).unwrap().trimmed_per_end(20), 9);
    }

    #[test]
    fn trimmed_mean_fails_when_trimming_would_leave_nothing() {
        // The largest f32 below 0.5 counts as 0.5: with 2 clients k = 1 per end.
        let beta = f32::from_bits(0.5f32.to_bits() - 1);
        let updates = [update("a", &[1.0], 1), update("b", &[2.0], 1)];
        let err = TrimmedMean::new(beta)
            .unwrap()
            .aggregate(&[0.0], &updates)
            .unwrap_err();
        assert_eq!(
            err,
            AggregationError::NotEnoughForRule {
                rule: NAME,
                needed: 3,
                got: 2
            }
        );
    }

    #[test]
    fn trimmed_mean_rejects_beta_outside_zero_to_one_half() {
        for beta in [-0.01, 0.5, 0.7, f32::NAN] {
            assert!(
                matches!(
                    TrimmedMean::new(beta),
                    Err(AggregationError::InvalidParameter {
                        parameter: "beta",
                        ..
                    })
                ),
                "{beta}"
            );
        }
    }
}
