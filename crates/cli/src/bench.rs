//! `cohort bench`: whole-run wall time and peak memory of the federation, for
//! docs/BENCHMARKS.md. Each run prints one `BENCH {json}` line.

use std::time::Instant;

use clap::Subcommand;
use fed::client::LocalData;
use fed::plan::TrainingPlan;
use fed::strategy::StrategyConfig;
use learn::{ModelSpec, Optimizer, TrainConfig};
use serde_json::json;

use crate::demo;
use crate::plan_options::PlanOptions;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// The 4-hospital Fed-Heart-Disease federation over gRPC + mutual TLS, in one process.
    Federation {
        #[command(flatten)]
        plan: PlanOptions,
    },
    /// Pooled-test accuracy of the federated model for several strategies and
    /// seeds (the real federation over gRPC + mutual TLS each time), beside
    /// pooled training with the same optimiser.
    Accuracy {
        #[command(flatten)]
        plan: PlanOptions,
        /// Strategies to run (comma-separated); `all` for every one.
        #[arg(long, default_value = "all")]
        strategies: String,
        /// Seeds to run.
        #[arg(long, default_value = "0,1,2,3,4", value_delimiter = ',')]
        seeds: Vec<u64>,
    },
    /// Secure aggregation against plain rounds, whole rounds over gRPC + mutual
    /// TLS: `clients` nodes, a model of `params` parameters (logistic
    /// regression, one local step on a few synthetic rows, so the time is the
    /// protocol's), like Flower's secagg_bench.py. Alternates plain and secure
    /// runs and reports the steady rounds (the first, warm-up, round is left out).
    Secure {
        /// Nodes, all in every round.
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// Model parameters.
        #[arg(long, default_value_t = 100_000)]
        params: usize,
        /// Steady rounds per run (one warm-up round is added).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Training rows per node.
        #[arg(long, default_value_t = 8)]
        rows: usize,
        /// Plain/secure pairs to run.
        #[arg(long, default_value_t = 2)]
        repeats: usize,
        /// SecAgg+ share holders per node (odd; Flower's bench uses 5 for 10
        /// clients); default: the complete graph.
        #[arg(long)]
        shares: Option<usize>,
    },
    /// Many virtual clients per round on synthetic data, in-process (no
    /// transport: the same coordinator state machine and client steps), like
    /// Flower's simulation engine.
    Scale {
        /// Virtual clients, all taking part in every round.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Rounds.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Training rows per client (Flower's benchmark uses 64).
        #[arg(long, default_value_t = 64)]
        rows: usize,
    },
}

/// Median time (open to aggregated, coordinator clock) of the first or the
/// last tenth of the rounds: whether rounds slow down as the plan grows.
fn tenth_round_median_ms(history: &[fed::plan_run::RoundRecord], last: bool) -> f64 {
    let tenth = history.len().div_ceil(10);
    let rounds = if last {
        &history[history.len() - tenth..]
    } else {
        &history[..tenth]
    };
    let took: Vec<f64> = rounds
        .iter()
        .map(|r| (r.closed_unix_ms - r.opened_unix_ms) as f64)
        .collect();
    median(&took)
}

/// Peak resident set size of this process, for people: `123 MiB` (`?` where unknown).
pub(crate) fn peak_rss_mib() -> String {
    peak_rss_kb().map_or_else(|| "?".into(), |kb| format!("{} MiB", kb / 1024))
}

/// Peak resident set size of this process in kB (Linux `VmHWM`).
fn peak_rss_kb() -> Option<u64> {
    node::memory::peak_resident_bytes().map(|bytes| bytes / 1024)
}

