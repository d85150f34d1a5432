//! The secure-aggregation round: the weighted mean it reveals, recovery from dropouts, clean
//! failure below the threshold, refusal of bad messages, and the strategies it supports.

use std::collections::BTreeMap;

use fed::secure_round::{
    SecureMessage, SecureRoundClient, SecureRoundError, SecureRoundParams, SecureRoundServer,
    SecureRoundSettings, SecureStep, SecureSum, Step, StepOutcome, Topology, aggregate_from_mean,
    aggregate_secure_sum, encode_update, run_secure_round, supports_secure_aggregation,
    weighted_mean_range,
};
use fed::strategy::{ClientUpdate, StrategyConfig};
use privacy::secagg::{MaskedInput, Quantizer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MAX_SAMPLES: u64 = 500;
const MAX_DELTA: f64 = 0.5;

/// A party's local result: name, weights, sample count.
type Update = (String, Vec<f32>, u64);

fn random_round(parties: usize, len: usize, rng: &mut StdRng) -> (Vec<f32>, Vec<Update>) {
    let global: Vec<f32> = (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    let updates = (0..parties)
        .map(|i| {
            let weights = global
                .iter()
                .map(|&g| g + rng.random_range(-0.5f32..0.5))
                .collect();
            let samples = rng.random_range(10..=MAX_SAMPLES);
            (format!("hospital-{i:02}"), weights, samples)
        })
        .collect();
    (global, updates)
}

fn settings(range: f64) -> SecureRoundSettings {
    SecureRoundSettings {
        round_id: 11,
        threshold: None,
        topology: Topology::Complete,
        range,
    }
}

fn client_updates(updates: &[Update]) -> Vec<ClientUpdate<'_>> {
    updates
        .iter()
        .map(|(node, weights, num_samples)| ClientUpdate {
            node,
            weights,
            num_samples: *num_samples,
        })
        .collect()
}

/// Plain FedAvg over the given updates.
fn plain_fedavg(global: &[f32], updates: &[Update]) -> Vec<f32> {
    StrategyConfig::default()
        .build()
        .unwrap()
        .aggregate(global, &client_updates(updates))
        .unwrap()
}

/// The worst-case error of a securely computed mean model against the exact weighted mean:
/// quantisation of numerator and count, f32 rounding of the encoded values and of the
/// dequantised sum, and f32 rounding of both results.
fn mean_error_bound(
    global: &[f32],
    updates: &[Update],
    quantizer: &Quantizer,
    index: usize,
) -> f64 {
    let eps = f64::from(f32::EPSILON);
    let q = quantizer.sum_error_bound(updates.len());
    let total: f64 = updates.iter().map(|u| u.2 as f64).sum();
    let scaled: Vec<f64> = updates
        .iter()
        .map(|(_, w, n)| *n as f64 * (f64::from(w[index]) - f64::from(global[index])))
        .collect();
    let numerator: f64 = scaled.iter().sum();
    let numerator_error =
        q + scaled.iter().map(|s| s.abs()).sum::<f64>() * eps + numerator.abs() * eps;
    let mean_delta = numerator / total;
    let result = f64::from(global[index]) + mean_delta;
    (numerator_error + mean_delta.abs() * q) / total + 2.0 * result.abs().max(1e-30) * eps
}

fn assert_mean_within_bound(
    secure: &[f32],
    global: &[f32],
    updates: &[Update],
    quantizer: &Quantizer,
) {
    let plain = plain_fedavg(global, updates);
    assert_eq!(secure.len(), plain.len());
    for (i, (&s, &p)) in secure.iter().zip(&plain).enumerate() {
        let bound = mean_error_bound(global, updates, quantizer, i);
        assert!(
            (f64::from(s) - f64::from(p)).abs() <= bound,
            "coordinate {i}: secure {s} vs plain {p}, bound {bound:e}"
        );
    }
}

fn quantizer_for(parties: usize, range: f64) -> Quantizer {
    Quantizer::new(range, parties as u32).unwrap()
}

#[test]
fn secure_weighted_mean_equals_plain_fedavg_within_the_quantisation_bound() {
    let mut rng = StdRng::seed_from_u64(1);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    for (parties, len) in [(2, 5), (5, 200), (9, 1000)] {
        let (global, updates) = random_round(parties, len, &mut rng);
        let sum = run_secure_round(
            &global,
            &updates,
            &BTreeMap::new(),
            &settings(range),
            &mut rng,
        )
        .unwrap();
        let names: Vec<String> = updates.iter().map(|u| u.0.clone()).collect();
        assert_eq!(sum.contributors, names);
        let total: u64 = updates.iter().map(|u| u.2).sum();
        assert_eq!(sum.total_samples().unwrap(), total);
        let model = sum.mean_model(&global).unwrap();
        assert_mean_within_bound(&model, &global, &updates, &quantizer_for(parties, range));
        // Through the FedAvg strategy: the same model, bit for bit.
        let mut fedavg = StrategyConfig::default().build().unwrap();
        let next = aggregate_secure_sum(fedavg.as_mut(), &global, &sum).unwrap();
        assert_eq!(next, model);
    }
}

#[test]
fn parties_that_drop_after_sharing_keys_are_recovered_and_the_mean_is_over_the_survivors() {
    let mut rng = StdRng::seed_from_u64(2);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    let (global, updates) = random_round(7, 64, &mut rng);
    let dropped = ["hospital-01", "hospital-04"];
    let dropouts: BTreeMap<String, Step> = dropped
        .iter()
        .map(|&name| (name.to_owned(), Step::MaskedInput))
        .collect();
    let sum = run_secure_round(&global, &updates, &dropouts, &settings(range), &mut rng).unwrap();
    let survivors: Vec<Update> = updates
        .iter()
        .filter(|u| !dropped.contains(&u.0.as_str()))
        .cloned()
        .collect();
    let names: Vec<String> = survivors.iter().map(|u| u.0.clone()).collect();
    assert_eq!(sum.contributors, names);
    assert_eq!(
        sum.total_samples().unwrap(),
        survivors.iter().map(|u| u.2).sum::<u64>()
    );
    let model = sum.mean_model(&global).unwrap();
    assert_mean_within_bound(&model, &global, &survivors, &quantizer_for(7, range));

    // Parties that go silent only at unmasking had sent their input: they are in the mean.
    let late: BTreeMap<String, Step> = dropped
        .iter()
        .map(|&name| (name.to_owned(), Step::Unmasking))
        .collect();
    let sum = run_secure_round(&global, &updates, &late, &settings(range), &mut rng).unwrap();
    assert_eq!(sum.contributors.len(), 7);
    let model = sum.mean_model(&global).unwrap();
    assert_mean_within_bound(&model, &global, &updates, &quantizer_for(7, range));
}

/// The coordinator and the nodes exchanging tasks and messages as JSON bytes, as over gRPC.
struct Federation {
    server: SecureRoundServer,
    nodes: BTreeMap<String, (SecureRoundClient, Vec<f32>)>,
    rng: StdRng,
}

impl Federation {
    fn new(params: SecureRoundParams, global: &[f32], updates: &[Update], seed: u64) -> Self {
        let nodes = updates
            .iter()
            .map(|(name, weights, n)| {
                let client = SecureRoundClient::new(params.clone(), name).unwrap();
                let encoded = encode_update(global, weights, *n).unwrap();
                (name.clone(), (client, encoded))
            })
            .collect();
        Federation {
            server: SecureRoundServer::new(params).unwrap(),
            nodes,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `party`'s answer to its current task, not yet delivered (the tasks' and
    /// messages' wire form is tested in `protocol`).
    fn answer(&mut self, party: &str) -> SecureMessage {
        let task = self.server.task_for(party).expect("a task");
        let (client, encoded) = self.nodes.get_mut(party).unwrap();
        client.respond(&task, encoded, &mut self.rng).unwrap()
    }

    /// Every live party except `silent` answers; returns the messages delivered.
    fn collect(&mut self, silent: &[&str]) -> Vec<(String, SecureMessage)> {
        let mut delivered = Vec::new();
        for party in self.server.live_parties() {
            if silent.contains(&party.as_str()) {
                continue;
            }
            let message = self.answer(&party);
            self.server.receive(&party, message.clone()).unwrap();
            delivered.push((party, message));
        }
        delivered
    }

    fn step(&mut self, silent: &[&str]) -> Result<StepOutcome, SecureRoundError> {
        self.collect(silent);
        self.server.close_step()
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("hospital-{i:02}")).collect()
}

fn params_for(parties: usize, threshold: usize, len: usize, range: f64) -> SecureRoundParams {
    SecureRoundParams::new(
        5,
        names(parties),
        threshold,
        Topology::Complete,
        len + 1,
        range,
    )
    .unwrap()
}

#[test]
fn below_the_threshold_the_round_fails_and_reveals_nothing() {
    let mut rng = StdRng::seed_from_u64(3);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    let (global, updates) = random_round(5, 8, &mut rng);
    let mut federation = Federation::new(params_for(5, 3, 8, range), &global, &updates, 3);
    federation.step(&[]).unwrap();
    federation.step(&["hospital-04"]).unwrap();
    // Only two of the four live parties send their masked input: 2 < threshold 3.
    federation.collect(&["hospital-00", "hospital-02"]);
    assert!(!federation.server.step_complete());
    let failure = federation.server.close_step().unwrap_err();
    assert_eq!(
        failure,
        SecureRoundError::TooFewParties {
            step: SecureStep::MaskedInput,
            available: 2,
            threshold: 3,
        }
    );
    assert!(failure.is_round_failure());
    assert_eq!(federation.server.step(), SecureStep::Failed);
    assert!(federation.server.result().is_none());
    assert_eq!(federation.server.failure(), Some(&failure));
    assert!(federation.server.task_for("hospital-00").is_none());
    assert!(!federation.server.step_complete());
    // Nothing more is accepted.
    assert!(matches!(
        federation.server.close_step(),
        Err(SecureRoundError::RoundFailed { .. })
    ));
    let late = SecureMessage::MaskedInput(MaskedInput {
        round_id: 5,
        sender: 1,
        words: vec![0; 9],
    });
    assert!(matches!(
        federation.server.receive("hospital-00", late),
        Err(SecureRoundError::RoundFailed { .. })
    ));

    // The in-process driver reports the same failure.
    let dropouts: BTreeMap<String, Step> = ["hospital-00", "hospital-01", "hospital-02"]
        .iter()
        .map(|&name| (name.to_owned(), Step::ShareKeys))
        .collect();
    let result = run_secure_round(&global, &updates, &dropouts, &settings(range), &mut rng);
    assert!(
        matches!(
            result,
            Err(SecureRoundError::TooFewParties {
                step: SecureStep::ShareKeys,
                available: 2,
                threshold: 3
            })
        ),
        "{result:?}"
    );
}

#[test]
fn the_server_never_holds_an_individual_update_in_the_clear() {
    let mut rng = StdRng::seed_from_u64(4);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    let len = 256;
    let (global, updates) = random_round(4, len, &mut rng);
    let params = params_for(4, 3, len, range);
    let quantizer = params.quantizer().unwrap();
    let mut federation = Federation::new(params, &global, &updates, 4);
    federation.step(&[]).unwrap();
    federation.step(&[]).unwrap();
    let inputs = federation.collect(&[]);
    assert_eq!(inputs.len(), 4);
    for (party, message) in &inputs {
        let SecureMessage::MaskedInput(masked) = message else {
            panic!("{party} sent {message:?} instead of a masked input");
        };
        let (_, encoded) = &federation.nodes[party];
        let clear = quantizer.quantize(encoded).unwrap().words;
        let equal = masked
            .words
            .iter()
            .zip(&clear)
            .filter(|(a, b)| a == b)
            .count();
        // A uniform mask leaves a word unchanged with probability 2^-32.
        assert!(
            equal <= 1,
            "{party}: {equal} of {len} words sent in the clear"
        );
        // Nor can the encoded update be read back from what the server holds.
        let read_back = quantizer.dequantize_sum(&masked.words);
        assert_ne!(read_back, quantizer.dequantize_sum(&clear));
    }
    // Earlier messages carry only public keys and sealed shares: none contains the input.
    federation.server.close_step().unwrap();
    let outcome = federation.step(&[]).unwrap();
    assert!(matches!(outcome, StepOutcome::Finished { .. }));
    let sum = federation.server.result().unwrap();
    let model = sum.mean_model(&global).unwrap();
    assert_mean_within_bound(&model, &global, &updates, &quantizer);
}

#[test]
fn messages_from_unknown_parties_at_the_wrong_step_duplicated_or_malformed_are_refused() {
    let mut rng = StdRng::seed_from_u64(5);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    let len = 6;
    let (global, updates) = random_round(4, len, &mut rng);
    let mut federation = Federation::new(params_for(4, 3, len, range), &global, &updates, 5);

    // Step 0: hospital-03 stays silent and is dropped.
    let keys = federation.answer("hospital-00");
    assert_eq!(
        federation.server.receive("mallory", keys.clone()),
        Err(SecureRoundError::UnknownParty {
            party: "mallory".into()
        })
    );
    assert!(matches!(
        federation.server.receive("hospital-01", keys.clone()),
        Err(SecureRoundError::SenderMismatch {
            claimed: 1,
            expected: 2,
            ..
        })
    ));
    federation
        .server
        .receive("hospital-00", keys.clone())
        .unwrap();
    assert_eq!(
        federation.server.receive("hospital-00", keys.clone()),
        Err(SecureRoundError::Duplicate {
            party: "hospital-00".into(),
            step: SecureStep::AdvertiseKeys
        })
    );
    assert!(federation.server.task_for("hospital-00").is_none());
    federation.collect(&["hospital-00", "hospital-03"]);
    assert_eq!(federation.server.waiting_for(), vec!["hospital-03"]);
    assert_eq!(
        federation.server.close_step().unwrap(),
        StepOutcome::Advanced {
            step: SecureStep::ShareKeys,
            dropped: vec!["hospital-03".into()]
        }
    );

    // Step 1: a late key advertisement is at the wrong step; the dropped party has no part.
    assert!(matches!(
        federation.server.receive("hospital-00", keys),
        Err(SecureRoundError::WrongStep {
            message: SecureStep::AdvertiseKeys,
            step: SecureStep::ShareKeys,
            ..
        })
    ));
    assert!(federation.server.task_for("hospital-03").is_none());
    let intruder = SecureMessage::ShareKeys(privacy::secagg::ShareKeys {
        round_id: 5,
        sender: 4,
        shares: Vec::new(),
    });
    assert_eq!(
        federation.server.receive("hospital-03", intruder),
        Err(SecureRoundError::NotInStep {
            party: "hospital-03".into(),
            step: SecureStep::ShareKeys
        })
    );
    let SecureMessage::ShareKeys(mut shares) = federation.answer("hospital-00") else {
        panic!("expected shares");
    };
    let mut stale = shares.clone();
    stale.round_id = 4;
    assert!(matches!(
        federation
            .server
            .receive("hospital-00", SecureMessage::ShareKeys(stale)),
        Err(SecureRoundError::WrongRound {
            expected: 5,
            got: 4,
            ..
        })
    ));
    let complete = shares.clone();
    shares.shares.pop();
    assert!(matches!(
        federation
            .server
            .receive("hospital-00", SecureMessage::ShareKeys(shares)),
        Err(SecureRoundError::Refused { .. })
    ));
    federation
        .server
        .receive("hospital-00", SecureMessage::ShareKeys(complete))
        .unwrap();
    federation.collect(&["hospital-00"]);
    assert!(federation.server.step_complete());
    federation.server.close_step().unwrap();

    // Step 2: a masked input of the wrong length.
    let SecureMessage::MaskedInput(input) = federation.answer("hospital-01") else {
        panic!("expected a masked input");
    };
    let mut short = input.clone();
    short.words.pop();
    let refused = federation
        .server
        .receive("hospital-01", SecureMessage::MaskedInput(short))
        .unwrap_err();
    assert!(
        matches!(&refused, SecureRoundError::Malformed { party, reason }
            if party == "hospital-01" && reason.contains("6 words, expected 7")),
        "{refused}"
    );
    // The refusals changed nothing: the round completes with the right mean.
    federation
        .server
        .receive("hospital-01", SecureMessage::MaskedInput(input))
        .unwrap();
    federation.collect(&["hospital-01"]);
    federation.server.close_step().unwrap();
    assert!(matches!(
        federation.step(&[]).unwrap(),
        StepOutcome::Finished { .. }
    ));
    assert!(matches!(
        federation.server.close_step(),
        Err(SecureRoundError::RoundFinished)
    ));
    let sum: &SecureSum = federation.server.result().unwrap();
    assert_eq!(sum.contributors, names(3));
    let quantizer = federation.server.params().quantizer().unwrap();
    let model = sum.mean_model(&global).unwrap();
    assert_mean_within_bound(&model, &global, &updates[..3], &quantizer);
}

#[test]
fn secagg_plus_topology_gives_the_same_mean() {
    let mut rng = StdRng::seed_from_u64(6);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    let (global, updates) = random_round(12, 32, &mut rng);
    let settings = SecureRoundSettings {
        round_id: 3,
        threshold: None,
        topology: Topology::Harary {
            num_shares: 5,
            seed: [7; 32],
        },
        range,
    };
    let dropouts = BTreeMap::from([("hospital-05".to_owned(), Step::MaskedInput)]);
    let sum = run_secure_round(&global, &updates, &dropouts, &settings, &mut rng).unwrap();
    let survivors: Vec<Update> = updates
        .iter()
        .filter(|u| u.0 != "hospital-05")
        .cloned()
        .collect();
    assert_eq!(sum.contributors.len(), 11);
    let model = sum.mean_model(&global).unwrap();
    assert_mean_within_bound(&model, &global, &survivors, &quantizer_for(12, range));
}

#[test]
fn updates_outside_the_quantisation_range_are_refused_not_clipped() {
    let mut rng = StdRng::seed_from_u64(7);
    let global = vec![0.0f32; 3];
    let updates: Vec<Update> = vec![
        ("a".into(), vec![0.1, 0.2, 0.3], 10),
        ("b".into(), vec![0.1, 0.2, 0.3], 1000),
    ];
    let result = run_secure_round(
        &global,
        &updates,
        &BTreeMap::new(),
        &settings(weighted_mean_range(100, 1.0).unwrap()),
        &mut rng,
    );
    assert!(
        matches!(result, Err(SecureRoundError::OutOfRange { index: 1, .. })),
        "{result:?}"
    );
}

#[test]
fn robust_rules_do_not_support_secure_aggregation() {
    for name in StrategyConfig::names() {
        let config = StrategyConfig::from_name(name).unwrap();
        let robust = matches!(name, "fedmedian" | "trimmed-mean" | "krum");
        assert_eq!(supports_secure_aggregation(&config), !robust, "{name}");
        if robust {
            let mut strategy = config.build().unwrap();
            let refused = aggregate_from_mean(strategy.as_mut(), &[0.0], &[1.0], 3).unwrap_err();
            assert_eq!(
                refused,
                SecureRoundError::IncompatibleStrategy {
                    rule: name.to_owned()
                }
            );
        }
    }
}

#[test]
fn aggregate_from_mean_matches_individual_aggregation_for_fedavg_and_fedadam() {
    let mut rng = StdRng::seed_from_u64(8);
    let range = weighted_mean_range(MAX_SAMPLES, MAX_DELTA).unwrap();
    let (mut global, _) = random_round(1, 40, &mut rng);

    // FedAvg from the exact weighted mean is bit-identical to FedAvg on the updates.
    let (_, updates) = random_round(5, 40, &mut rng);
    let individual = plain_fedavg(&global, &updates);
    let total: u64 = updates.iter().map(|u| u.2).sum();
    let mut fedavg = StrategyConfig::default().build().unwrap();
    assert_eq!(
        aggregate_from_mean(fedavg.as_mut(), &global, &individual, total).unwrap(),
        individual
    );

    // The server optimisers, over several rounds (their moments carry over), from the
    // secure sum: within rounding of the individual aggregation.
    for name in ["fedadam", "fedyogi", "fedadagrad", "fedprox", "fedavg"] {
        let config = StrategyConfig::from_name(name).unwrap();
        let mut on_updates = config.build().unwrap();
        let mut on_mean = config.build().unwrap();
        let mut secure_global = global.clone();
        for round in 0..3 {
            let updates: Vec<Update> = (0..5)
                .map(|i| {
                    let weights = global
                        .iter()
                        .map(|&g| g + rng.random_range(-0.5f32..0.5))
                        .collect();
                    (format!("h{i}"), weights, rng.random_range(10..=MAX_SAMPLES))
                })
                .collect();
            let expected = on_updates
                .aggregate(&global, &client_updates(&updates))
                .unwrap();
            let sum = run_secure_round(
                &secure_global,
                &updates,
                &BTreeMap::new(),
                &settings(range),
                &mut rng,
            )
            .unwrap();
            let next = aggregate_secure_sum(on_mean.as_mut(), &secure_global, &sum).unwrap();
            for (i, (&a, &b)) in next.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5,
                    "{name} round {round} coordinate {i}: {a} vs {b}"
                );
            }
            global = expected;
            secure_global = next;
        }
        assert_eq!(on_updates.state().len(), on_mean.state().len(), "{name}");
    }
}
