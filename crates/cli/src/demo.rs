//! `cohort demo`: a coordinator and the four UCI Heart Disease hospitals in one
//! process, each node with its own store, talking gRPC over mutual TLS on
//! loopback; then pooled and local-only baselines, a table and a report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fed::plan_run::{PlanEvent, PlanState};
use harness::{DataSource, Finished, heart_sites, start_federation, start_federation_with};
use indicatif::{ProgressBar, ProgressStyle};

use crate::plan_options::PlanOptions;
use crate::results::{self, DemoResults};
use crate::{baselines, report};

/// Options of `cohort demo`.
#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub plan: PlanOptions,
    /// Where to write the HTML report.
    #[arg(long, default_value = "report.html")]
    pub report: PathBuf,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the federation's files (CA, stores, artifacts) in this directory
    /// instead of a temporary one; rerunning with the same directory resumes.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Skip the pooled and local-only baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Also show the privacy/utility trade-off: the same federation without
    /// DP, with DP-SGD at several noise multipliers and with client-level
    /// DP-FedAvg (accuracy against epsilon).
    #[arg(long)]
    pub dp: bool,
    /// Train without differential privacy (by default every hospital runs
    /// DP-SGD at noise multiplier 4, which keeps epsilon under 8 over 100 rounds).
    #[arg(long, conflicts_with = "dp_noise")]
    pub no_dp: bool,
    /// Serve the web console and keep the federation's consoles and APIs up
    /// after the run, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Address of the console with `--serve` (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub console_listen: std::net::SocketAddr,
}

/// DP-SGD noise multiplier of `cohort demo` unless told otherwise.
const DEMO_DP_NOISE: f32 = 4.0;

/// DP-SGD noise multipliers of the `--dp` trade-off.
const DP_NOISE_LEVELS: [f64; 6] = [0.7, 1.0, 1.5, 2.5, 4.0, 6.0];

/// Client-level DP-FedAvg noise multipliers of the `--dp` trade-off.
const CLIENT_DP_NOISE_LEVELS: [f64; 3] = [1.0, 4.0, 8.0];

/// One federation of the trade-off, with its privacy settings already in `options`.
async fn tradeoff_run(options: &PlanOptions) -> anyhow::Result<PlanState> {
    let mut o = options.clone();
    // Budgets not binding: the point is to measure what each level spends.
    o.epsilon_budget = 1e6;
    let plan = o.plan()?;
    let dir = tempfile::tempdir()?;
    Ok(start_federation(&plan, dir.path())
        .await?
        .finish(|_| {})
        .await?
        .state)
}

