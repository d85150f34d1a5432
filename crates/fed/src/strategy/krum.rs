//! Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine
//! Learning with Adversaries: Byzantine Tolerant Gradient Descent",
//! NeurIPS 2017).
//!
//! With n updates of which up to f may be Byzantine, each update i gets the
//! score `s(i) = Σ ||w_i - w_j||²` over the `n - f - 2` updates j closest to
//! it (squared Euclidean distance, `j ≠ i`). Krum returns the update with the
//! lowest score; Multi-Krum returns the unweighted mean of the m lowest-scoring
//! updates (m = 1 is classic Krum).
//!
//! Details:
//! * Requires `n >= 2f + 3` (the paper's `2f + 2 < n`), else
//!   [`AggregationError::NotEnoughForRule`].
//! * Also requires `m <= n - f` (our choice: selecting more than `n - f`
//!   updates would necessarily admit some that the rule assumes may be
//!   Byzantine); so `needed = max(2f + 3, m + f)`.
//! * The paper scores gradients; applying it to model weights is equivalent,
//!   since all clients start from the same global vector g:
//!   `||w_i - w_j|| = ||(w_i - g) - (w_j - g)||`, and the mean of selected
//!   weights is g plus the mean of the selected deltas.
//! * Distances and scores are computed in `f64` (each distance summed over
//!   coordinates in order, each score summing the closest distances in
//!   ascending order). Equal scores are broken by position (the earlier
//!   update, i.e. the smaller node name, wins). The selected updates are
//!   averaged in their original order.
//! * Unweighted: `num_samples` is ignored. The current global values are not
//!   used. Cost: O(n² · d) time, O(n²) extra memory.

use super::{Aggregated, AggregationError, ClientUpdate, Param, Rule, RuleSpec, finish, invalid};

/// Command-line name.
pub(super) const NAME: &str = "krum";

/// Registry entry: classic Krum by default (`byzantine = 1, multi = 1`; needs at least 5
/// clients).
pub(super) const SPEC: RuleSpec = RuleSpec {
    tag: "krum",
    name: NAME,
    params: &[("byzantine", Param::Count(1)), ("multi", Param::Count(1))],
    build: |c| Ok(Box::new(Krum::new(c.count("byzantine"), c.count("multi"))?)),
    min_updates: |c| min_updates(c.count("byzantine"), c.count("multi")),
};

/// Fewest updates Krum is defined on: `max(2f + 3, m + f)`.
fn min_updates(byzantine: usize, multi: usize) -> usize {
    byzantine
        .saturating_mul(2)
        .saturating_add(3)
        .max(multi.saturating_add(byzantine))
}

/// (Multi-)Krum (stateless, unweighted).
#[derive(Clone, Debug)]
pub struct Krum {
    byzantine: usize,
    multi: usize,
}

impl Krum {
    /// `byzantine` = f, the number of clients assumed Byzantine (may be 0);
    /// `multi` = m >= 1, how many lowest-scoring updates are averaged.
    pub fn new(byzantine: usize, multi: usize) -> Result<Self, AggregationError> {
        if multi == 0 {
            return Err(invalid(NAME, "multi", multi, ">= 1"));
        }
        Ok(Self { byzantine, multi })
    }

    /// Minimum number of updates per round: `max(2f + 3, m + f)`.
    pub fn min_updates(&self) -> usize {
        min_updates(self.byzantine, self.multi)
    }

    /// Krum score of every update (see the module documentation).
    fn scores(&self, updates: &[ClientUpdate<'_>]) -> Vec<f64> {
        let n = updates.len();
        let mut distance = vec![0.0f64; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let d: f64 = updates[i]
                    .weights
                    .iter()
                    .zip(updates[j].weights)
                    .map(|(&a, &b)| {
                        let diff = f64::from(a) - f64::from(b);
                        diff * diff
                    })
                    .sum();
                distance[i * n + j] = d;
                distance[j * n + i] = d;
            }
        }
        let closest = n - self.byzantine - 2;
        let mut row = Vec::with_capacity(n - 1);
        (0..n)
            .map(|i| {
                row.clear();
                row.extend((0..n).filter(|&j| j != i).map(|j| distance[i * n + j]));
                row.sort_unstable_by(f64::total_cmp);
                row[..closest].iter().sum()
            })
            .collect()
    }
}

