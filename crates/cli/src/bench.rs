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

/// Peak resident set size of this process in kB (Linux `VmHWM`).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Run a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Federation { plan } => {
            let plan = plan.plan()?;
            let dir = tempfile::tempdir()?;
            let started = Instant::now();
            let federation = demo::start_federation(&plan, dir.path()).await?;
            let progress = demo::round_progress(plan.rounds);
            let state = federation.finish(&progress).await?;
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
                })
            );
        }
        BenchCommand::Scale {
            clients,
            rounds,
            rows,
        } => {
            let names: Vec<String> = (0..clients).map(|i| format!("client-{i:05}")).collect();
            let plan = TrainingPlan {
                name: "synthetic scale run".into(),
                dataset: "synthetic".into(),
                model: ModelSpec::LogisticRegression { inputs: 30 },
                training: TrainConfig {
                    epochs: 10,
                    batch_size: 0,
                    learning_rate: 0.5,
                    optimizer: Optimizer::Sgd,
                    weight_decay: 0.0,
                    proximal_mu: 0.0,
                    max_steps: None,
                },
                strategy: StrategyConfig::FedAvg,
                rounds,
                min_hospitals: clients,
                round_deadline_secs: 3600,
                round_attempts: 1,
                hospitals: names.clone(),
                seed: 0,
                standardize: false,
            };
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
                    json!({"bench": "scale", "round": record.round, "round_s": s, "clients": record.contributors.len()})
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
