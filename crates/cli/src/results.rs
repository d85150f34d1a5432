//! The demo's results, as printed, written to `--json` and plotted.

use std::collections::BTreeMap;

use fed::plan_run::PlanState;
use learn::Metrics;
use serde::Serialize;

/// Test accuracy of one method.
#[derive(Clone, Debug, Serialize)]
pub struct MethodResult {
    /// e.g. `federated fedavg`, `pooled`, `local cleveland`.
    pub method: String,
    /// Test accuracy on each hospital's test split.
    pub per_hospital: BTreeMap<String, f64>,
    /// Accuracy on the pooled test set (all hospitals' test splits).
    pub pooled: f64,
    /// Pooled test loss.
    pub pooled_loss: f64,
}

/// The federated model at one point of training.
#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    /// Rounds aggregated so far.
    pub round: u32,
    /// Pooled test accuracy.
    pub pooled_accuracy: f64,
    /// Pooled test loss.
    pub pooled_loss: f64,
    /// Test accuracy per hospital.
    pub accuracy: BTreeMap<String, f64>,
    /// Test loss per hospital.
    pub loss: BTreeMap<String, f64>,
}

/// FLamby's published pooled-test accuracies (seed 42, logistic regression).
pub const FLAMBY: [(&str, f64); 11] = [
    ("Pooled training", 0.791),
    ("Local 0 (Cleveland)", 0.787),
    ("Local 1 (Hungary)", 0.728),
    ("Local 2 (Switzerland)", 0.748),
    ("Local 3 (Long Beach VA)", 0.736),
    ("FedAvg", 0.776),
    ("FedProx", 0.776),
    ("Scaffold", 0.780),
    ("Cyclic", 0.783),
    ("FedAdam", 0.803),
    ("FedYogi / FedAdagrad", 0.807),
];

/// Everything one demo run produced.
#[derive(Clone, Debug, Serialize)]
pub struct DemoResults {
    /// Seed of the run.
    pub seed: u64,
    /// Rounds trained.
    pub rounds: u32,
    /// Aggregation rule.
    pub strategy: String,
    /// The plan's id.
    pub plan_id: String,
    /// Hash of the final federated model.
    pub final_model_sha256: String,
    /// Federated model, pooled training and local-only training.
    pub methods: Vec<MethodResult>,
    /// The federated model's test metrics after each round.
    pub curve: Vec<CurvePoint>,
    /// Epsilon each hospital spent (DP-SGD runs only).
    pub epsilon: BTreeMap<String, f64>,
    /// Accuracy against epsilon for several noise levels (`--dp`).
    pub privacy_tradeoff: Option<PrivacyTradeoff>,
    /// Whether updates were combined by secure aggregation.
    pub secure_aggregation: bool,
    /// The ledger's final checkpoint with the witnesses' cosignatures.
    pub ledger_checkpoint: Option<String>,
    /// Wall-clock seconds of the federated run (not part of the result proper).
    pub federated_wall_seconds: f64,
}

/// The privacy/utility trade-off: accuracy without DP, and with each mechanism.
#[derive(Clone, Debug, Serialize)]
pub struct PrivacyTradeoff {
    /// Pooled test accuracy of the same federation without DP.
    pub baseline: f64,
    /// The private runs.
    pub points: Vec<PrivacyPoint>,
}

/// One private run of the privacy/utility trade-off.
#[derive(Clone, Debug, Serialize)]
pub struct PrivacyPoint {
    /// "DP-SGD" (record level, on each node) or "client DP-FedAvg".
    pub mechanism: String,
    /// The mechanism's noise multiplier.
    pub noise_multiplier: f64,
    /// Record-level epsilon each hospital spent on the plan (its own accountant).
    pub epsilon: BTreeMap<String, f64>,
    /// Client-level epsilon of the federation (one hospital joining or leaving),
    /// for client DP-FedAvg.
    pub client_epsilon: Option<f64>,
    /// The largest of them.
    pub max_epsilon: f64,
    /// Pooled test accuracy of the final model.
    pub pooled_accuracy: f64,
}