impl Rule for Krum {
    const NAME: &'static str = NAME;

    fn combine(&mut self, global: &[f32], updates: &[ClientUpdate<'_>]) -> Aggregated {
        let needed = self.min_updates();
        if updates.len() < needed {
            return Err(AggregationError::NotEnoughForRule {
                rule: NAME,
                needed,
                got: updates.len(),
            });
        }
        let scores = self.scores(updates);
        let mut ranking: Vec<usize> = (0..updates.len()).collect();
        // Stable sort: equal scores keep their original (node name) order.
        ranking.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut selected = ranking[..self.multi].to_vec();
        selected.sort_unstable();

        let mut acc = vec![0.0f64; global.len()];
        for &i in &selected {
            for (a, &w) in acc.iter_mut().zip(updates[i].weights) {
                *a += f64::from(w);
            }
        }
        let m = self.multi as f64;
        finish(NAME, acc.into_iter().map(|a| a / m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::test_support::update;

    // n = 5, f = 1 → each score sums the n - f - 2 = 2 smallest distances.
    //   a = [0, 0], b = [1, 0], c = [0, 2], d = [3, 3], e = [100, 100]
    // Squared distances:
    //   ab = 1      ac = 4      ad = 9+9 = 18        ae = 100²+100² = 20000
    //   bc = 1+4=5  bd = 4+9=13 be = 99²+100² = 19801
    //   cd = 9+1=10             ce = 100²+98² = 19604
    //                           de = 97²+97²  = 18818
    // Scores (two smallest):
    //   a: {1, 4, 18, 20000}         → 1 + 4   = 5
    //   b: {1, 5, 13, 19801}         → 1 + 5   = 6
    //   c: {4, 5, 10, 19604}         → 4 + 5   = 9
    //   d: {18, 13, 10, 18818}       → 10 + 13 = 23
    //   e: {20000, 19801, 19604, 18818} → 18818 + 19604 = 38422
    // Ranking: a, b, c, d, e.
    const W: [[f32; 2]; 5] = [
        [0.0, 0.0],
        [1.0, 0.0],
        [0.0, 2.0],
        [3.0, 3.0],
        [100.0, 100.0],
    ];
    const NODES: [&str; 5] = ["a", "b", "c", "d", "e"];

    fn updates() -> Vec<ClientUpdate<'static>> {
        NODES.iter().zip(&W).map(|(n, w)| update(n, w, 1)).collect()
    }

    #[test]
    fn krum_scores_match_hand_computation() {
        let scores = Krum::new(1, 1).unwrap().scores(&updates());
        assert_eq!(scores, vec![5.0, 6.0, 9.0, 23.0, 38422.0]);
    }

    #[test]
    fn krum_returns_the_lowest_scoring_update() {
        let next = Krum::new(1, 1)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates())
            .unwrap();
        assert_eq!(next, vec![0.0, 0.0]); // a
    }

    #[test]
    fn multi_krum_averages_the_m_lowest_scoring_updates() {
        // m = 2: a, b → [(0 + 1)/2, (0 + 0)/2] = [0.5, 0]
        let next = Krum::new(1, 2)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates())
            .unwrap();
        assert_eq!(next, vec![0.5, 0.0]);
        // m = 4: a, b, c, d → [(0 + 1 + 0 + 3)/4, (0 + 0 + 2 + 3)/4] = [1, 1.25]
        let next = Krum::new(1, 4)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates())
            .unwrap();
        assert_eq!(next, vec![1.0, 1.25]);
    }

    #[test]
    fn krum_ignores_sample_counts() {
        // Same geometry; the outlier "e" claims a huge sample count.
        let mut u = updates();
        u[4].num_samples = u64::MAX;
        let next = Krum::new(1, 2).unwrap().aggregate(&[0.0, 0.0], &u).unwrap();
        assert_eq!(next, vec![0.5, 0.0]);
    }

