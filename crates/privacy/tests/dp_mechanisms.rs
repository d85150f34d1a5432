//! Behaviour of the differential-privacy mechanisms, alone and through secure aggregation.

use std::collections::BTreeMap;

use privacy::accountant::RdpAccountant;
use privacy::dp::{
    AdaptiveClipping, DpError, DpFedAvg, clip_and_sum, l2_norm, noisy_mean, poisson_sample,
};
use privacy::secagg::{Quantizer, RoundConfig, Step, Topology, run_round};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn std_dev(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// The noise in the sum of `contributors` privatised zero deltas, per coordinate.
fn summed_noise(
    mechanism: &DpFedAvg,
    contributors: usize,
    dim: usize,
    rng: &mut ChaCha20Rng,
) -> Vec<f64> {
    let mut sum = vec![0f64; dim];
    for _ in 0..contributors {
        let mut delta = vec![0f32; dim];
        mechanism.privatize_delta(&mut delta, rng).unwrap();
        sum.iter_mut()
            .zip(&delta)
            .for_each(|(s, &d)| *s += f64::from(d));
    }
    sum
}

#[test]
fn distributed_noise_adds_up_to_the_central_noise() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mechanism = DpFedAvg {
        clip_norm: 0.5,
        noise_multiplier: 1.2,
        min_contributors: 8,
    };
    let noise = summed_noise(&mechanism, 8, 40_000, &mut rng);
    let expected = 1.2 * 0.5;
    assert!(
        (std_dev(&noise) / expected - 1.0).abs() < 0.02,
        "{} vs {expected}",
        std_dev(&noise)
    );
}

#[test]
fn more_contributors_than_the_minimum_only_add_noise() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mechanism = DpFedAvg {
        clip_norm: 1.0,
        noise_multiplier: 1.0,
        min_contributors: 6,
    };
    let noise = summed_noise(&mechanism, 9, 40_000, &mut rng);
    let expected = (9.0f64 / 6.0).sqrt();
    assert!(std_dev(&noise) >= 1.0);
    assert!((std_dev(&noise) / expected - 1.0).abs() < 0.02);
}

#[test]
fn privatised_deltas_aggregate_securely_to_their_sum() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mechanism = DpFedAvg {
        clip_norm: 1.0,
        noise_multiplier: 1.0,
        min_contributors: 4,
    };
    let clients = 6u32;
    let quantizer = Quantizer::new(mechanism.quantization_range(), clients).unwrap();
    let deltas: Vec<Vec<f32>> = (0..clients)
        .map(|_| {
            let mut delta: Vec<f32> = (0..500).map(|_| rng.random_range(-0.2f32..0.2)).collect();
            mechanism.privatize_delta(&mut delta, &mut rng).unwrap();
            delta
        })
        .collect();
    let quantized: Vec<_> = deltas
        .iter()
        .map(|d| quantizer.quantize(d).unwrap())
        .collect();
    assert!(
        quantized.iter().all(|q| q.clipped == 0),
        "the range holds the noised deltas"
    );
    let config = RoundConfig {
        round_id: 9,
        clients: (0..clients).collect(),
        threshold: 4,
        topology: Topology::Complete,
        vector_len: 500,
    };
    let words: Vec<Vec<u32>> = quantized.into_iter().map(|q| q.words).collect();
    // Client 5 drops before sending its masked input; 5 ≥ min_contributors remain.
    let dropouts = BTreeMap::from([(5, Step::MaskedInput)]);
    let outcome = run_round(&config, &words, &dropouts, &mut rng).unwrap();
    let sum = quantizer.dequantize_sum(&outcome.sum);
    let bound = quantizer.sum_error_bound(5) + 1e-6;
    for (i, &value) in sum.iter().enumerate() {
        let expected: f64 = deltas[..5].iter().map(|d| f64::from(d[i])).sum();
        assert!(
            (f64::from(value) - expected).abs() <= bound,
            "coordinate {i}"
        );
    }
}

#[test]
fn dp_fedavg_rounds_are_accounted_as_sampled_gaussian_steps() {
    let mechanism = DpFedAvg {
        clip_norm: 1.0,
        noise_multiplier: 1.1,
        min_contributors: 3,
    };
    let mut accountant = RdpAccountant::new();
    accountant
        .compose(&mechanism.accounting_event(0.01, 10_000))
        .unwrap();
    assert!((accountant.epsilon(1e-5).unwrap().epsilon - 5.632_01).abs() < 1e-4);
}

