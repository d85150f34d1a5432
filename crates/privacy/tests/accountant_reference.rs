//! The RDP accountant against Google's dp-accounting 0.6.0.
//!
//! Reference values were produced with
//!   python3 -m venv /tmp/dpacc-venv && /tmp/dpacc-venv/bin/pip install dp-accounting==0.6.0
//! and, for each (q, sigma, steps, delta):
//!   acc = rdp_privacy_accountant.RdpAccountant()   # default orders
//!   acc.compose(dp_event.SelfComposedDpEvent(
//!       dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps))
//!   acc.get_epsilon_and_optimal_order(delta)
//! (the first is /work/shared/bench/flower/rdp_ref.py's reference). Per-order RDP values come
//! from `rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(q, sigma, [alpha])`.

use privacy::accountant::{
    AccountantError, PrivacyBudget, RdpAccountant, SampledGaussian, epsilon_from_rdp,
};

const TOLERANCE: f64 = 1e-4;

fn event(sample_rate: f64, noise_multiplier: f64, steps: u64) -> SampledGaussian {
    SampledGaussian {
        sample_rate,
        noise_multiplier,
        steps,
    }
}

fn epsilon_and_order(q: f64, sigma: f64, steps: u64, delta: f64) -> (f64, Option<f64>) {
    let mut accountant = RdpAccountant::new();
    accountant.compose(&event(q, sigma, steps)).unwrap();
    let bound = accountant.epsilon(delta).unwrap();
    (bound.epsilon, bound.order)
}

#[test]
fn epsilon_matches_dp_accounting_reference_points() {
    // (q, sigma, steps, delta, epsilon, optimal order) from dp-accounting 0.6.0.
    let references = [
        (0.01, 1.1, 10_000, 1e-5, 5.632_010_670_1, 4.7), // the project's reference
        (1.0, 1.0, 1, 1e-5, 4.728_507_067_2, 5.4),       // no subsampling
        (1.0, 5.0, 100, 1e-6, 11.688_626_799_2, 3.5),    // no subsampling, many steps
        (0.001, 0.8, 100_000, 1e-6, 3.187_804_663_8, 7.4), // small sigma, tiny q
        (0.05, 10.0, 1_000, 1e-5, 0.621_409_454_1, 26.0), // large sigma
        (0.02, 50.0, 10, 1e-5, 0.004_327_411_5, 1024.0), // very large sigma: top order
        (0.1, 2.0, 500, 1e-5, 6.034_562_203_4, 4.4),
        // Series of orders 1.1-1.7 do not converge here (dp-accounting skips them too).
        (0.256, 1.3, 2_000, 1e-8, 120.118_054_729_7, 2.0),
        (0.5, 0.7, 10, 1e-5, 19.933_635_270_1, 2.1),
    ];
    for (q, sigma, steps, delta, expected, expected_order) in references {
        let (epsilon, order) = epsilon_and_order(q, sigma, steps, delta);
        assert!(
            (epsilon - expected).abs() < TOLERANCE,
            "q={q} sigma={sigma} steps={steps} delta={delta}: {epsilon} vs {expected}"
        );
        assert_eq!(order, Some(expected_order), "q={q} sigma={sigma}");
    }
}

#[test]
fn rdp_curve_matches_dp_accounting_per_order() {
    // (q, sigma, alpha, RDP of one step) from _compute_rdp_poisson_subsampled_gaussian.
    let references = [
        (0.01, 1.1, 4.7, 0.000_317_789_901_961_926),
        (0.01, 1.1, 1.5, 9.858_756_968_009_191e-5),
        (0.01, 1.1, 2.0, 0.000_128_510_081_605_165_42),
        (0.01, 1.1, 63.0, 21.353_610_726_767_897),
        (0.01, 1.1, 512.0, 206.956_065_673_168_18),
        (0.3, 0.9, 2.5, 0.307_657_105_043_723_4),
        (0.3, 0.9, 7.0, 2.918_020_852_155_531),
        (0.001, 0.5, 1.1, 2.865_013_602_560_826e-5),
    ];
    for (q, sigma, alpha, expected) in references {
        let rdp = event(q, sigma, 1).rdp(alpha);
        assert!(
            (rdp - expected).abs() <= 1e-9 * expected.max(1.0),
            "q={q} sigma={sigma} alpha={alpha}: {rdp} vs {expected}"
        );
    }
    // rdp_ref.py: total RDP over 10,000 steps of q = 0.01, sigma = 1.1.
    for (alpha, expected) in [
        (2.0, 1.285_100_816_1),
        (10.0, 8.075_821_730_2),
        (12.0, 413.855_193_792_2),
    ] {
        let rdp = event(0.01, 1.1, 10_000).rdp(alpha);
        assert!(
            (rdp - expected).abs() < 1e-6 * expected,
            "alpha={alpha}: {rdp} vs {expected}"
        );
    }
}

