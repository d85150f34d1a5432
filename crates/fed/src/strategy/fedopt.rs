//! Machinery shared by the adaptive server optimisers FedAdam, FedYogi and
//! FedAdagrad (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
//! Algorithm 2). Each rule's own file supplies its second-moment update; this
//! file holds the common step:
//!
//! ```text
//! Δ    = weighted_mean(client weights) - global      (pseudo-gradient)
//! m    = β1 · m + (1 - β1) · Δ
//! v    = rule-specific update of v with Δ²
//! next = global + η · m / (√v + τ)
//! ```
//!
//! all element-wise, with `m = 0` and `v = τ²` before the first round.
//!
//! Choices, stated plainly:
//! * The paper averages client deltas uniformly over the sampled clients. As
//!   FedAvg does, we weight them by `num_samples` (coefficients sum to one, so
//!   `weighted_mean(clients) - global` is the weighted mean of the deltas);
//!   equal sample counts give the paper's plain average.
//! * No bias correction (the paper's algorithm has none either): `m` and `v`
//!   are used as they are.
//! * Arithmetic is done in `f64` per coordinate from the stored `f32` moments,
//!   and the new `m` and `v` are rounded to `f32` *before* they are used for
//!   the step. The stored `f32` vectors are therefore the complete state, and
//!   restoring them reproduces an uninterrupted run bit for bit.
//! * A round that fails (bad updates, overflow) leaves `m` and `v` unchanged.
//! * The state is `[("m", m), ("v", v)]`; it is empty until the first
//!   successful round, and restoring an empty state resets to that fresh start.
//!
//! Structure: each optimiser is a newtype around [`ServerOptimizer`] (the
//! hyper-parameters, their validation, the moments and the step above); its
//! own file supplies only the second-moment update, a plain
//! `fn(β2, v, Δ²) -> v`, and makes the newtype a rule with one
//! [`server_optimizer_rule!`] line.

use super::{
    Aggregated, AggregationError, ClientUpdate, Param, ServerState, invalid, weighted_mean,
};

/// Default server learning rate: a starting point (Reddi et al. 2021 tune it per task on a grid
/// of powers of ten).
pub(super) const DEFAULT_ETA: f32 = 0.1;
/// Default adaptivity `tau` (Reddi et al. 2021).
pub(super) const DEFAULT_TAU: f32 = 1e-3;

/// The hyper-parameters of FedAdam and FedYogi with their defaults (`beta1 = 0.9`,
/// `beta2 = 0.99` as in Reddi et al. 2021).
pub(super) const SERVER_OPTIMIZER_PARAMS: &[(&str, Param)] = &[
    ("eta", Param::Real(DEFAULT_ETA)),
    ("beta1", Param::Real(0.9)),
    ("beta2", Param::Real(0.99)),
    ("tau", Param::Real(DEFAULT_TAU)),
];

/// Makes `$rule`, a newtype around [`ServerOptimizer`], the rule named `$name`
/// whose second-moment update is `$second_moment(β2, v, Δ²)`: each round is one
/// [`ServerOptimizer::step`], and the rule's state is the optimiser's `m`/`v`.
macro_rules! server_optimizer_rule {
    ($rule:ident, $name:expr, $second_moment:expr) => {
        impl $crate::strategy::Rule for $rule {
            const NAME: &'static str = $name;

            fn combine(
                &mut self,
                global: &[f32],
                updates: &[$crate::strategy::ClientUpdate<'_>],
            ) -> $crate::strategy::Aggregated {
                self.0.step(global, updates, $second_moment)
            }

            const INPUT: $crate::strategy::RoundInput = $crate::strategy::RoundInput::WeightedMean;

            fn combine_mean(
                &mut self,
                global: &[f32],
                mean: Vec<f64>,
            ) -> $crate::strategy::Aggregated {
                self.0.step_from_mean(global, mean, $second_moment)
            }

            fn saved_state(&self) -> $crate::strategy::ServerState {
                self.0.state()
            }

            fn restore_state(
                &mut self,
                state: $crate::strategy::ServerState,
            ) -> Result<(), $crate::strategy::AggregationError> {
                self.0.restore(state)
            }
        }
    };
}
pub(super) use server_optimizer_rule;

/// First and second moment estimates, one entry per model coordinate.
#[derive(Clone, Debug, PartialEq)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

/// The common part of FedAdam / FedYogi / FedAdagrad.
#[derive(Clone, Debug)]
pub(super) struct ServerOptimizer {
    rule: &'static str,
    eta: f32,
    beta1: f32,
    beta2: f32,
    tau: f32,
    moments: Option<Moments>,
}

/// Checks that a decay rate lies in `[0, 1)`.
fn check_decay(
    rule: &'static str,
    parameter: &'static str,
    value: f32,
) -> Result<(), AggregationError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(rule, parameter, value, "in [0, 1)"))
    }
}

