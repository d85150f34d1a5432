//! Tests of the registry (`StrategyConfig`) and of the contract every rule
//! shares. Per-rule arithmetic is tested next to each rule.

use super::test_support::{bits, update};
use super::*;

fn all_configs() -> Vec<StrategyConfig> {
    StrategyConfig::names()
        .map(|name| StrategyConfig::from_name(name).unwrap())
        .collect()
}

/// Rule `name` with `values` set.
fn rule(name: &str, values: &[(&str, Param)]) -> StrategyConfig {
    values
        .iter()
        .fold(StrategyConfig::from_name(name).unwrap(), |c, (p, v)| {
            c.with(p, *v).unwrap()
        })
}

#[test]
fn from_name_round_trips_every_name() {
    for name in StrategyConfig::names() {
        let config = StrategyConfig::from_name(name).unwrap();
        assert_eq!(config.name(), name);
        assert_eq!(name.parse::<StrategyConfig>().unwrap(), config);
    }
}

#[test]
fn built_strategy_reports_the_config_name() {
    for config in all_configs() {
        assert_eq!(config.build().unwrap().name(), config.name());
    }
}

#[test]
fn from_name_rejects_unknown_names() {
    for name in ["", "FedAvg", "fed_avg", "trimmed_mean", "bulyan"] {
        let err = StrategyConfig::from_name(name).unwrap_err();
        assert_eq!(
            err,
            AggregationError::UnknownRule {
                name: name.to_owned()
            }
        );
        assert!(err.to_string().contains("trimmed-mean"), "{err}");
    }
}

#[test]
fn from_name_uses_the_documented_defaults() {
    let real = |c: &StrategyConfig, p: &str| c.real(p);
    let configs = all_configs();
    let names: Vec<&str> = configs.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "fedavg",
            "fedprox",
            "fedadam",
            "fedyogi",
            "fedadagrad",
            "fedmedian",
            "trimmed-mean",
            "krum"
        ]
    );
    assert_eq!(real(&configs[1], "mu"), 0.01);
    for optimizer in &configs[2..4] {
        let values: Vec<f32> = ["eta", "beta1", "beta2", "tau"]
            .iter()
            .map(|p| real(optimizer, p))
            .collect();
        assert_eq!(values, [0.1, 0.9, 0.99, 1e-3]);
    }
    assert_eq!(
        (real(&configs[4], "eta"), real(&configs[4], "tau")),
        (0.1, 1e-3)
    );
    assert_eq!(configs[4].get("beta1"), None);
    assert_eq!(real(&configs[6], "beta"), 0.2);
    assert_eq!(
        (configs[7].count("byzantine"), configs[7].count("multi")),
        (1, 1)
    );
    assert_eq!(configs[7].min_updates(), 5);
    assert_eq!(StrategyConfig::default(), configs[0]);
}