#[test]
fn fractional_orders_never_understate_the_exact_rdp() {
    // Exact A_alpha by numerical integration of its definition (mpmath 1.4.1, 40 digits):
    //   mp.quad(lambda z: npdf(z, 0, sigma) * ((1 - q) + q * exp((2z - 1) / (2 sigma^2)))^alpha)
    // RDP = ln(A) / (alpha - 1). The accountant's series bound must not be below it.
    let exact = [
        (0.01, 1.1, 4.7, 0.000_317_788_071_821_947),
        (0.1, 2.0, 4.4, 0.006_683_526_088_225_37),
        (0.3, 0.9, 2.5, 0.306_168_374_501_787),
        (0.01, 1.1, 1.5, 9.554_528_571_874_83e-5),
    ];
    for (q, sigma, alpha, exact) in exact {
        let bound = event(q, sigma, 1).rdp(alpha);
        assert!(
            bound >= exact * (1.0 - 1e-9),
            "alpha={alpha}: {bound} < exact {exact}"
        );
        assert!(
            bound <= exact * 1.05,
            "alpha={alpha}: {bound} far above exact {exact}"
        );
    }
}

#[test]
fn heterogeneous_steps_compose_by_adding_rdp() {
    // dp-accounting 0.6.0: compose SelfComposed(Poisson(0.01, Gaussian(1.1)), 5000), then
    // SelfComposed(Poisson(0.05, Gaussian(2.0)), 300), then Gaussian(20.0); delta 1e-5.
    let mut accountant = RdpAccountant::new();
    for step in [
        event(0.01, 1.1, 5_000),
        event(0.05, 2.0, 300),
        event(1.0, 20.0, 1),
    ] {
        accountant.compose(&step).unwrap();
    }
    let bound = accountant.epsilon(1e-5).unwrap();
    assert!(
        (bound.epsilon - 4.493_016_599_9).abs() < TOLERANCE,
        "{}",
        bound.epsilon
    );
    assert_eq!(bound.order, Some(5.4));
}

#[test]
fn steps_composed_one_at_a_time_equal_steps_composed_at_once() {
    let mut one_by_one = RdpAccountant::new();
    for _ in 0..100 {
        one_by_one.compose(&event(0.02, 1.0, 1)).unwrap();
    }
    let mut at_once = RdpAccountant::new();
    at_once.compose(&event(0.02, 1.0, 100)).unwrap();
    assert_eq!(one_by_one.events(), at_once.events());
    let (a, b) = (
        one_by_one.epsilon(1e-5).unwrap(),
        at_once.epsilon(1e-5).unwrap(),
    );
    assert!((a.epsilon - b.epsilon).abs() < 1e-9);
}

#[test]
fn accountant_survives_serialisation() {
    let mut accountant = RdpAccountant::new();
    accountant.compose(&event(0.01, 1.1, 10)).unwrap();
    accountant.compose(&event(0.5, 0.7, 3)).unwrap(); // some orders have no finite bound
    let json = serde_json::to_string(&accountant).unwrap();
    let loaded: RdpAccountant = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, accountant);
}

#[test]
fn corrupted_saved_accountant_is_refused() {
    let json = r#"{"orders":[0.5],"events":[]}"#;
    assert!(serde_json::from_str::<RdpAccountant>(json).is_err());
    let json =
        r#"{"orders":[2.0],"events":[{"sample_rate":2.0,"noise_multiplier":1.0,"steps":1}]}"#;
    assert!(serde_json::from_str::<RdpAccountant>(json).is_err());
}

#[test]
fn conversion_skips_orders_without_a_finite_bound() {
    let bound = epsilon_from_rdp(&[2.0, 3.0], &[f64::INFINITY, 1.0], 1e-5).unwrap();
    assert_eq!(bound.order, Some(3.0));
}

#[test]
fn budget_refuses_the_step_that_would_exceed_it() {
    let budget = PrivacyBudget {
        epsilon_limit: 5.632_1,
        delta: 1e-5,
    };
    let mut accountant = RdpAccountant::new();
    let epoch = event(0.01, 1.1, 1_000);
    for _ in 0..10 {
        assert!(!budget.would_exceed(&accountant, &epoch).unwrap());
        budget.charge(&mut accountant, &epoch).unwrap();
    }
    let spent = budget.spent(&accountant).unwrap();
    assert!((spent.epsilon - 5.632_01).abs() < TOLERANCE);
    assert!(budget.would_exceed(&accountant, &epoch).unwrap());
    let refused = budget.charge(&mut accountant, &epoch);
    assert!(matches!(
        refused,
        Err(AccountantError::BudgetExceeded { .. })
    ));
    assert_eq!(
        budget.spent(&accountant).unwrap(),
        spent,
        "a refused step is not charged"
    );
}

#[test]
fn invalid_budgets_and_steps_are_refused() {
    let accountant = RdpAccountant::new();
    for budget in [
        PrivacyBudget {
            epsilon_limit: f64::NAN,
            delta: 1e-5,
        },
        PrivacyBudget {
            epsilon_limit: 1.0,
            delta: 0.0,
        },
        PrivacyBudget {
            epsilon_limit: -1.0,
            delta: 1e-5,
        },
    ] {
        assert!(
            budget
                .would_exceed(&accountant, &event(0.01, 1.0, 1))
                .is_err()
        );
    }
    let budget = PrivacyBudget {
        epsilon_limit: 1.0,
        delta: 1e-5,
    };
    assert!(
        budget
            .would_exceed(&accountant, &event(1.5, 1.0, 1))
            .is_err()
    );
    assert!(RdpAccountant::with_orders(vec![]).is_err());
    assert!(RdpAccountant::with_orders(vec![1.0]).is_err());
}