/// The federation without DP (the trade-off's reference), then with DP-SGD at
/// each noise level, then with client-level DP-FedAvg (adaptive clipping at
/// the median) at each of its levels.
async fn privacy_tradeoff(
    options: &PlanOptions,
) -> anyhow::Result<(f64, Vec<results::PrivacyPoint>)> {
    let runs = 1 + DP_NOISE_LEVELS.len() + CLIENT_DP_NOISE_LEVELS.len();
    let progress = ProgressBar::new(runs as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} privacy runs {pos}/{len} [{bar:30}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut plain = options.clone();
    plain.dp_noise = None;
    plain.client_dp_noise = None;
    progress.set_message("no DP");
    let baseline = results::federated_result(&tradeoff_run(&plain).await?).pooled;
    progress.inc(1);
    let mut settings: Vec<(PlanOptions, &str, f64)> = Vec::new();
    for noise in DP_NOISE_LEVELS {
        let mut o = plain.clone();
        o.dp_noise = Some(noise as f32);
        settings.push((o, "DP-SGD", noise));
    }
    for noise in CLIENT_DP_NOISE_LEVELS {
        let mut o = plain.clone();
        o.secure = true;
        o.client_dp_noise = Some(noise);
        o.adaptive_clip_quantile = Some(0.5);
        settings.push((o, "client DP-FedAvg", noise));
    }
    let mut points = Vec::new();
    for (o, mechanism, noise) in settings {
        progress.set_message(format!("{mechanism}, noise multiplier {noise}"));
        let state = tradeoff_run(&o).await?;
        let epsilon = results::epsilon_spent(&state);
        let client_epsilon = match state.plan.client_dp {
            Some(dp) => Some(
                dp.client_level_epsilon(u64::from(state.plan.rounds), o.delta)
                    .map_err(anyhow::Error::msg)?
                    .epsilon,
            ),
            None => None,
        };
        points.push(results::PrivacyPoint {
            mechanism: mechanism.into(),
            noise_multiplier: noise,
            max_epsilon: epsilon.values().copied().fold(0.0, f64::max),
            epsilon,
            client_epsilon,
            pooled_accuracy: results::federated_result(&state).pooled,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok((baseline, points))
}

/// Audit the run's ledger offline, as an outsider would, and show its
/// cosigned checkpoint.
fn verify_ledger(ledger: &coordinator::LedgerSummary, kept: bool) -> anyhow::Result<()> {
    let report = ::ledger::audit::verify_log(&ledger.policy, &ledger.log_dir);
    if !report.is_clean() {
        anyhow::bail!("the ledger does not verify:\n{report}");
    }
    println!(
        "ledger verified: {} entries, all signatures, tiles, contributions, aggregates and budgets check out",
        ledger.size
    );
    match &ledger.published_checkpoint {
        Some(note) if ledger.published_size == ledger.size => {
            println!("final checkpoint, cosigned by the hospitals' witnesses:\n{note}");
        }
        _ => println!(
            "warning: the final checkpoint lacks a quorum of witness cosignatures ({} of {} entries published)",
            ledger.published_size, ledger.size
        ),
    }
    if kept {
        println!(
            "audit it yourself: cohort ledger verify --policy {} {}",
            ledger.log_dir.with_file_name("policy.toml").display(),
            ledger.log_dir.display()
        );
    }
    Ok(())
}

/// Show each aggregated round on `progress`: its number and the pooled test
/// accuracy of its input model.
pub fn show_rounds(progress: &ProgressBar) -> impl FnMut(PlanEvent) + Send + 'static {
    let progress = progress.clone();
    move |event| {
        if let PlanEvent::RoundAggregated(r) = event {
            let all: Vec<learn::Metrics> = r.input_test().into_values().collect();
            let acc = learn::Metrics::pooled(&all).accuracy;
            progress.set_position(u64::from(r.round));
            progress.set_message(format!("test accuracy of round {} input {acc:.3}", r.round));
        }
    }
}

/// A progress bar over the plan's rounds.
pub fn round_progress(rounds: u32) -> ProgressBar {
    let progress = ProgressBar::new(u64::from(rounds));
    progress.set_style(
        ProgressStyle::with_template("{spinner} round {pos}/{len} [{bar:30}] {msg} ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    progress
}

/// How a federate command protects its hospitals: DP-SGD (off at noise 0) under a budget,
/// and secure aggregation of updates from nodes of at most `max_samples` records.
pub(crate) struct Protection {
    pub dp_noise: f32,
    pub dp_clip: f32,
    pub epsilon_budget: f64,
    pub delta: f64,
    pub secure: bool,
    pub max_samples: u64,
}

impl Protection {
    /// Set `plan`'s DP-SGD, privacy budget and secure aggregation, then check the plan.
    pub(crate) fn apply(
        &self,
        mut plan: fed::plan::TrainingPlan,
    ) -> anyhow::Result<fed::plan::TrainingPlan> {
        if self.dp_noise > 0.0 {
            plan.training.dp = Some(learn::DpSgd {
                clip_norm: self.dp_clip,
                noise_multiplier: self.dp_noise,
            });
            plan.privacy_budget = Some(fed::plan::PrivacyBudget {
                epsilon: self.epsilon_budget,
                delta: self.delta,
            });
        }
        if self.secure {
            plan.secure_aggregation = Some(fed::plan::SecureAggregation {
                range: fed::secure_round::weighted_mean_range(self.max_samples, 1.0)?,
                num_shares: None,
            });
        }
        plan.validate()?;
        Ok(plan)
    }
}

/// Load `bundles` (FHIR transactions) into `hospital`'s EHR in a federation under `workdir`,
/// unless it already holds patients (a rerun in the same workdir).
pub(crate) async fn load_ehr_once(
    workdir: &std::path::Path,
    hospital: &str,
    bundles: Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    let store = harness::node_ehr(workdir, hospital).await?;
    let loaded = store
        .counts()
        .await?
        .iter()
        .any(|(kind, n)| kind == "Patient" && *n > 0);
    if !loaded {
        let mut tx = store.begin().await?;
        for mut bundle in bundles {
            ehr::bundle::transaction(&mut tx, &mut bundle).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Run `plan` in a federation under `workdir` whose nodes read `source`, with a progress bar
/// over its rounds; then audit its ledger and print each hospital's epsilon. `kept`: the
/// workdir stays after the command (the audit command is printed).
pub(crate) async fn run_federation(
    plan: &fed::plan::TrainingPlan,
    workdir: &std::path::Path,
    source: DataSource,
    kept: bool,
) -> anyhow::Result<PlanState> {
    let started = Instant::now();
    let federation = harness::start_federation_from(plan, workdir, source).await?;
    let progress = round_progress(plan.rounds);
    let (coordinator, finished) = federation.settle(show_rounds(&progress), true).await;
    coordinator.shutdown().await;
    let Finished { state, ledger } = finished?;
    progress.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "federated training done in {wall:.1} s ({:.1} s a round); final model {}",
        wall / f64::from(plan.rounds),
        state.global_sha256
    );
    verify_ledger(&ledger, kept)?;
    let epsilon = results::epsilon_spent(&state);
    if let Some(budget) = &plan.privacy_budget {
        println!(
            "epsilon spent per hospital (delta {}): {epsilon:?}",
            budget.delta
        );
    }
    Ok(state)
}

/// Run the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut options = args.plan.clone();
    if !args.no_dp && options.dp_noise.is_none() {
        options.dp_noise = Some(DEMO_DP_NOISE);
    }
    let plan = options.plan()?;
    let temp = tempfile::tempdir()?;
    let workdir = args
        .workdir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    println!(
        "cohort demo: {} hospitals, {} rounds of {} ({}), seed {}",
        plan.hospitals.len(),
        plan.rounds,
        plan.strategy.name(),
        plan.model.describe(),
        plan.seed
    );
    println!("plan {}  code {}", plan.plan_id(), plan.code_hash());
    let protections = match (&plan.secure_aggregation, &plan.privacy_budget) {
        (Some(_), _) => {
            "secure aggregation (SecAgg+): the coordinator sees only masked updates and their sum"
        }
        (None, _) if args.plan.secure => {
            "no secure aggregation: this strategy needs individual updates"
        }
        (None, _) => "no secure aggregation (--secure false)",
    };
    println!("{protections}");
    match (&plan.privacy_budget, &plan.training.dp, &plan.client_dp) {
        (Some(b), dp_sgd, client) => {
            let mut mechanisms = Vec::new();
            if let Some(d) = dp_sgd {
                mechanisms.push(format!(
                    "DP-SGD (noise multiplier {}, clip {})",
                    d.noise_multiplier, d.clip_norm
                ));
            }
            if let Some(c) = client {
                mechanisms.push(format!(
                    "client-level DP-FedAvg (noise multiplier {}, clip {}{})",
                    c.noise_multiplier,
                    c.clip_norm,
                    if c.adaptive.is_some() {
                        ", adaptive"
                    } else {
                        ""
                    }
                ));
            }
            println!(
                "differential privacy: {} on every hospital, budget epsilon {} at delta {} per hospital \
                 (noise seeded from each hospital's secret, derived from --seed in this demo)",
                mechanisms.join(" + "),
                b.epsilon,
                b.delta
            );
        }
        (None, _, _) => println!(
            "differential privacy: off (--no-dp); --dp shows the privacy/utility trade-off"
        ),
    }
    let started = Instant::now();
    let (console, password) = match args.serve {
        true => {
            let password = console::auth::random_token::<6>();
            let users = console::Users::one_per_role(&password);
            let settings = console::ConsoleSettings {
                listen: args.console_listen,
                users,
                secure_cookies: true,
                oidc: None,
            };
            (Some(settings), Some(password))
        }
        false => (None, None),
    };
    let federation = start_federation_with(&plan, &workdir, DataSource::Ehr, console).await?;
    if let (Some(address), Some(password)) = (federation.coordinator.console_address(), &password) {
        println!(
            "console: http://{address}/ (coordinator: plans, rounds, privacy budgets, ledger)"
        );
        let users: Vec<&str> = console::Role::ALL.iter().map(|r| r.name()).collect();
        println!("console logins: {}; password: {password}", users.join(", "));
    }
    println!(
        "coordinator on {} (gRPC + mutual TLS); hospital nodes, each with its own EHR and API port:",
        federation.coordinator.address()
    );
    for (name, node) in &federation.nodes {
        if let Some(address) = node.api_address {
            println!("  {name:<12} http://{address}/fhir (FHIR R4)  http://{address}/disclosures");
            if let Some(console) = node.console_address {
                println!(
                    "  {:<12} http://{console}/ (the hospital's console: patients, consent, plans, disclosures)",
                    ""
                );
            }
            if let Some(dicom) = node.dicom_address {
                println!(
                    "  {:<12} dicom://{dicom} (C-STORE, AE COHORT)  http://{address}/dicomweb/studies",
                    ""
                );
            }
        }
    }
    let progress = round_progress(plan.rounds);
    let (coordinator, finished) = federation.settle(show_rounds(&progress), !args.serve).await;
    let serving = match args.serve {
        true => Some(coordinator),
        false => {
            coordinator.shutdown().await;
            None
        }
    };
    let Finished { state, ledger } = finished?;
    progress.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "federated training done in {wall:.2} s; final model {}",
        state.global_sha256
    );
    verify_ledger(&ledger, args.workdir.is_some())?;

    let mut methods = vec![results::federated_result(&state)];
    if !args.no_baselines {
        let sites = heart_sites(&workdir.join("data/heart-disease")).await?;
        methods.push(baselines::pooled(&plan, &sites)?);
        methods.extend(baselines::local_only(&plan, &sites)?);
    }
    let results = DemoResults {
        seed: plan.seed,
        rounds: plan.rounds,
        strategy: plan.strategy.name().to_string(),
        plan_id: state.plan_id.clone(),
        final_model_sha256: state.global_sha256.clone(),
        methods,
        curve: results::curve(&state),
        epsilon: results::epsilon_spent(&state),
        privacy_tradeoff: if args.dp {
            let (baseline, points) = privacy_tradeoff(&options).await?;
            Some(results::PrivacyTradeoff { baseline, points })
        } else {
            None
        },
        secure_aggregation: plan.secure_aggregation.is_some(),
        ledger_checkpoint: ledger.published_checkpoint.clone(),
        federated_wall_seconds: wall,
    };
    println!("\nTest accuracy:\n{}", results::table(&results));
    if !results.epsilon.is_empty() {
        println!(
            "Epsilon spent per hospital (delta {}): {:?}",
            args.plan.delta, results.epsilon
        );
    }
    if let Some(tradeoff) = &results.privacy_tradeoff {
        println!(
            "\nPrivacy/utility (DP-SGD clip {}, client DP-FedAvg adaptive clip at the median; delta {}):\n{}",
            options.dp_clip,
            options.delta,
            results::privacy_table(tradeoff)
        );
    }
    std::fs::write(&args.report, report::html(&results, &state))
        .with_context(|| format!("writing {}", args.report.display()))?;
    println!("report written to {}", args.report.display());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    if let Some(coordinator) = serving {
        serve_until_stopped(coordinator).await?;
    }
    Ok(())
}

/// `--serve`: keep the console and the hospitals' APIs up until Ctrl-C or SIGTERM.
async fn serve_until_stopped(coordinator: coordinator::RunningCoordinator) -> anyhow::Result<()> {
    println!("serving the console and the hospitals' APIs until Ctrl-C");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped?,
        _ = terminate.recv() => {}
    }
    coordinator.shutdown().await;
    Ok(())
}
