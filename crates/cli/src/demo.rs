//! `cohort demo`: a coordinator and the four UCI Heart Disease hospitals in one
//! process, each node with its own store, talking gRPC over mutual TLS on
//! loopback; then pooled and local-only baselines, a table and a report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fed::client::LocalData;
use fed::plan::TrainingPlan;
use fed::server::{Phase, PlanEvent, PlanState};
use indicatif::{ProgressBar, ProgressStyle};

use crate::plan_options::PlanOptions;
use crate::results::{self, DemoResults};
use crate::{baselines, report};

/// The UCI Heart Disease files (CC BY 4.0, Janosi, Steinbrunn, Pfisterer,
/// Detrano) and FLamby's split, embedded so the demo needs no set-up.
const HEART_FILES: [(&str, &str); 6] = [
    (
        "processed.cleveland.data",
        include_str!("../../../data/heart-disease/processed.cleveland.data"),
    ),
    (
        "processed.hungarian.data",
        include_str!("../../../data/heart-disease/processed.hungarian.data"),
    ),
    (
        "processed.switzerland.data",
        include_str!("../../../data/heart-disease/processed.switzerland.data"),
    ),
    (
        "processed.va.data",
        include_str!("../../../data/heart-disease/processed.va.data"),
    ),
    (
        "flamby-split.csv",
        include_str!("../../../data/heart-disease/flamby-split.csv"),
    ),
    (
        "README.md",
        include_str!("../../../data/heart-disease/README.md"),
    ),
];

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
        .finish(&ProgressBar::hidden())
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

/// The secret of a simulated hospital in the demo, derived from the plan's
/// seed so that a demo run (DP noise included) is reproducible. A real node
/// draws its secret at random on first start and never shares it; here one
/// process plays every hospital, so nothing is lost by deriving it.
fn demo_node_secret(seed: u64, hospital: &str) -> [u8; 32] {
    let mut bytes = b"cohort demo node secret\0".to_vec();
    bytes.extend_from_slice(&seed.to_be_bytes());
    bytes.extend_from_slice(hospital.as_bytes());
    fed::sha256(&bytes)
}

/// Write the embedded Heart Disease files into `dir`.
pub fn write_heart_data(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, content) in HEART_FILES {
        std::fs::write(dir.join(name), content)
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(())
}

/// The four hospitals' data as the baselines read it.
pub async fn heart_sites(dir: &Path) -> anyhow::Result<Vec<(String, LocalData)>> {
    use node::source::{DatasetSource, HeartDiseaseFiles};
    let mut sites = Vec::new();
    for c in learn::heart::CENTRES {
        let source = HeartDiseaseFiles::new(dir.to_path_buf(), c)?;
        sites.push((c.to_string(), source.load().await?.data));
    }
    Ok(sites)
}

/// Where the demo's hospitals take their training data from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoSource {
    /// Each node's own EHR (FHIR store loaded with its centre's records),
    /// through the training gate; the FHIR API is served on the node's port.
    Ehr,
    /// The UCI files directly (faster to start; used by tests and benchmarks).
    Files,
    /// Synthetic rows with as many features as the plan's model takes (any
    /// hospital names; for protocol benchmarks).
    Synthetic {
        /// Training rows per node.
        rows: usize,
    },
}

/// Credentials of a federation's parties, issued by one CA kept in a directory.
pub struct Credentials {
    /// The coordinator's.
    pub coordinator: pki::PartyCredentials,
    /// Each hospital's, in plan order.
    pub hospitals: Vec<pki::PartyCredentials>,
}

/// TLS material of a party.
pub fn tls(c: &pki::PartyCredentials) -> protocol::tls::TlsMaterial {
    protocol::tls::TlsMaterial {
        cert_pem: c.cert_pem.clone(),
        key_pem: c.key_pem.clone(),
        ca_pem: c.ca_cert_pem.clone(),
    }
}

