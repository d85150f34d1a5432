//! Centralised baselines computed in the same run as the federation, for
//! comparison only: pooled training (all hospitals' rows in one place) and
//! local-only training (each hospital alone). They read the data directly
//! because that is what they measure; the federation never does.

use std::collections::BTreeMap;

use fed::client::LocalData;
use fed::plan::TrainingPlan;
use learn::{Dataset, FeatureStats, Metrics, Standardizer};

use crate::results::MethodResult;

/// Evaluate a model on every hospital's test split (standardised with `s`).
fn evaluate_all(
    plan: &TrainingPlan,
    weights: &learn::Weights,
    s: &Standardizer,
    sites: &[(String, LocalData)],
) -> anyhow::Result<(BTreeMap<String, f64>, Metrics)> {
    let mut per = BTreeMap::new();
    let mut all = Vec::new();
    for (name, data) in sites {
        let m = learn::evaluate(&plan.model, weights, &s.apply(&data.test)?)?;
        per.insert(name.clone(), m.accuracy);
        all.push(m);
    }
    Ok((per, Metrics::pooled(&all)))
}

fn train_centrally(
    plan: &TrainingPlan,
    train: &Dataset,
    s: &Standardizer,
) -> anyhow::Result<learn::Weights> {
    let mut config = plan.training.clone();
    // The same number of passes over the data as the federation's hospitals make.
    config.epochs *= plan.rounds as usize;
    config.proximal_mu = 0.0;
    let start = plan.model.init(plan.seed);
    let (weights, _) = learn::train(&plan.model, &start, &s.apply(train)?, &config, plan.seed)?;
    Ok(weights)
}

/// Pooled training: all training rows together, pooled standardisation.
pub fn pooled(plan: &TrainingPlan, sites: &[(String, LocalData)]) -> anyhow::Result<MethodResult> {
    let parts: Vec<&Dataset> = sites.iter().map(|(_, d)| &d.train).collect();
    let train = Dataset::concat(&parts)?;
    let s = FeatureStats::of(&train).standardizer()?;
    let weights = train_centrally(plan, &train, &s)?;
    let (per_hospital, pooled) = evaluate_all(plan, &weights, &s, sites)?;
    Ok(MethodResult {
        method: "pooled training".into(),
        per_hospital,
        pooled: pooled.accuracy,
        pooled_loss: pooled.loss,
    })
}

/// Local-only training: one hospital's rows and its own standardisation,
/// tested on every hospital.
pub fn local_only(
    plan: &TrainingPlan,
    sites: &[(String, LocalData)],
) -> anyhow::Result<Vec<MethodResult>> {
    sites
        .iter()
        .map(|(name, data)| {
            let s = FeatureStats::of(&data.train).standardizer()?;
            let weights = train_centrally(plan, &data.train, &s)?;
            let (per_hospital, pooled) = evaluate_all(plan, &weights, &s, sites)?;
            Ok(MethodResult {
                method: format!("local {name}"),
                per_hospital,
                pooled: pooled.accuracy,
                pooled_loss: pooled.loss,
            })
        })
        .collect()
}