/// Run a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Federation { plan } => {
            let plan = plan.plan()?;
            let dir = tempfile::tempdir()?;
            let started = Instant::now();
            let federation = harness::start_federation(&plan, dir.path()).await?;
            let progress = demo::round_progress(plan.rounds);
            let state = federation.finish(demo::show_rounds(&progress)).await?.state;
            progress.finish_and_clear();
            let wall = started.elapsed().as_secs_f64();
            let pooled = learn::Metrics::pooled(
                &state.final_evaluation.values().copied().collect::<Vec<_>>(),
            );
            println!(
                "BENCH {}",
                json!({
                    "bench": "federation",
                    "hospitals": plan.hospitals.len(),
                    "rounds": plan.rounds,
                    "strategy": plan.strategy.name(),
                    "wall_incl_startup_s": wall,
                    "per_round_s": wall / f64::from(plan.rounds),
                    "peak_rss_kb": peak_rss_kb(),
                    "pooled_test_accuracy": pooled.accuracy,
                    "first_tenth_round_median_ms": tenth_round_median_ms(&state.history, false),
                    "last_tenth_round_median_ms": tenth_round_median_ms(&state.history, true),
                })
            );
        }
        BenchCommand::Accuracy {
            plan,
            strategies,
            seeds,
        } => accuracy(plan, &strategies, &seeds).await?,
        BenchCommand::Secure {
            clients,
            params,
            rounds,
            rows,
            repeats,
            shares,
        } => {
            let mut medians = [Vec::new(), Vec::new()];
            for _ in 0..repeats {
                for (i, secure) in [false, true].into_iter().enumerate() {
                    let secure = secure.then_some(shares);
                    let rounds_s = secure_run(clients, params, rounds, rows, secure).await?;
                    let median = median(&rounds_s);
                    println!(
                        "BENCH {}",
                        json!({
                            "bench": "secure",
                            "mode": if secure.is_some() { "secagg+" } else { "plain" },
                            "share_holders": secure.map(|k| k.unwrap_or(clients)),
                            "clients": clients,
                            "params": params,
                            "steady_rounds_s": rounds_s,
                            "median_round_s": median,
                            "peak_rss_kb": peak_rss_kb(),
                        })
                    );
                    medians[i].push(median);
                }
            }
            let plain = median(&medians[0]);
            let secure = median(&medians[1]);
            println!(
                "BENCH {}",
                json!({
                    "bench": "secure",
                    "median_plain_round_s": plain,
                    "median_secure_round_s": secure,
                    "secure_over_plain": secure / plain,
                })
            );
        }
        BenchCommand::Scale {
            clients,
            rounds,
            rows,
        } => {
            let names: Vec<String> = (0..clients).map(|i| format!("client-{i:05}")).collect();
            let plan = synthetic_plan("synthetic scale run", names.clone(), 30, rounds, |t| {
                t.epochs = 10;
                t.learning_rate = 0.5;
            });
            let data: Vec<(String, LocalData)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let seed = 100_000 + i as u64;
                    (
                        n.clone(),
                        LocalData {
                            train: learn::synthetic::logistic(seed, rows, 30),
                            test: learn::synthetic::logistic(seed + 1_000_000, 16, 30),
                        },
                    )
                })
                .collect();
            let started = Instant::now();
            let mut per_round = Vec::new();
            fed::simulation::run(plan, &data, |record, took| {
                let s = took.as_secs_f64();
                println!(
                    "BENCH {}",
                    json!({"bench": "scale", "round": record.round, "round_s": s, "clients": record.contributions.len()})
                );
                per_round.push(s);
            })?;
            let total = started.elapsed().as_secs_f64();
            let mean = per_round.iter().sum::<f64>() / per_round.len().max(1) as f64;
            println!(
                "BENCH {}",
                json!({
                    "bench": "scale",
                    "clients": clients,
                    "rounds": rounds,
                    "mean_round_s": mean,
                    "total_s": total,
                    "peak_rss_kb": peak_rss_kb(),
                    "transport": "in-process (same PlanRun state machine and client steps, no gRPC)",
                })
            );
        }
    }
    Ok(())
}

/// A FedAvg plan of a logistic regression with `inputs` features on synthetic
/// data, every one of `hospitals` in every round; full-batch SGD at rate 0.1,
/// one epoch, changed by `training`.
fn synthetic_plan(
    name: &str,
    hospitals: Vec<String>,
    inputs: usize,
    rounds: u32,
    training: impl FnOnce(&mut TrainConfig),
) -> TrainingPlan {
    let mut config = TrainConfig {
        epochs: 1,
        batch_size: 0,
        learning_rate: 0.1,
        optimizer: Optimizer::Sgd,
        weight_decay: 0.0,
        proximal_mu: 0.0,
        max_steps: None,
        dp: None,
    };
    training(&mut config);
    TrainingPlan {
        name: name.into(),
        dataset: "synthetic".into(),
        model: ModelSpec::LogisticRegression { inputs },
        training: config,
        strategy: StrategyConfig::default(),
        rounds,
        min_hospitals: hospitals.len(),
        round_deadline_secs: 3600,
        round_attempts: 1,
        hospitals,
        seed: 0,
        standardize: false,
        privacy_budget: None,
        secure_aggregation: None,
        client_dp: None,
        text_task: None,
    }
}