/// Epsilon each hospital reported spending (empty without DP).
pub fn epsilon_spent(state: &PlanState) -> BTreeMap<String, f64> {
    if state.plan.privacy_budget.is_none() {
        return BTreeMap::new();
    }
    state
        .epsilon_spent_micro
        .iter()
        .map(|(k, v)| (k.clone(), *v as f64 / 1e6))
        .collect()
}

/// The privacy/utility table.
pub fn privacy_table(tradeoff: &PrivacyTradeoff) -> String {
    let mut out = format!(
        "{:<18}{:>7}{:>12}{:>12}{:>10}   record epsilon per hospital\n",
        "mechanism", "noise", "max eps", "client eps", "accuracy"
    );
    out += &format!(
        "{:<18}{:>7}{:>12}{:>12}{:>10.3}\n",
        "none", "", "inf", "", tradeoff.baseline
    );
    for p in &tradeoff.points {
        let per: Vec<String> = p
            .epsilon
            .iter()
            .map(|(k, e)| format!("{k} {e:.2}"))
            .collect();
        let client = p
            .client_epsilon
            .map_or(String::new(), |e| format!("{e:.2}"));
        out += &format!(
            "{:<18}{:>7}{:>12.2}{:>12}{:>10.3}   {}\n",
            p.mechanism,
            p.noise_multiplier,
            p.max_epsilon,
            client,
            p.pooled_accuracy,
            per.join(", ")
        );
    }
    out
}

fn point(round: u32, metrics: &BTreeMap<String, Metrics>) -> CurvePoint {
    let all: Vec<Metrics> = metrics.values().copied().collect();
    let pooled = Metrics::pooled(&all);
    CurvePoint {
        round,
        pooled_accuracy: pooled.accuracy,
        pooled_loss: pooled.loss,
        accuracy: metrics
            .iter()
            .map(|(k, m)| (k.clone(), m.accuracy))
            .collect(),
        loss: metrics.iter().map(|(k, m)| (k.clone(), m.loss)).collect(),
    }
}

/// Test metrics of the global model after 0..=R rounds, as the hospitals
/// reported them (each round's update carries the incoming model's metrics).
pub fn curve(state: &PlanState) -> Vec<CurvePoint> {
    let mut points: Vec<CurvePoint> = state
        .history
        .iter()
        .map(|r| point(r.round - 1, &r.input_test()))
        .collect();
    if !state.final_evaluation.is_empty() {
        points.push(point(state.history.len() as u32, &state.final_evaluation));
    }
    points
}

/// The federated model's final result.
pub fn federated_result(state: &PlanState) -> MethodResult {
    let all: Vec<Metrics> = state.final_evaluation.values().copied().collect();
    let pooled = Metrics::pooled(&all);
    MethodResult {
        method: format!("federated {}", state.plan.strategy.name()),
        per_hospital: state
            .final_evaluation
            .iter()
            .map(|(k, m)| (k.clone(), m.accuracy))
            .collect(),
        pooled: pooled.accuracy,
        pooled_loss: pooled.loss,
    }
}

/// A plain-text table of the results beside FLamby's figures.
pub fn table(results: &DemoResults) -> String {
    let hospitals: Vec<String> = results
        .methods
        .first()
        .map(|m| m.per_hospital.keys().cloned().collect())
        .unwrap_or_default();
    let mut out = format!("{:<28}", "method");
    for h in &hospitals {
        out += &format!("{:>12}", h);
    }
    out += &format!("{:>10}\n", "pooled");
    for m in &results.methods {
        out += &format!("{:<28}", m.method);
        for h in &hospitals {
            out += &format!(
                "{:>12.3}",
                m.per_hospital.get(h).copied().unwrap_or(f64::NAN)
            );
        }
        out += &format!("{:>10.3}\n", m.pooled);
    }
    out += "\nFLamby published (pooled test accuracy, seed 42):\n";
    for (name, acc) in FLAMBY {
        out += &format!("  {name:<26}{acc:>10.3}\n");
    }
    out
}