#[test]
fn hyper_parameters_are_set_by_name_and_kind() {
    let krum = rule(
        "krum",
        &[("byzantine", Param::Count(2)), ("multi", Param::Count(3))],
    );
    assert_eq!(krum.min_updates(), 7);
    let fedadam = rule("fedadam", &[("eta", Param::Count(1))]);
    assert_eq!(fedadam.real("eta"), 1.0);
    let err = StrategyConfig::from_name("krum")
        .unwrap()
        .with("multi", Param::Real(1.5))
        .unwrap_err();
    assert!(err.to_string().contains("whole number"), "{err}");
    let err = StrategyConfig::default()
        .with("eta", Param::Real(0.1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "fedavg: no hyper-parameter \"eta\" (it has: none)"
    );
}

#[test]
fn proximal_mu_is_fedprox_mu_and_zero_otherwise() {
    assert_eq!(
        rule("fedprox", &[("mu", Param::Real(0.25))]).proximal_mu(),
        0.25
    );
    for config in all_configs() {
        if config.name() != "fedprox" {
            assert_eq!(config.proximal_mu(), 0.0, "{}", config.name());
        }
    }
}

#[test]
fn build_rejects_invalid_hyper_parameters() {
    let real =
        |name: &str, param: &'static str, x: f32| (rule(name, &[(param, Param::Real(x))]), param);
    let cases = [
        real("fedprox", "mu", -1.0),
        real("fedadam", "eta", 0.0),
        real("fedadam", "beta1", 1.0),
        real("fedadam", "beta2", 1.5),
        real("fedadam", "tau", 0.0),
        real("fedyogi", "eta", f32::NAN),
        real("fedyogi", "beta2", -0.5),
        real("fedadagrad", "tau", -1.0),
        real("trimmed-mean", "beta", 0.5),
        real("trimmed-mean", "beta", -0.1),
        (rule("krum", &[("multi", Param::Count(0))]), "multi"),
    ];
    for (config, parameter) in cases {
        match config.build() {
            Err(AggregationError::InvalidParameter { parameter: p, .. }) => {
                assert_eq!(p, parameter, "{config:?}")
            }
            Err(other) => panic!("{config:?}: expected InvalidParameter, got {other}"),
            Ok(_) => panic!("{config:?}: expected InvalidParameter, got a strategy"),
        }
        assert!(config.validate().is_err());
    }
}

#[test]
fn invalid_parameter_message_names_rule_parameter_and_range() {
    let err = rule("trimmed-mean", &[("beta", Param::Real(0.6))])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "trimmed-mean: invalid beta = 0.6: must be in [0, 0.5)"
    );
}

#[test]
fn config_serialises_with_a_snake_case_rule_tag() {
    let config = rule("fedadam", &[("eta", Param::Real(0.5))]);
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"rule": "fed_adam", "eta": 0.5, "beta1": 0.9f32, "beta2": 0.99f32, "tau": 0.001f32})
    );
    assert_eq!(
        serde_json::to_value(rule("trimmed-mean", &[("beta", Param::Real(0.25))])).unwrap(),
        serde_json::json!({"rule": "trimmed_mean", "beta": 0.25})
    );
    assert_eq!(
        serde_json::to_value(StrategyConfig::default()).unwrap(),
        serde_json::json!({"rule": "fed_avg"})
    );
    // Field order is the rule's: plans are hashed as serialised.
    assert_eq!(
        serde_json::to_string(&rule("krum", &[("multi", Param::Count(2))])).unwrap(),
        r#"{"rule":"krum","byzantine":1,"multi":2}"#
    );
}

#[test]
fn config_survives_a_json_round_trip() {
    for config in all_configs() {
        let json = serde_json::to_string(&config).unwrap();
        let back: StrategyConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config, "{json}");
    }
}

