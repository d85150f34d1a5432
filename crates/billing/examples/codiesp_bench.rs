//! CodiEsp benchmark: pooled, federated (FedAvg over simulated hospitals, in process) and
//! local-only training of the code model on the train split, each scored on the dev split;
//! prints one JSON object. Figures go to docs/BENCHMARKS.md.
//!
//! usage: codiesp_bench CODIESP_DIR [HOSPITALS] [ROUNDS] [LOCAL_EPOCHS] [es|en]

use std::path::PathBuf;
use std::time::Instant;

use billing::codiesp::{code_cases, evaluate, spec_for};
use billing::corpus::{Lang, Split};
use billing::features::Featurizer;
use billing::{Coder, CoderSpec, Example, TrainConfig, Weights, examples, train};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(args.first().ok_or("usage: codiesp_bench CODIESP_DIR ...")?);
    let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |a| a.parse());
    let (hospitals, rounds, local_epochs) = (arg(1, 8)?, arg(2, 10)?, arg(3, 2)?);
    let lang = match args.get(4).map(String::as_str) {
        Some("en") => Lang::En,
        _ => Lang::Es,
    };
    let env = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let train_split = Split::load(&root.join("train"), lang)?;
    let dev = Split::load(&root.join("dev"), lang)?;
    let featurizer = Featurizer {
        buckets: 1 << env("BUCKETS_LOG2", 15.0) as u32,
        max_n: env("MAX_N", 2.0) as usize,
    };
    let spec = spec_for(&train_split, lang, featurizer, env("DIM", 64.0) as usize);
    let defaults = TrainConfig::default();
    let cfg = TrainConfig {
        epochs: env("EPOCHS", defaults.epochs as f64) as usize,
        batch_size: env("BATCH", defaults.batch_size as f64) as usize,
        learning_rate: env("LR", defaults.learning_rate),
        weight_decay: env("WD", defaults.weight_decay),
    };
    let data = examples(&spec, &train_split);
    let score = |weights: &Weights| -> Result<serde_json::Value, billing::Error> {
        let coder = Coder::new(spec.clone(), weights.clone())?;
        let clock = Instant::now();
        let pred = code_cases(&coder, &dev.cases, 100)?;
        let ms = 1000.0 * clock.elapsed().as_secs_f64() / dev.cases.len() as f64;
        let mut report = serde_json::to_value(evaluate(&pred, &dev))?;
        report["ms_per_case"] = ms.into();
        Ok(report)
    };
    let mut out = serde_json::json!({
        "parameters": spec.layout().iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>(),
        "labels": spec.labels.len(), "config": cfg, "featurizer": featurizer, "dim": spec.dim,
    });

    let clock = Instant::now();
    let (pooled, _) = train(&spec, &spec.init(0), &data, &cfg, 0)?;
    let seconds = clock.elapsed().as_secs_f64();
    out["pooled"] = score(&pooled)?;
    out["pooled"]["train_s_per_epoch"] = (seconds / cfg.epochs as f64).into();
    eprintln!("pooled: {}", out["pooled"]);

    if hospitals > 0 {
        // Hospital h holds every case whose position is h modulo the number of hospitals.
        let shares: Vec<Vec<Example>> = (0..hospitals)
            .map(|h| data.iter().skip(h).step_by(hospitals).cloned().collect())
            .collect();
        let local_cfg = TrainConfig {
            epochs: local_epochs,
            ..cfg.clone()
        };
        let clock = Instant::now();
        let federated = fedavg(&spec, &shares, &local_cfg, rounds)?;
        let seconds = clock.elapsed().as_secs_f64();
        out["federated"] = score(&federated)?;
        out["federated"]["rounds"] = rounds.into();
        out["federated"]["train_s_per_round"] = (seconds / rounds as f64).into();
        eprintln!("federated: {}", out["federated"]);
        let mut local = Vec::new();
        for (h, share) in shares.iter().enumerate() {
            let (weights, _) = train(&spec, &spec.init(0), share, &cfg, h as u64)?;
            local.push(score(&weights)?);
        }
        let mean = |system: &str| {
            local
                .iter()
                .map(|r| r[system]["map"].as_f64().unwrap_or(0.0))
                .sum::<f64>()
                / local.len() as f64
        };
        out["local_only_mean_map"] = serde_json::json!({
            "diagnosis": mean("diagnosis"), "procedure": mean("procedure"),
        });
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// FedAvg: each round every hospital trains from the global weights, which become the
/// case-weighted mean of their results.
fn fedavg(
    spec: &CoderSpec,
    shares: &[Vec<Example>],
    cfg: &TrainConfig,
    rounds: usize,
) -> Result<Weights, billing::Error> {
    let mut global = spec.init(0);
    let total: usize = shares.iter().map(Vec::len).sum();
    for round in 0..rounds {
        let mut sum = vec![0f32; global.len()];
        for (h, share) in shares.iter().enumerate() {
            let (local, _) = train(spec, &global, share, cfg, (round * shares.len() + h) as u64)?;
            let weight = share.len() as f32 / total as f32;
            sum.iter_mut()
                .zip(local.values())
                .for_each(|(s, v)| *s += weight * v);
        }
        global = global.with_values(sum)?;
    }
    Ok(global)
}
