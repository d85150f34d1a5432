//! Benchmark entry point: a secure round against a plain round on the same inputs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::{ClientId, Quantizer, RoundConfig, SecAggError, Topology, plain_sum, run_round};

/// Timings of one benchmark (medians over the repetitions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundBenchmark {
    /// Number of clients.
    pub clients: u32,
    /// Parameters per client.
    pub params: usize,
    /// Repetitions timed.
    pub repetitions: usize,
    /// Plain round: quantise every input, sum in Z_2^32, dequantise.
    pub plain: Duration,
    /// Secure round: quantise every input, the whole protocol in one process (key generation,
    /// agreement, sharing, encryption, masking, unmasking), dequantise.
    pub secure: Duration,
    /// Whether both rounds gave the same sum (they must).
    pub sums_match: bool,
}

impl RoundBenchmark {
    /// Secure round time over plain round time.
    pub fn ratio(&self) -> f64 {
        self.secure.as_secs_f64() / self.plain.as_secs_f64()
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Times `repetitions` plain and secure rounds of `clients` × `params` uniform values in
/// [−1, 1] (drawn from `seed`), with the smallest threshold `topology` allows and no dropouts.
/// Run it in a release build.
///
/// # Errors
/// [`SecAggError::InvalidConfig`] for fewer than two clients, no parameters or no repetitions;
/// otherwise any protocol error (there should be none).
pub fn benchmark_round(
    clients: u32,
    params: usize,
    topology: Topology,
    repetitions: usize,
    seed: u64,
) -> Result<RoundBenchmark, SecAggError> {
    if repetitions == 0 {
        return Err(SecAggError::InvalidConfig(
            "at least one repetition is needed".into(),
        ));
    }
    let mut config = RoundConfig {
        round_id: 1,
        clients: (0..clients).collect::<Vec<ClientId>>(),
        threshold: 0,
        topology,
        vector_len: params,
    };
    config.threshold = config.minimal_threshold();
    config.validate()?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let inputs: Vec<Vec<f32>> = (0..clients)
        .map(|_| {
            (0..params)
                .map(|_| rng.random_range(-1.0f32..=1.0))
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let quantizer = Quantizer::new(1.0, clients)?;
    let (mut plain_times, mut secure_times) = (Vec::new(), Vec::new());
    let mut sums_match = true;
    for _ in 0..repetitions {
        let start = Instant::now();
        let plain = plain_sum(&quantizer, &refs)?;
        plain_times.push(start.elapsed());

        let start = Instant::now();
        let words = refs
            .iter()
            .map(|input| quantizer.quantize(input).map(|q| q.words))
            .collect::<Result<Vec<_>, _>>()?;
        let outcome = run_round(&config, &words, &BTreeMap::new(), &mut rng)?;
        let secure = quantizer.dequantize_sum(&outcome.sum);
        secure_times.push(start.elapsed());
        sums_match &= plain == secure;
    }
    Ok(RoundBenchmark {
        clients,
        params,
        repetitions,
        plain: median(plain_times),
        secure: median(secure_times),
        sums_match,
    })
}