#[test]
fn adaptive_clip_norm_tracks_the_target_quantile() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    // Update norms uniform in [0, 10]: the median is 5.
    let mut clipping = AdaptiveClipping::new(0.5, 0.5, 0.2, 1.0).unwrap();
    let clients = 100;
    for _ in 0..300 {
        let report_sum: f64 = (0..clients)
            .map(|_| clipping.client_report(rng.random_range(0.0..10.0), clients, &mut rng))
            .sum();
        clipping.update(report_sum, clients).unwrap();
    }
    assert!(
        (clipping.clip_norm() - 5.0).abs() < 0.6,
        "clip norm {}",
        clipping.clip_norm()
    );
}

#[test]
fn count_noise_takes_its_share_of_the_noise_multiplier() {
    let z = AdaptiveClipping::update_noise_multiplier(1.0, 10.0).unwrap();
    assert!((z - (1.0f64 - 1.0 / 400.0).powf(-0.5)).abs() < 1e-12);
    assert!(AdaptiveClipping::update_noise_multiplier(1.0, 0.5).is_err());
    assert!(AdaptiveClipping::new(1.0, 1.5, 0.2, 0.0).is_err());
    assert!(
        AdaptiveClipping::new(1.0, 0.5, 0.2, 0.0)
            .unwrap()
            .update(1.0, 0)
            .is_err()
    );
}

#[test]
fn adaptive_clipping_state_is_checked_when_loaded() {
    let clipping = AdaptiveClipping::new(2.0, 0.5, 0.2, 1.0).unwrap();
    let json = serde_json::to_string(&clipping).unwrap();
    assert_eq!(
        serde_json::from_str::<AdaptiveClipping>(&json).unwrap(),
        clipping
    );
    let bad = json.replace("0.5", "1.5");
    assert!(serde_json::from_str::<AdaptiveClipping>(&bad).is_err());
}

#[test]
fn poisson_sampling_draws_the_expected_fraction() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let batch = poisson_sample(100_000, 0.01, &mut rng).unwrap();
    assert!((batch.len() as f64 - 1000.0).abs() < 5.0 * 1000f64.sqrt());
    assert!(batch.windows(2).all(|w| w[0] < w[1]));
    assert!(poisson_sample(10, 1.5, &mut rng).is_err());
    assert_eq!(poisson_sample(10, 1.0, &mut rng).unwrap().len(), 10);
}

#[test]
fn per_example_gradients_are_clipped_before_summing() {
    // Three examples of dimension 2: norms 5, 0.5 and 10.
    let gradients = [3.0f32, 4.0, 0.3, 0.4, 6.0, 8.0];
    let clipped = clip_and_sum(&gradients, 2, 1.0).unwrap();
    assert_eq!((clipped.examples, clipped.clipped), (3, 2));
    assert!(
        (l2_norm(&clipped.sum) - 2.5).abs() < 1e-5,
        "two unit vectors and one of 0.5, aligned"
    );
    assert!(matches!(
        clip_and_sum(&gradients, 4, 1.0),
        Err(DpError::WrongLength { .. })
    ));
    assert_eq!(
        clip_and_sum(&[1.0, f32::INFINITY], 1, 1.0),
        Err(DpError::NonFinite { index: 1 })
    );
}

#[test]
fn noisy_mean_divides_by_the_expected_batch_size() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut sum = vec![4.0f32, -2.0];
    noisy_mean(&mut sum, 1.0, 0.0, 8.0, &mut rng).unwrap();
    assert_eq!(sum, vec![0.5, -0.25]);
    let mut sum = vec![0f32; 50_000];
    noisy_mean(&mut sum, 2.0, 1.5, 10.0, &mut rng).unwrap();
    let values: Vec<f64> = sum.iter().map(|&v| f64::from(v)).collect();
    assert!((std_dev(&values) - 0.3).abs() < 0.01, "z·C / batch = 0.3");
    assert!(noisy_mean(&mut [0.0], 1.0, 1.0, 0.0, &mut rng).is_err());
}