    #[test]
    fn krum_resists_one_outlier() {
        // Four honest clients near [1, 1] and one sending 1e6 everywhere.
        let honest = [[1.0f32, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.2]];
        let evil = [1e6f32, 1e6];
        let mut u: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .zip(&honest)
            .map(|(n, w)| update(n, w, 1))
            .collect();
        u.push(update("evil", &evil, 1));
        let next = Krum::new(1, 3).unwrap().aggregate(&[0.0, 0.0], &u).unwrap();
        assert!(next.iter().all(|&x| (0.9..=1.2).contains(&x)), "{next:?}");
    }

    #[test]
    fn krum_breaks_score_ties_by_update_order() {
        // One coordinate; n = 5, f = 1 → 2 closest.
        //   a = 2, b = -2, c = 1, d = -1, e = 0
        //   a: {16, 1, 9, 4} → 1 + 4 = 5     b: {16, 9, 1, 4} → 1 + 4 = 5
        //   c: {1, 9, 4, 1}  → 1 + 1 = 2     d: {9, 1, 4, 1}  → 1 + 1 = 2
        //   e: {4, 4, 1, 1}  → 1 + 1 = 2
        // Ranking with ties by order: c, d, e, a, b.
        let w = [[2.0f32], [-2.0], [1.0], [-1.0], [0.0]];
        let u: Vec<_> = NODES.iter().zip(&w).map(|(n, w)| update(n, w, 1)).collect();
        let krum = |m| Krum::new(1, m).unwrap().aggregate(&[0.0], &u).unwrap();
        assert_eq!(krum(1), vec![1.0]); // c, not d or e
        assert_eq!(krum(2), vec![0.0]); // c, d: (1 - 1)/2
        assert_eq!(krum(4), vec![0.5]); // c, d, e and a (not b): (2 + 1 - 1 + 0)/4
    }

    #[test]
    fn krum_rejects_fewer_than_2f_plus_3_updates() {
        let u = updates();
        let err = Krum::new(1, 1)
            .unwrap()
            .aggregate(&[0.0, 0.0], &u[..4])
            .unwrap_err();
        assert_eq!(
            err,
            AggregationError::NotEnoughForRule {
                rule: NAME,
                needed: 5,
                got: 4
            }
        );
        let err = Krum::new(2, 1)
            .unwrap()
            .aggregate(&[0.0, 0.0], &u)
            .unwrap_err();
        assert_eq!(
            err,
            AggregationError::NotEnoughForRule {
                rule: NAME,
                needed: 7,
                got: 5
            }
        );
    }

    #[test]
    fn multi_krum_rejects_selecting_more_than_n_minus_f() {
        // n = 5, f = 1: m = 5 would need 6 updates.
        let err = Krum::new(1, 5)
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates())
            .unwrap_err();
        assert_eq!(
            err,
            AggregationError::NotEnoughForRule {
                rule: NAME,
                needed: 6,
                got: 5
            }
        );
    }

    #[test]
    fn krum_with_no_byzantine_clients_needs_three_updates() {
        // f = 0: n - f - 2 = 1 closest. a = [0], b = [1], c = [3]:
        // a: {1, 9} → 1 ; b: {1, 4} → 1 ; c: {9, 4} → 4 → tie a/b → a.
        let w = [[0.0f32], [1.0], [3.0]];
        let u: Vec<_> = NODES.iter().zip(&w).map(|(n, w)| update(n, w, 1)).collect();
        let next = Krum::new(0, 1).unwrap().aggregate(&[0.0], &u).unwrap();
        assert_eq!(next, vec![0.0]);
        assert_eq!(Krum::new(0, 1).unwrap().min_updates(), 3);
    }

    #[test]
    fn krum_rejects_multi_zero() {
        assert!(matches!(
            Krum::new(1, 0),
            Err(AggregationError::InvalidParameter {
                parameter: "multi",
                ..
            })
        ));
    }
}
