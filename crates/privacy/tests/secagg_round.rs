//! Secure-aggregation rounds end to end: correctness against the plain sum, recovery from
//! dropouts at every step, and clean failure below the threshold.

use std::collections::BTreeMap;

use privacy::secagg::{
    ClientId, Quantizer, RoundConfig, SecAggError, Step, Topology, plain_sum, run_round,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn config(clients: u32, threshold: usize, topology: Topology, vector_len: usize) -> RoundConfig {
    RoundConfig {
        round_id: 42,
        clients: (0..clients).collect(),
        threshold,
        topology,
        vector_len,
    }
}

fn random_updates(clients: u32, len: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<f32>> {
    (0..clients)
        .map(|_| (0..len).map(|_| rng.random_range(-1.0f32..=1.0)).collect())
        .collect()
}

/// Runs a round over float updates; returns the dequantised sum and the contributors.
fn secure_sum(
    config: &RoundConfig,
    quantizer: &Quantizer,
    updates: &[Vec<f32>],
    dropouts: &BTreeMap<ClientId, Step>,
    rng: &mut ChaCha20Rng,
) -> Result<(Vec<f32>, Vec<ClientId>), SecAggError> {
    let words: Vec<Vec<u32>> = updates
        .iter()
        .map(|u| quantizer.quantize(u).unwrap().words)
        .collect();
    let outcome = run_round(config, &words, dropouts, rng)?;
    Ok((quantizer.dequantize_sum(&outcome.sum), outcome.contributors))
}

/// Checks `sum` against the plain quantised sum and the exact sum of the contributors.
fn assert_sum_of(
    sum: &[f32],
    contributors: &[ClientId],
    updates: &[Vec<f32>],
    quantizer: &Quantizer,
) {
    let included: Vec<&[f32]> = contributors
        .iter()
        .map(|&id| updates[id as usize].as_slice())
        .collect();
    assert_eq!(
        sum,
        plain_sum(quantizer, &included).unwrap(),
        "secure sum = plain quantised sum"
    );
    let bound = quantizer.sum_error_bound(included.len()) * (1.0 + 1e-9);
    for (i, &value) in sum.iter().enumerate() {
        let exact: f64 = included.iter().map(|u| f64::from(u[i])).sum();
        // The f32 result adds its own rounding (half an ulp of a value below 10).
        assert!(
            (f64::from(value) - exact).abs() <= bound + 5e-7,
            "coordinate {i}: {value} vs {exact}"
        );
    }
}

#[test]
fn unmasked_sum_equals_the_plain_sum_for_random_updates() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (clients, len) in [(2, 10), (5, 1000), (9, 4321)] {
        let config = config(clients, clients as usize / 2 + 1, Topology::Complete, len);
        let quantizer = Quantizer::new(1.0, clients).unwrap();
        let updates = random_updates(clients, len, &mut rng);
        let (sum, contributors) =
            secure_sum(&config, &quantizer, &updates, &BTreeMap::new(), &mut rng).unwrap();
        assert_eq!(contributors, config.clients);
        assert_sum_of(&sum, &contributors, &updates, &quantizer);
    }
}

#[test]
fn secagg_plus_graph_gives_the_same_sum() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let topology = Topology::Harary {
        num_shares: 5,
        seed: [9; 32],
    };
    let config = config(16, 3, topology, 300);
    let quantizer = Quantizer::new(1.0, 16).unwrap();
    let updates = random_updates(16, 300, &mut rng);
    let (sum, contributors) =
        secure_sum(&config, &quantizer, &updates, &BTreeMap::new(), &mut rng).unwrap();
    assert_eq!(contributors.len(), 16);
    assert_sum_of(&sum, &contributors, &updates, &quantizer);
}