/// The median of `values` (NaN when empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One federation of `clients` synthetic nodes over gRPC + mutual TLS, a
/// logistic regression of `params` parameters, `rounds` + 1 rounds; returns
/// the wall time of each round after the first. `secure`: plain rounds
/// (None) or secure ones with that many share holders (None inside: all).
async fn secure_run(
    clients: usize,
    params: usize,
    rounds: u32,
    rows: usize,
    secure: Option<Option<usize>>,
) -> anyhow::Result<Vec<f64>> {
    let names: Vec<String> = (0..clients).map(|i| format!("site-{i:03}")).collect();
    let mut plan = synthetic_plan(
        &format!("secure aggregation bench ({params} parameters)"),
        names,
        params.saturating_sub(1).max(1),
        rounds + 1,
        |t| t.max_steps = Some(1),
    );
    plan.round_deadline_secs = 600;
    // A node's masked coordinates are its row count times a weight's change
    // in one step: well inside rows x 10.
    plan.secure_aggregation = secure.map(|num_shares| fed::plan::SecureAggregation {
        range: rows as f64 * 10.0,
        num_shares,
    });
    let dir = tempfile::tempdir()?;
    let federation =
        harness::start_federation_from(&plan, dir.path(), harness::DataSource::Synthetic { rows })
            .await?;
    let mut events = federation.coordinator.subscribe();
    let ends = tokio::spawn(async move {
        let mut ends = Vec::new();
        while let Ok(event) = events.recv().await {
            if let fed::plan_run::PlanEvent::RoundAggregated(_) = event {
                ends.push(Instant::now());
            }
        }
        ends
    });
    let state = federation.finish(|_| {}).await?.state;
    anyhow::ensure!(
        state.phase == fed::plan_run::Phase::Completed,
        "bench federation ended {:?}",
        state.phase
    );
    let ends = ends.await?;
    Ok(ends
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect())
}

fn mean_and_spread(values: &[f64]) -> (f64, f64, f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

async fn accuracy(options: PlanOptions, strategies: &str, seeds: &[u64]) -> anyhow::Result<()> {
    let names: Vec<String> = if strategies == "all" {
        StrategyConfig::names().map(String::from).collect()
    } else {
        strategies
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    };
    let data = tempfile::tempdir()?;
    harness::write_heart_data(data.path())?;
    let sites = harness::heart_sites(data.path()).await?;
    println!(
        "{:<14}{:>8}{:>8}{:>8}{:>8}   per seed",
        "method", "mean", "std", "min", "max"
    );
    for name in &names {
        let mut accs = Vec::new();
        for &seed in seeds {
            let mut o = options.clone();
            o.strategy = name.clone();
            o.seed = seed;
            let plan = o.plan()?;
            let dir = tempfile::tempdir()?;
            let federation = harness::start_federation(&plan, dir.path()).await?;
            let state = federation.finish(|_| {}).await?.state;
            accs.push(crate::results::federated_result(&state).pooled);
        }
        let (mean, std, min, max) = mean_and_spread(&accs);
        let per: Vec<String> = accs.iter().map(|a| format!("{a:.3}")).collect();
        println!(
            "{name:<14}{mean:>8.4}{std:>8.4}{min:>8.3}{max:>8.3}   {}",
            per.join(" ")
        );
        println!(
            "BENCH {}",
            json!({"bench": "accuracy", "method": name, "seeds": seeds, "pooled_test_accuracy": accs, "mean": mean})
        );
    }
    let mut pooled = Vec::new();
    for &seed in seeds {
        let mut o = options.clone();
        o.seed = seed;
        pooled.push(crate::baselines::pooled(&o.plan()?, &sites)?.pooled);
    }
    let (mean, std, min, max) = mean_and_spread(&pooled);
    let per: Vec<String> = pooled.iter().map(|a| format!("{a:.3}")).collect();
    println!(
        "{:<14}{mean:>8.4}{std:>8.4}{min:>8.3}{max:>8.3}   {}",
        "pooled",
        per.join(" ")
    );
    Ok(())
}