impl ServerOptimizer {
    /// `eta` and `tau` must be finite and `> 0`; `beta1` and `beta2` in
    /// `[0, 1)` (checked in that order: eta, beta1, tau, beta2).
    pub(super) fn new(
        rule: &'static str,
        eta: f32,
        beta1: f32,
        beta2: f32,
        tau: f32,
    ) -> Result<Self, AggregationError> {
        if !(eta.is_finite() && eta > 0.0) {
            return Err(invalid(rule, "eta", eta, "finite and > 0"));
        }
        check_decay(rule, "beta1", beta1)?;
        if !(tau.is_finite() && tau > 0.0) {
            return Err(invalid(rule, "tau", tau, "finite and > 0"));
        }
        check_decay(rule, "beta2", beta2)?;
        Ok(Self {
            rule,
            eta,
            beta1,
            beta2,
            tau,
            moments: None,
        })
    }

    /// One server step on a validated round. `second_moment(β2, v, Δ²)`
    /// returns the new `v` (in `f64`).
    pub(super) fn step(
        &mut self,
        global: &[f32],
        updates: &[ClientUpdate<'_>],
        second_moment: fn(f64, f64, f64) -> f64,
    ) -> Aggregated {
        self.step_from_mean(global, weighted_mean(updates)?, second_moment)
    }

    /// One server step from the sample-weighted mean of a round's updates
    /// (one value per coordinate of `global`).
    pub(super) fn step_from_mean(
        &mut self,
        global: &[f32],
        mean: Vec<f64>,
        second_moment: fn(f64, f64, f64) -> f64,
    ) -> Aggregated {
        let rule = self.rule;

        let eta = f64::from(self.eta);
        let beta1 = f64::from(self.beta1);
        let beta2 = f64::from(self.beta2);
        let tau = f64::from(self.tau);

        let fresh;
        let previous = match &self.moments {
            Some(moments) => {
                if moments.m.len() != global.len() {
                    return Err(AggregationError::InvalidState(format!(
                        "{rule} holds moments for {} coordinates but the global model has {}",
                        moments.m.len(),
                        global.len()
                    )));
                }
                moments
            }
            None => {
                let initial_v = (tau * tau) as f32;
                fresh = Moments {
                    m: vec![0.0; global.len()],
                    v: vec![initial_v; global.len()],
                };
                &fresh
            }
        };

        let mut next = Vec::with_capacity(global.len());
        let mut m_new = Vec::with_capacity(global.len());
        let mut v_new = Vec::with_capacity(global.len());
        for (index, (((&x, &avg), &m_prev), &v_prev)) in global
            .iter()
            .zip(&mean)
            .zip(&previous.m)
            .zip(&previous.v)
            .enumerate()
        {
            let x = f64::from(x);
            let delta = avg - x;
            let m = (beta1 * f64::from(m_prev) + (1.0 - beta1) * delta) as f32;
            let v = second_moment(beta2, f64::from(v_prev), delta * delta) as f32;
            let updated = (x + eta * f64::from(m) / (f64::from(v).sqrt() + tau)) as f32;
            if !(m.is_finite() && v.is_finite() && updated.is_finite()) {
                return Err(AggregationError::NonFiniteResult { rule, index });
            }
            m_new.push(m);
            v_new.push(v);
            next.push(updated);
        }

        self.moments = Some(Moments { m: m_new, v: v_new });
        Ok(next)
    }

    /// `[("m", m), ("v", v)]`, or empty before the first round.
    pub(super) fn state(&self) -> ServerState {
        match &self.moments {
            Some(Moments { m, v }) => {
                vec![("m".to_owned(), m.clone()), ("v".to_owned(), v.clone())]
            }
            None => Vec::new(),
        }
    }

    /// Accepts what [`Self::state`] produced (entries in any order).
    pub(super) fn restore(&mut self, state: ServerState) -> Result<(), AggregationError> {
        let rule = self.rule;
        if state.is_empty() {
            self.moments = None;
            return Ok(());
        }
        let bad = |what: String| AggregationError::InvalidState(format!("{rule}: {what}"));
        let (mut m, mut v) = (None, None);
        for (name, values) in state {
            let slot = match name.as_str() {
                "m" => &mut m,
                "v" => &mut v,
                _ => {
                    return Err(bad(format!(
                        "unexpected state entry {name:?} (expected \"m\" and \"v\")"
                    )));
                }
            };
            if slot.replace(values).is_some() {
                return Err(bad(format!("state entry {name:?} given twice")));
            }
        }
        let (Some(m), Some(v)) = (m, v) else {
            return Err(bad("state must contain both \"m\" and \"v\"".to_owned()));
        };
        if m.len() != v.len() {
            return Err(bad(format!(
                "\"m\" has {} entries but \"v\" has {}",
                m.len(),
                v.len()
            )));
        }
        if let Some(index) = m.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("\"m\" is not finite at index {index}")));
        }
        if let Some(index) = v.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(bad(format!(
                "\"v\" must be finite and >= 0, fails at index {index}"
            )));
        }
        self.moments = Some(Moments { m, v });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Behaviour common to the three optimisers, exercised through FedAdam;
    //! the per-rule arithmetic is tested in each rule's file.

    use crate::strategy::fedadagrad::FedAdagrad;
    use crate::strategy::fedadam::FedAdam;
    use crate::strategy::fedyogi::FedYogi;
    use crate::strategy::test_support::{bits, moments, update};
    use crate::strategy::{AggregationError, Strategy};

    fn optimisers() -> Vec<Box<dyn Strategy>> {
        vec![
            Box::new(FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap()),
            Box::new(FedYogi::new(0.1, 0.9, 0.99, 1e-3).unwrap()),
            Box::new(FedAdagrad::new(0.1, 1e-3).unwrap()),
        ]
    }

    const GLOBAL: [f32; 3] = [0.3, -1.7, 2.25];
    const ROUND1: [[f32; 3]; 3] = [[0.41, -1.5, 2.0], [0.2, -1.9, 2.6], [0.35, -1.71, 2.2]];
    const ROUND2: [[f32; 3]; 3] = [[0.5, -1.2, 1.9], [0.27, -2.1, 2.8], [0.31, -1.6, 2.1]];

    fn round<'a>(weights: &'a [[f32; 3]; 3]) -> [crate::strategy::ClientUpdate<'a>; 3] {
        [
            update("a", &weights[0], 120),
            update("b", &weights[1], 75),
            update("c", &weights[2], 301),
        ]
    }

    #[test]
    fn state_is_empty_before_the_first_round() {
        for opt in optimisers() {
            assert!(opt.state().is_empty(), "{}", opt.name());
        }
    }

    #[test]
    fn state_is_named_m_and_v_after_a_round() {
        for mut opt in optimisers() {
            opt.aggregate(&GLOBAL, &round(&ROUND1)).unwrap();
            let names: Vec<String> = opt.state().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["m", "v"], "{}", opt.name());
        }
    }

    #[test]
    fn restored_state_continues_bit_identically() {
        for which in 0..3 {
            let mut uninterrupted = optimisers().remove(which);
            let x1 = uninterrupted.aggregate(&GLOBAL, &round(&ROUND1)).unwrap();
            let x2 = uninterrupted.aggregate(&x1, &round(&ROUND2)).unwrap();

            // A coordinator that runs round 1, persists the state as JSON, is
            // restarted, restores it into a fresh rule and runs round 2.
            let mut first_life = optimisers().remove(which);
            let y1 = first_life.aggregate(&GLOBAL, &round(&ROUND1)).unwrap();
            let saved = serde_json::to_string(&first_life.state()).unwrap();
            let mut second_life = optimisers().remove(which);
            second_life
                .restore(serde_json::from_str(&saved).unwrap())
                .unwrap();
            let y2 = second_life.aggregate(&y1, &round(&ROUND2)).unwrap();

            let name = uninterrupted.name();
            assert_eq!(bits(&x1), bits(&y1), "{name}");
            assert_eq!(bits(&x2), bits(&y2), "{name}");
            assert_eq!(uninterrupted.state(), second_life.state(), "{name}");
        }
    }

    #[test]
    fn restoring_an_empty_state_resets_to_a_fresh_start() {
        let mut used = FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap();
        used.aggregate(&GLOBAL, &round(&ROUND1)).unwrap();
        used.restore(Vec::new()).unwrap();
        let mut fresh = FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap();
        assert_eq!(
            bits(&used.aggregate(&GLOBAL, &round(&ROUND2)).unwrap()),
            bits(&fresh.aggregate(&GLOBAL, &round(&ROUND2)).unwrap())
        );
    }

    #[test]
    fn restore_rejects_malformed_state() {
        let m = || ("m".to_owned(), vec![0.0f32, 0.0]);
        let v = || ("v".to_owned(), vec![1.0f32, 1.0]);
        type State = Vec<(String, Vec<f32>)>;
        let cases: Vec<(&str, State)> = vec![
            ("missing v", vec![m()]),
            (
                "unknown name",
                vec![m(), v(), ("w".to_owned(), vec![0.0, 0.0])],
            ),
            ("duplicate m", vec![m(), m(), v()]),
            ("length mismatch", vec![m(), ("v".to_owned(), vec![1.0])]),
            ("negative v", vec![m(), ("v".to_owned(), vec![1.0, -1.0])]),
            ("NaN m", vec![("m".to_owned(), vec![f32::NAN, 0.0]), v()]),
        ];
        for (case, state) in cases {
            let mut opt = FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap();
            let err = opt.restore(state).unwrap_err();
            assert!(
                matches!(err, AggregationError::InvalidState(_)),
                "{case}: {err}"
            );
            assert!(opt.state().is_empty(), "{case}: state must stay untouched");
        }
    }

    #[test]
    fn restored_state_of_another_model_size_is_rejected_at_aggregation() {
        let mut opt = FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap();
        opt.restore(moments(&[0.0], &[1.0])).unwrap();
        let err = opt.aggregate(&GLOBAL, &round(&ROUND1)).unwrap_err();
        assert!(matches!(err, AggregationError::InvalidState(_)), "{err}");
    }

    #[test]
    fn restore_accepts_entries_in_any_order() {
        let mut opt = FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap();
        let mut reversed = moments(&[2.0], &[4.0]);
        reversed.reverse();
        opt.restore(reversed).unwrap();
        assert_eq!(opt.state(), moments(&[2.0], &[4.0]));
    }

    #[test]
    fn failed_round_leaves_the_state_untouched() {
        let mut opt = FedAdam::new(0.1, 0.9, 0.99, 1e-3).unwrap();
        opt.aggregate(&GLOBAL, &round(&ROUND1)).unwrap();
        let before = opt.state();
        let short = [update("a", &[1.0], 1)];
        assert!(opt.aggregate(&GLOBAL, &short).is_err());
        assert_eq!(opt.state(), before);
    }

    #[test]
    fn overflowing_step_is_reported_not_returned() {
        // β1 = 0 so m = Δ = 1; v = 0.99·τ² + 0.01·1² ≈ 0.0100; √v + τ ≈ 0.101;
        // the step η·m/(√v + τ) with η = f32::MAX is ≈ 9.9·f32::MAX: not an f32.
        let mut opt = FedAdam::new(f32::MAX, 0.0, 0.99, 1e-3).unwrap();
        let err = opt
            .aggregate(&[0.0], &[update("a", &[1.0], 1)])
            .unwrap_err();
        assert_eq!(
            err,
            AggregationError::NonFiniteResult {
                rule: "fedadam",
                index: 0
            }
        );
        assert!(opt.state().is_empty());
    }

    #[test]
    fn server_optimisers_reject_bad_hyper_parameters() {
        let cases: Vec<(&str, Result<FedAdam, AggregationError>)> = vec![
            ("eta", FedAdam::new(0.0, 0.9, 0.99, 1e-3)),
            ("eta", FedAdam::new(-0.1, 0.9, 0.99, 1e-3)),
            ("eta", FedAdam::new(f32::INFINITY, 0.9, 0.99, 1e-3)),
            ("beta1", FedAdam::new(0.1, 1.0, 0.99, 1e-3)),
            ("beta1", FedAdam::new(0.1, -0.1, 0.99, 1e-3)),
            ("beta2", FedAdam::new(0.1, 0.9, 1.0, 1e-3)),
            ("beta2", FedAdam::new(0.1, 0.9, f32::NAN, 1e-3)),
            ("tau", FedAdam::new(0.1, 0.9, 0.99, 0.0)),
            ("tau", FedAdam::new(0.1, 0.9, 0.99, -1e-3)),
        ];
        for (parameter, result) in cases {
            match result {
                Err(AggregationError::InvalidParameter { parameter: p, .. }) => {
                    assert_eq!(p, parameter)
                }
                other => panic!("{parameter}: expected InvalidParameter, got {other:?}"),
            }
        }
    }
}