#[test]
fn dropouts_of_a_third_at_each_step_are_recovered() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let clients = 12;
    let config = config(clients, 7, Topology::Complete, 257);
    let quantizer = Quantizer::new(1.0, clients).unwrap();
    let updates = random_updates(clients, 257, &mut rng);
    for step in [
        Step::AdvertiseKeys,
        Step::ShareKeys,
        Step::MaskedInput,
        Step::Unmasking,
    ] {
        let dropouts: BTreeMap<ClientId, Step> =
            [1, 4, 6, 11].into_iter().map(|id| (id, step)).collect();
        let (sum, contributors) =
            secure_sum(&config, &quantizer, &updates, &dropouts, &mut rng).unwrap();
        // Clients that dropped only at unmasking had sent their input: it is in the sum.
        let expected: Vec<ClientId> = if step == Step::Unmasking {
            config.clients.clone()
        } else {
            config
                .clients
                .iter()
                .copied()
                .filter(|id| !dropouts.contains_key(id))
                .collect()
        };
        assert_eq!(contributors, expected, "dropouts at {step:?}");
        assert_sum_of(&sum, &contributors, &updates, &quantizer);
    }
}

#[test]
fn dropouts_spread_over_every_step_are_recovered() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let clients = 12;
    let config = config(clients, 7, Topology::Complete, 100);
    let quantizer = Quantizer::new(1.0, clients).unwrap();
    let updates = random_updates(clients, 100, &mut rng);
    let dropouts = BTreeMap::from([
        (0, Step::AdvertiseKeys),
        (3, Step::ShareKeys),
        (7, Step::MaskedInput),
        (8, Step::MaskedInput),
        (10, Step::Unmasking),
    ]);
    let (sum, contributors) =
        secure_sum(&config, &quantizer, &updates, &dropouts, &mut rng).unwrap();
    assert_eq!(contributors, vec![1, 2, 4, 5, 6, 9, 10, 11]);
    assert_sum_of(&sum, &contributors, &updates, &quantizer);
}

#[test]
fn secagg_plus_recovers_dropped_neighbours() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let clients = 15;
    let topology = Topology::Harary {
        num_shares: 7,
        seed: [3; 32],
    };
    let config = config(clients, 4, topology, 64);
    let quantizer = Quantizer::new(1.0, clients).unwrap();
    let updates = random_updates(clients, 64, &mut rng);
    // Any 7-client neighbourhood keeps at least 4 holders when 3 clients drop.
    for step in [Step::ShareKeys, Step::MaskedInput, Step::Unmasking] {
        let dropouts: BTreeMap<ClientId, Step> =
            [2, 3, 9].into_iter().map(|id| (id, step)).collect();
        let (sum, contributors) =
            secure_sum(&config, &quantizer, &updates, &dropouts, &mut rng).unwrap();
        assert_sum_of(&sum, &contributors, &updates, &quantizer);
    }
}

#[test]
fn round_fails_cleanly_below_the_threshold() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let config = config(6, 4, Topology::Complete, 8);
    let words = vec![vec![1u32; 8]; 6];
    for step in [
        Step::AdvertiseKeys,
        Step::ShareKeys,
        Step::MaskedInput,
        Step::Unmasking,
    ] {
        let dropouts: BTreeMap<ClientId, Step> =
            [0, 2, 5].into_iter().map(|id| (id, step)).collect();
        let result = run_round(&config, &words, &dropouts, &mut rng);
        assert!(
            matches!(
                result,
                Err(SecAggError::TooFewClients {
                    available: 3,
                    threshold: 4,
                    ..
                })
            ),
            "dropouts at {step:?}: {result:?}"
        );
    }
}

#[test]
fn threshold_must_be_a_strict_majority_of_holders() {
    for (threshold, valid) in [(2, false), (3, false), (4, true), (6, true), (7, false)] {
        let result = config(6, threshold, Topology::Complete, 1).validate();
        assert_eq!(result.is_ok(), valid, "threshold {threshold}");
    }
    let harary = config(
        20,
        3,
        Topology::Harary {
            num_shares: 5,
            seed: [0; 32],
        },
        1,
    );
    assert!(harary.validate().is_ok());
    let even = config(
        20,
        3,
        Topology::Harary {
            num_shares: 4,
            seed: [0; 32],
        },
        1,
    );
    assert!(even.validate().is_err());
    let unsorted = RoundConfig {
        clients: vec![2, 1, 3],
        ..config(3, 2, Topology::Complete, 1)
    };
    assert!(unsorted.validate().is_err());
}
