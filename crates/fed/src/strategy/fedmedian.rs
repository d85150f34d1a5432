//! FedMedian — coordinate-wise median (Yin, Chen, Ramchandran, Bartlett,
//! "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
//! Rates", ICML 2018).
//!
//! Each coordinate of the next global model is the median of that coordinate
//! over the clients; with an even number of clients it is the mean of the two
//! middle values (computed in `f64`, rounded once). The rule is unweighted:
//! `num_samples` is ignored, so a client cannot buy influence by claiming many
//! samples, and fewer than half of the clients cannot drag a coordinate
//! outside the range of the honest values. The current global vector is not
//! used (beyond its length). Values are sorted with a total order, so the
//! result does not depend on the order of the updates.

use super::{Aggregated, ClientUpdate, Rule, RuleSpec, any_round, finish};

/// Command-line name.
pub(super) const NAME: &str = "fedmedian";

/// Registry entry: no hyper-parameters.
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "fed_median",
    name: NAME,
    params: &[],
    build: |_| Ok(Box::new(FedMedian::new())),
    min_updates: any_round,
};

/// Coordinate-wise median (stateless, unweighted).
#[derive(Clone, Debug, Default)]
pub struct FedMedian;

impl FedMedian {
    pub fn new() -> Self {
        Self
    }
}

/// Median of a sorted, non-empty slice (mean of the middle pair when even).
fn median_of_sorted(sorted: &[f32]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        f64::from(sorted[n / 2])
    } else {
        (f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0
    }
}

impl Rule for FedMedian {
    const NAME: &'static str = NAME;

    fn combine(&mut self, global: &[f32], updates: &[ClientUpdate<'_>]) -> Aggregated {
        let mut column = Vec::with_capacity(updates.len());
        let medians = (0..global.len()).map(|j| {
            column.clear();
            column.extend(updates.iter().map(|u| u.weights[j]));
            column.sort_unstable_by(f32::total_cmp);
            median_of_sorted(&column)
        });
        finish(NAME, medians)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::update;

    #[test]
    fn fedmedian_takes_the_middle_value_per_coordinate() {
        // coord 0: {1, 3, 2} sorted 1, 2, 3 → 2
        // coord 1: {10, -2, 4} sorted -2, 4, 10 → 4
        let updates = [
            update("a", &[1.0, 10.0], 1),
            update("b", &[3.0, -2.0], 1),
            update("c", &[2.0, 4.0], 1),
        ];
        let next = FedMedian::new().aggregate(&[0.0, 0.0], &updates).unwrap();
        assert_eq!(next, vec![2.0, 4.0]);
    }

    #[test]
    fn fedmedian_of_an_even_count_is_the_mean_of_the_middle_pair() {
        // coord 0: 1, 2, 3, 10 → (2 + 3)/2 = 2.5
        // coord 1: -2, 0, 4, 10 → (0 + 4)/2 = 2
        let updates = [
            update("a", &[1.0, 10.0], 1),
            update("b", &[3.0, -2.0], 1),
            update("c", &[2.0, 4.0], 1),
            update("d", &[10.0, 0.0], 1),
        ];
        let next = FedMedian::new().aggregate(&[0.0, 0.0], &updates).unwrap();
        assert_eq!(next, vec![2.5, 2.0]);
    }

    #[test]
    fn fedmedian_ignores_sample_counts() {
        // Same as the 3-client case above, but "a" claims a million samples.
        let updates = [
            update("a", &[1.0, 10.0], 1_000_000),
            update("b", &[3.0, -2.0], 1),
            update("c", &[2.0, 4.0], 1),
        ];
        let next = FedMedian::new().aggregate(&[0.0, 0.0], &updates).unwrap();
        assert_eq!(next, vec![2.0, 4.0]);
    }

    #[test]
    fn fedmedian_resists_one_outlier() {
        // coord 0: 1, 2, 1e6 → 2 ; coord 1: -1e6, 1, 2 → 1
        let updates = [
            update("a", &[1.0, 1.0], 1),
            update("b", &[2.0, 2.0], 1),
            update("evil", &[1e6, -1e6], 1),
        ];
        let next = FedMedian::new().aggregate(&[0.0, 0.0], &updates).unwrap();
        assert_eq!(next, vec![2.0, 1.0]);
    }

    #[test]
    fn fedmedian_of_a_single_client_is_that_client() {
        let next = FedMedian::new()
            .aggregate(&[0.0, 0.0], &[update("a", &[0.1, -7.5], 3)])
            .unwrap();
        assert_eq!(next, vec![0.1, -7.5]);
    }
}