impl Credentials {
    /// Load the CA and credentials from `dir`, creating whatever is missing.
    pub fn prepare(dir: &Path, hospitals: &[String]) -> anyhow::Result<Self> {
        let ca = match pki::CertificateAuthority::load(dir) {
            Ok(ca) => ca,
            Err(_) => {
                let ca = pki::CertificateAuthority::generate("cohort-demo")?;
                ca.save(dir)?;
                ca
            }
        };
        let party = |name: &str| -> anyhow::Result<pki::PartyCredentials> {
            match pki::PartyCredentials::load(dir, name) {
                Ok(c) => Ok(c),
                Err(_) => {
                    let c = ca.issue(name)?;
                    c.save(dir)?;
                    Ok(c)
                }
            }
        };
        Ok(Credentials {
            coordinator: party("coordinator")?,
            hospitals: hospitals
                .iter()
                .map(|h| party(h))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// Coordinator settings enrolling every hospital, storing under `dir`.
    pub fn coordinator_settings(
        &self,
        plan: &TrainingPlan,
        listen: std::net::SocketAddr,
        dir: &Path,
    ) -> anyhow::Result<coordinator::CoordinatorSettings> {
        let mut registry = coordinator::registry::Registry::default();
        for h in &self.hospitals {
            registry.enrol(&h.party, &h.cert_pem)?;
        }
        Ok(coordinator::CoordinatorSettings {
            federation: "cohort-demo".into(),
            listen,
            data_dir: dir.to_path_buf(),
            tls: tls(&self.coordinator),
            registry,
            plan: plan.clone(),
            exit_when_done: true,
            console: None,
        })
    }

    /// Settings of a hospital's node reading the Heart Disease files in `data_dir`.
    pub fn node_settings(
        &self,
        hospital: &pki::PartyCredentials,
        plan: &TrainingPlan,
        coordinator: std::net::SocketAddr,
        data_dir: &Path,
        store_dir: &Path,
    ) -> anyhow::Result<node::NodeSettings> {
        let source = node::source::HeartDiseaseFiles::new(data_dir.to_path_buf(), &hospital.party)?;
        self.node_settings_with(hospital, plan, coordinator, store_dir, Box::new(source))
    }

    /// Settings of a hospital's node training from `source`.
    pub fn node_settings_with(
        &self,
        hospital: &pki::PartyCredentials,
        plan: &TrainingPlan,
        coordinator: std::net::SocketAddr,
        store_dir: &Path,
        source: Box<dyn node::source::DatasetSource>,
    ) -> anyhow::Result<node::NodeSettings> {
        Ok(node::NodeSettings {
            ehr: None,
            imaging: None,
            name: hospital.party.clone(),
            coordinator: format!("https://127.0.0.1:{}", coordinator.port()),
            coordinator_name: "coordinator".into(),
            data_dir: store_dir.to_path_buf(),
            approved_code_hashes: vec![plan.code_hash()],
            exit_when_done: true,
            listen: Some("127.0.0.1:0".parse()?),
            tls: tls(hospital),
            source,
        })
    }
}

/// A federation running in this process.
pub struct Federation {
    /// The coordinator.
    pub coordinator: coordinator::RunningCoordinator,
    /// Each node's task, by hospital.
    pub nodes: Vec<(String, node::RunningNode)>,
}

/// Give a node its own EHR under `store_dir` (loaded with its centre's records
/// as FHIR when it holds no patient yet), and make the gate over it the
/// node's dataset.
async fn with_ehr(
    mut settings: node::NodeSettings,
    data_dir: &Path,
    store_dir: &Path,
) -> anyhow::Result<node::NodeSettings> {
    std::fs::create_dir_all(store_dir)?;
    let url = format!("sqlite:{}", store_dir.join("ehr.sqlite").display());
    let store = ehr::Store::open(&url).await?;
    let has_patients = store
        .counts()
        .await?
        .iter()
        .any(|(kind, n)| kind == "Patient" && *n > 0);
    if !has_patients {
        ehr::heart::load_centre_files(&store, &settings.name, data_dir).await?;
    }
    settings.source = Box::new(node::source::EhrHeartDisease::new(store.clone()));
    settings.ehr = Some(store);
    settings.imaging = Some(node::imaging::ImagingSettings {
        dir: store_dir.join("images"),
        dicom_listen: Some("127.0.0.1:0".parse()?),
        ae_title: "COHORT".into(),
    });
    Ok(settings)
}

/// Issue credentials, start the coordinator on a free loopback port and one
/// node task per hospital, each with its own store under `workdir`, training
/// from the UCI files.
pub async fn start_federation(plan: &TrainingPlan, workdir: &Path) -> anyhow::Result<Federation> {
    start_federation_from(plan, workdir, DemoSource::Files).await
}

/// [`start_federation`] with the data source of the nodes chosen.
pub async fn start_federation_from(
    plan: &TrainingPlan,
    workdir: &Path,
    source: DemoSource,
) -> anyhow::Result<Federation> {
    start_federation_with(plan, workdir, source, None).await
}

/// [`start_federation_from`] with the coordinator's web console.
pub async fn start_federation_with(
    plan: &TrainingPlan,
    workdir: &Path,
    source: DemoSource,
    console: Option<console::ConsoleSettings>,
) -> anyhow::Result<Federation> {
    let data_dir = workdir.join("data/heart-disease");
    write_heart_data(&data_dir)?;
    let credentials = Credentials::prepare(&workdir.join("pki"), &plan.hospitals)?;
    let mut settings = credentials.coordinator_settings(
        plan,
        "127.0.0.1:0".parse()?,
        &workdir.join("coordinator"),
    )?;
    settings.console = console;
    let coordinator = coordinator::start(settings).await?;
    let mut nodes = Vec::new();
    for h in &credentials.hospitals {
        let store_dir = workdir.join("nodes").join(&h.party);
        let address = coordinator.address();
        let settings = match source {
            DemoSource::Files => {
                credentials.node_settings(h, plan, address, &data_dir, &store_dir)?
            }
            DemoSource::Ehr => {
                let files = credentials.node_settings(h, plan, address, &data_dir, &store_dir)?;
                with_ehr(files, &data_dir, &store_dir).await?
            }
            DemoSource::Synthetic { rows } => {
                let index = credentials
                    .hospitals
                    .iter()
                    .position(|o| o.party == h.party);
                let synthetic = node::source::Synthetic {
                    rows,
                    features: plan.model.inputs(),
                    seed: 100_000 + index.unwrap_or_default() as u64,
                };
                credentials.node_settings_with(h, plan, address, &store_dir, Box::new(synthetic))?
            }
        };
        node::store::NodeStore::open(&store_dir)
            .await?
            .install_secret(demo_node_secret(plan.seed, &h.party))
            .await?;
        nodes.push((h.party.clone(), node::start(settings).await?));
    }
    Ok(Federation { coordinator, nodes })
}

impl Federation {
    /// Wait for the plan to end (showing progress) and for every node to stop.
    pub async fn finish(self, progress: &ProgressBar) -> anyhow::Result<Finished> {
        let (coordinator, finished) = self.settle(progress, true).await;
        coordinator.shutdown().await;
        finished
    }

    /// Wait for the plan to end and its ledger to be published, and hand
    /// back the coordinator still serving; with `wait_nodes`, also wait for
    /// every node to stop (otherwise their APIs go on serving).
    pub async fn settle(
        self,
        progress: &ProgressBar,
        wait_nodes: bool,
    ) -> (coordinator::RunningCoordinator, anyhow::Result<Finished>) {
        let mut events = self.coordinator.subscribe();
        let watcher = {
            let progress = progress.clone();
            tokio::spawn(async move {
                while let Ok(event) = events.recv().await {
                    if let PlanEvent::RoundAggregated(r) = event {
                        let all: Vec<learn::Metrics> = r.input_test.values().copied().collect();
                        let acc = learn::Metrics::pooled(&all).accuracy;
                        progress.set_position(u64::from(r.round));
                        progress.set_message(format!(
                            "test accuracy of round {} input {acc:.3}",
                            r.round
                        ));
                    }
                }
            })
        };
        let state = self.coordinator.wait_finished().await;
        if wait_nodes {
            for (name, node) in self.nodes {
                if let Err(e) = node.wait().await {
                    tracing::warn!(node = %name, error = %e, "node stopped with an error");
                }
            }
        }
        watcher.abort();
        let ledger = self
            .coordinator
            .wait_ledger_published(std::time::Duration::from_secs(10))
            .await;
        let finished = match &state.phase {
            Phase::Failed { reason } => Err(anyhow::anyhow!("the plan failed: {reason}")),
            _ => Ok(Finished { state, ledger }),
        };
        (self.coordinator, finished)
    }
}

/// What a federation run leaves: the plan's final state and its ledger.
pub struct Finished {
    /// The plan's state.
    pub state: PlanState,
    /// The ledger recording it.
    pub ledger: coordinator::LedgerSummary,
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
            };
            (Some(settings), Some(password))
        }
        false => (None, None),
    };
    let federation = start_federation_with(&plan, &workdir, DemoSource::Ehr, console).await?;
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
            if let Some(dicom) = node.dicom_address {
                println!(
                    "  {:<12} dicom://{dicom} (C-STORE, AE COHORT)  http://{address}/dicomweb/studies",
                    ""
                );
            }
        }
    }
    let progress = round_progress(plan.rounds);
    let (coordinator, finished) = federation.settle(&progress, !args.serve).await;
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