#[test]
fn config_accepts_command_line_names_as_rule_tags() {
    let parse = |s: &str| serde_json::from_str::<StrategyConfig>(s).unwrap();
    assert_eq!(parse(r#"{"rule": "fedavg"}"#), StrategyConfig::default());
    assert_eq!(
        parse(r#"{"rule": "trimmed-mean", "beta": 0.1}"#),
        rule("trimmed-mean", &[("beta", Param::Real(0.1))])
    );
    assert_eq!(
        parse(r#"{"rule": "fedadagrad", "eta": 0.2, "tau": 0.001}"#),
        rule("fedadagrad", &[("eta", Param::Real(0.2))])
    );
}

#[test]
fn config_rejects_missing_and_unknown_fields() {
    let parse = |s: &str| serde_json::from_str::<StrategyConfig>(s);
    let err = |s: &str| parse(s).unwrap_err().to_string();
    assert!(err(r#"{"rule": "fed_prox"}"#).contains("missing field `mu`"));
    assert!(err(r#"{"rule": "fed_prox", "mu": 0.1, "nu": 0.2}"#).contains("unknown field `nu`"));
    assert!(err(r#"{"rule": "krum", "byzantine": 1}"#).contains("missing field `multi`"));
    assert!(err(r#"{"rule": "krum", "byzantine": 1, "multi": 1.5}"#).contains("whole number"));
    assert!(err(r#"{"rule": "bulyan"}"#).contains("unknown aggregation rule"));
    assert!(err(r#"{"eta": 0.1}"#).contains("missing field `rule`"));
}

#[test]
fn every_rule_rejects_an_empty_round() {
    for config in all_configs() {
        let err = config.build().unwrap().aggregate(&[0.0], &[]).unwrap_err();
        assert_eq!(err, AggregationError::NoUpdates, "{}", config.name());
    }
}

/// Seven well-formed updates of length 2 (enough for Krum's defaults).
fn seven<'a>(weights: &'a [[f32; 2]; 7], names: &'a [String; 7]) -> Vec<ClientUpdate<'a>> {
    names
        .iter()
        .zip(weights)
        .map(|(n, w)| update(n, w, 1))
        .collect()
}

fn seven_weights() -> [[f32; 2]; 7] {
    std::array::from_fn(|i| [i as f32 * 0.5, 1.0 - i as f32 * 0.25])
}

fn seven_names() -> [String; 7] {
    std::array::from_fn(|i| format!("node-{i}"))
}

/// Runs every rule (with its defaults) on seven well-formed updates spoiled by
/// `spoil`, and checks that each one reports `expected`.
fn assert_every_rule_rejects(spoil: impl Fn(&mut [ClientUpdate<'_>]), expected: AggregationError) {
    let (w, names) = (seven_weights(), seven_names());
    for config in all_configs() {
        let mut updates = seven(&w, &names);
        spoil(&mut updates);
        let err = config
            .build()
            .unwrap()
            .aggregate(&[0.0, 0.0], &updates)
            .unwrap_err();
        assert_eq!(err, expected, "{}", config.name());
    }
}

#[test]
fn every_rule_rejects_an_update_of_the_wrong_length() {
    assert_every_rule_rejects(
        |updates| updates[3].weights = &[1.0],
        AggregationError::LengthMismatch {
            node: "node-3".to_owned(),
            expected: 2,
            got: 1,
        },
    );
}

#[test]
fn every_rule_rejects_non_finite_weights() {
    const POISONED: [[f32; 2]; 3] = [
        [0.0, f32::NAN],
        [0.0, f32::INFINITY],
        [0.0, f32::NEG_INFINITY],
    ];
    for poisoned in &POISONED {
        assert_every_rule_rejects(
            |updates| updates[5].weights = poisoned,
            AggregationError::NonFiniteUpdate {
                node: "node-5".to_owned(),
                index: 1,
            },
        );
    }
}

#[test]
fn every_rule_rejects_a_node_sending_twice() {
    assert_every_rule_rejects(
        |updates| updates[2].node = "node-1",
        AggregationError::DuplicateNode {
            node: "node-1".to_owned(),
        },
    );
}

#[test]
fn every_rule_is_bit_identical_for_identical_inputs() {
    let weights: [[f32; 2]; 7] =
        std::array::from_fn(|i| [(i as f32 * 0.37).sin(), (i as f32 * 1.3).cos() * 1e-3]);
    let names = seven_names();
    let mut updates = seven(&weights, &names);
    for (i, u) in updates.iter_mut().enumerate() {
        u.num_samples = 10 + 7 * i as u64;
    }
    let global = [0.123f32, -0.0004];
    for config in all_configs() {
        let a = config
            .build()
            .unwrap()
            .aggregate(&global, &updates)
            .unwrap();
        let b = config
            .build()
            .unwrap()
            .aggregate(&global, &updates)
            .unwrap();
        assert_eq!(bits(&a), bits(&b), "{}", config.name());
        assert!(a.iter().all(|x| x.is_finite()), "{}", config.name());
    }
}

#[test]
fn stateless_rules_have_empty_state_and_refuse_foreign_state() {
    let (w, names) = (seven_weights(), seven_names());
    let stateless = ["fedavg", "fedprox", "fedmedian", "trimmed-mean", "krum"];
    for name in stateless {
        let mut strategy = StrategyConfig::from_name(name).unwrap().build().unwrap();
        strategy.aggregate(&[0.0, 0.0], &seven(&w, &names)).unwrap();
        assert!(strategy.state().is_empty(), "{name}");
        strategy.restore(Vec::new()).unwrap();
        let err = strategy
            .restore(vec![("m".to_owned(), vec![0.0, 0.0])])
            .unwrap_err();
        assert!(
            matches!(err, AggregationError::InvalidState(_)),
            "{name}: {err}"
        );
    }
}

#[test]
fn boxed_strategies_can_move_between_threads() {
    fn assert_send<T: Send>(_: &T) {}
    for config in all_configs() {
        assert_send(&config.build().unwrap());
    }
}

#[test]
fn error_messages_are_specific() {
    let err = AggregationError::NotEnoughForRule {
        rule: "krum",
        needed: 5,
        got: 4,
    };
    assert_eq!(
        err.to_string(),
        "krum needs at least 5 client updates this round, got 4"
    );
    let err = AggregationError::LengthMismatch {
        node: "hospital-b".to_owned(),
        expected: 10,
        got: 9,
    };
    assert_eq!(
        err.to_string(),
        "update from node \"hospital-b\" has 9 weights, expected 10 (the global model's length)"
    );
}

#[test]
fn rules_declare_what_they_need_and_the_mean_rules_agree_with_their_updates() {
    let global = [0.5f32, -1.0, 2.0];
    let updates = [
        update("a", &[1.0, 0.0, 2.5], 3),
        update("b", &[0.0, -2.0, 1.0], 1),
    ];
    let mean: Vec<f32> = weighted_mean(&updates)
        .unwrap()
        .into_iter()
        .map(|x| x as f32)
        .collect();
    for config in all_configs() {
        let robust = ["fedmedian", "trimmed-mean", "krum"].contains(&config.name());
        let mut on_updates = config.build().unwrap();
        let mut on_mean = config.build().unwrap();
        if robust {
            assert_eq!(on_mean.input(), RoundInput::Updates, "{config:?}");
            assert_eq!(
                on_mean.aggregate_mean(&global, &mean, 4).unwrap_err(),
                AggregationError::NeedsUpdates {
                    rule: on_mean.name()
                }
            );
            continue;
        }
        assert_eq!(on_mean.input(), RoundInput::WeightedMean, "{config:?}");
        // Two rounds, so that the optimisers' moments carry over.
        for _ in 0..2 {
            let expected = on_updates.aggregate(&global, &updates).unwrap();
            let got = on_mean.aggregate_mean(&global, &mean, 4).unwrap();
            for (a, b) in got.iter().zip(&expected) {
                assert!((a - b).abs() <= 1e-6, "{config:?}: {a} vs {b}");
            }
        }
        let (a, b) = (on_mean.state(), on_updates.state());
        assert_eq!(a.len(), b.len(), "{config:?}");
        for ((name_a, va), (name_b, vb)) in a.iter().zip(&b) {
            assert_eq!(name_a, name_b);
            for (x, y) in va.iter().zip(vb) {
                assert!((x - y).abs() <= 1e-6, "{config:?} {name_a}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn a_mean_is_checked_like_an_update() {
    let mut fedavg = StrategyConfig::default().build().unwrap();
    assert_eq!(
        bits(&fedavg.aggregate_mean(&[0.0, 0.0], &[1.5, -2.0], 7).unwrap()),
        bits(&[1.5, -2.0])
    );
    assert_eq!(
        fedavg
            .aggregate_mean(&[0.0, 0.0], &[1.5, -2.0], 0)
            .unwrap_err(),
        AggregationError::ZeroSamples
    );
    assert!(matches!(
        fedavg.aggregate_mean(&[0.0, 0.0], &[1.5], 7).unwrap_err(),
        AggregationError::LengthMismatch { .. }
    ));
    assert!(matches!(
        fedavg.aggregate_mean(&[0.0], &[f32::NAN], 7).unwrap_err(),
        AggregationError::NonFiniteUpdate { .. }
    ));
}
