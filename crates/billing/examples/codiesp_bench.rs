//! CodiEsp benchmark: pooled, federated (FedAvg over simulated hospitals in process, each a
//! `billing::federated::LocalCoding`, the label space agreed from summed code counts) and
//! local-only training of the code model on the train split, each scored on the dev split
//! (or `$SPLIT`), beside a baseline's predictions when `$BASELINE` names a predictions file;
//! prints one JSON object. `benches/peers/billing_bench.sh` runs it with the scikit-learn
//! baseline; the figures go to docs/BENCHMARKS.md.
//!
//! usage: codiesp_bench CODIESP_DIR [HOSPITALS] [ROUNDS] [LOCAL_EPOCHS] [es|en]
//! env: BUCKETS_LOG2 DIM MAX_N EPOCHS BATCH LR WD (model and training), MIN_COUNT (label space),
//! DP_CLIP + DP_NOISE (DP-SGD in the federated run), SPLIT, BASELINE, BASELINE_S.

use std::path::PathBuf;
use std::time::Instant;

use billing::codiesp::{code_cases, evaluate};
use billing::corpus::{Lang, Split};
use billing::features::Featurizer;
use billing::federated::{
    LocalCoding, agreed_labels, code_counts, public_code_list, split_documents,
};
use billing::metrics::Predictions;
use billing::{Coder, CoderSpec, DpSgd, TrainConfig, Weights, examples, train};
use privacy::accountant::RdpAccountant;
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(args.first().ok_or("usage: codiesp_bench CODIESP_DIR ...")?);
    let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |a| a.parse());
    let (hospitals, rounds, local_epochs) = (arg(1, 8)?, arg(2, 30)?, arg(3, 2)?);
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
    let split_name = std::env::var("SPLIT").unwrap_or_else(|_| "dev".into());
    let train_split = Split::load(&root.join("train"), lang)?;
    let dev = Split::load(&root.join(&split_name), lang)?;
    let featurizer = Featurizer {
        buckets: 1 << env("BUCKETS_LOG2", 15.0) as u32,
        max_n: env("MAX_N", 2.0) as usize,
    };
    let defaults = TrainConfig::default();
    let cfg = TrainConfig {
        epochs: env("EPOCHS", defaults.epochs as f64) as usize,
        batch_size: env("BATCH", defaults.batch_size as f64) as usize,
        learning_rate: env("LR", defaults.learning_rate),
        weight_decay: env("WD", defaults.weight_decay),
        dp: None,
    };

    // Hospital h holds every case whose position (sorted by id) is h modulo the hospitals.
    let hospitals = hospitals.max(1);
    let shares: Vec<Split> = (0..hospitals)
        .map(|h| train_split.share(h, hospitals))
        .collect();
    // Label space: the public list stands for the CMS tables (here: the codes of the public
    // CodiEsp train split); each hospital's counts over it are summed (in the federation, under
    // secure aggregation) and codes counted at least MIN_COUNT times are kept.
    let public = public_code_list(split_documents(&train_split).into_iter().flatten());
    let mut summed = vec![0f32; public.len()];
    for s in &shares {
        let counts = code_counts(&public, split_documents(s));
        summed.iter_mut().zip(counts).for_each(|(a, c)| *a += c);
    }
    let min_count = env("MIN_COUNT", 1.0) as u32;
    let spec = CoderSpec {
        lang,
        featurizer,
        dim: env("DIM", 64.0) as usize,
        labels: agreed_labels(&public, &summed, min_count)?,
    };

    let baseline = std::env::var("BASELINE").ok();
    let mut out = json!({
        "split": split_name,
        "parameters": spec.layout().iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>(),
        "public_codes": public.len(), "labels": spec.labels.len(), "min_count": min_count,
        "config": cfg, "featurizer": featurizer, "dim": spec.dim, "hospitals": hospitals,
    });
    let score = |pred: &Predictions| -> Result<Value, billing::Error> {
        Ok(serde_json::to_value(evaluate(pred, &dev))?)
    };
    let score_model = |weights: &Weights| -> Result<Value, billing::Error> {
        let coder = Coder::new(spec.clone(), weights.clone())?;
        let clock = Instant::now();
        let pred = code_cases(&coder, &dev.cases, 100)?;
        let ms = 1000.0 * clock.elapsed().as_secs_f64() / dev.cases.len() as f64;
        let mut report = score(&pred)?;
        report["ms_per_case"] = ms.into();
        Ok(report)
    };

    if let Some(path) = baseline {
        let pred: Predictions = serde_json::from_slice(&std::fs::read(&path)?)?;
        out["baseline"] = score(&pred)?;
        out["baseline"]["train_s"] = env("BASELINE_S", f64::NAN).into();
        eprintln!("baseline: {}", out["baseline"]);
    }

    let data = examples(&spec, &train_split);
    let clock = Instant::now();
    let (pooled, _) = train(&spec, &spec.init(0), &data, &cfg, 0)?;
    let seconds = clock.elapsed().as_secs_f64();
    out["pooled"] = score_model(&pooled)?;
    out["pooled"]["train_s_per_epoch"] = (seconds / cfg.epochs as f64).into();
    eprintln!("pooled: {}", out["pooled"]);

    let dp = match (std::env::var("DP_CLIP"), std::env::var("DP_NOISE")) {
        (Ok(clip), Ok(noise)) => Some(DpSgd {
            clip_norm: clip.parse()?,
            noise_multiplier: noise.parse()?,
        }),
        _ => None,
    };
    let local_cfg = TrainConfig {
        epochs: local_epochs,
        dp,
        ..cfg.clone()
    };
    let mut sites = shares
        .iter()
        .map(|s| LocalCoding::from_split(spec.clone(), s, local_cfg.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let clock = Instant::now();
    let federated = fedavg(&spec, &mut sites, rounds)?;
    let seconds = clock.elapsed().as_secs_f64();
    out["federated"] = score_model(&federated)?;
    out["federated"]["rounds"] = rounds.into();
    out["federated"]["local"] = serde_json::to_value(&local_cfg)?;
    out["federated"]["train_s_per_round"] = (seconds / rounds.max(1) as f64).into();
    if local_cfg.dp.is_some() {
        let mut epsilons = Vec::new();
        for site in &sites {
            let mut accountant = RdpAccountant::new();
            for event in site.privacy_events() {
                accountant.compose(event)?;
            }
            epsilons.push(accountant.epsilon(1e-5)?.epsilon);
        }
        out["federated"]["epsilon_per_hospital_at_delta_1e-5"] = json!(epsilons);
    }
    eprintln!("federated: {}", out["federated"]);

    let mut local = Vec::new();
    for (h, site) in shares.iter().enumerate() {
        let (weights, _) = train(&spec, &spec.init(0), &examples(&spec, site), &cfg, h as u64)?;
        local.push(score_model(&weights)?);
    }
    let mean = |system: &str| {
        local
            .iter()
            .map(|r| r[system]["map"].as_f64().unwrap_or(0.0))
            .sum::<f64>()
            / local.len() as f64
    };
    out["local_only_mean_map"] = json!({
        "diagnosis": mean("diagnosis"), "procedure": mean("procedure"),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// FedAvg: each round every hospital trains from the global weights
/// ([`LocalCoding::train`]), which become the document-weighted mean of their results.
fn fedavg(
    spec: &CoderSpec,
    sites: &mut [LocalCoding],
    rounds: usize,
) -> Result<Weights, billing::Error> {
    let mut global = spec.init(0);
    let hospitals = sites.len();
    for round in 0..rounds {
        let mut sum = vec![0f32; global.len()];
        let mut total = 0u64;
        for (h, site) in sites.iter_mut().enumerate() {
            let (local, samples, _, _) = site.train(&global, (round * hospitals + h) as u64)?;
            total += samples;
            sum.iter_mut()
                .zip(local.values())
                .for_each(|(s, v)| *s += samples as f32 * v);
        }
        sum.iter_mut().for_each(|s| *s /= total as f32);
        global = global.with_values(sum)?;
    }
    Ok(global)
}
