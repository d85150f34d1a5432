//! Whole federations in one process, for tests, benchmarks and `cohort demo`:
//! a federation CA and every party's credentials, the coordinator on a free
//! loopback port and one node per hospital, each with its own store, talking
//! gRPC over mutual TLS exactly as separate processes do.
//!
//! ```no_run
//! # async fn f() -> Result<(), harness::HarnessError> {
//! let plan = fed::plan::TrainingPlan::heart_disease_default();
//! let dir = std::path::Path::new("/tmp/federation");
//! let finished = harness::start_federation(&plan, dir).await?.finish(|_| {}).await?;
//! println!("final model {}", finished.state.global_sha256);
//! # Ok(()) }
//! ```

pub mod routes;

use std::path::Path;

use fed::client::LocalData;
use fed::plan::TrainingPlan;
use fed::plan_run::{Phase, PlanEvent, PlanState};

/// Why a federation could not be set up or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Credentials could not be issued or loaded.
    #[error(transparent)]
    Pki(#[from] pki::Error),
    /// A hospital could not be enrolled.
    #[error(transparent)]
    Registry(#[from] coordinator::registry::RegistryError),
    /// The coordinator did not start.
    #[error(transparent)]
    Coordinator(#[from] coordinator::CoordinatorError),
    /// A node did not start.
    #[error(transparent)]
    Node(#[from] node::NodeError),
    /// A node's data source is unusable.
    #[error(transparent)]
    Source(#[from] node::source::SourceError),
    /// A node's EHR failed.
    #[error("EHR: {0}")]
    Ehr(#[from] ehr::Error),
    /// The plan failed.
    #[error("the plan failed: {0}")]
    PlanFailed(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A loopback address with a free port.
fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

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

/// The secret of a simulated hospital, derived from the plan's seed so that
/// a run (DP noise included) is reproducible. A real node draws its secret at
/// random on first start and never shares it; here one process plays every
/// hospital, so nothing is lost by deriving it.
fn simulated_node_secret(seed: u64, hospital: &str) -> [u8; 32] {
    let mut bytes = b"cohort demo node secret\0".to_vec();
    bytes.extend_from_slice(&seed.to_be_bytes());
    bytes.extend_from_slice(hospital.as_bytes());
    fed::sha256(&bytes)
}

/// Write the embedded Heart Disease files into `dir`.
pub fn write_heart_data(dir: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, content) in HEART_FILES {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(io(&path))?;
    }
    Ok(())
}

/// The four hospitals' data as the baselines read it.
pub async fn heart_sites(dir: &Path) -> Result<Vec<(String, LocalData)>, HarnessError> {
    use node::source::{DatasetSource, HeartDiseaseFiles};
    let mut sites = Vec::new();
    for c in learn::heart::CENTRES {
        let source = HeartDiseaseFiles::new(dir.to_path_buf(), c)?;
        sites.push((c.to_string(), source.load().await?.data.into_table()?));
    }
    Ok(sites)
}

/// Where a federation's hospitals take their training data from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// Each node's own EHR (FHIR store loaded with its centre's records),
    /// through the training gate; the FHIR API is served on the node's port.
    Ehr,
    /// The UCI files directly (faster to start; used by tests and benchmarks).
    Files,
    /// The coded notes of each node's own EHR (a coding plan), through the
    /// text gate: the caller loads each EHR first ([`node_ehr`]).
    CodedNotes,
    /// The transcripts and signed notes of each node's own EHR (a
    /// note-sections plan), through the text gate: the caller loads each EHR
    /// first ([`node_ehr`]).
    SignedNotes,
    /// Every text of each node's own EHR with its patient's record (a
    /// phi-tagger plan in English): the caller loads each EHR first
    /// ([`node_ehr`]).
    TaggerNotes,
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
    pub fn prepare(dir: &Path, hospitals: &[String]) -> Result<Self, HarnessError> {
        let ca = match pki::CertificateAuthority::load(dir) {
            Ok(ca) => ca,
            Err(_) => {
                let ca = pki::CertificateAuthority::generate("cohort-demo")?;
                ca.save(dir)?;
                ca
            }
        };
        let party = |name: &str| -> Result<pki::PartyCredentials, HarnessError> {
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
                .collect::<Result<_, _>>()?,
        })
    }

    /// Coordinator settings enrolling every hospital, storing under `dir`.
    pub fn coordinator_settings(
        &self,
        plan: &TrainingPlan,
        listen: std::net::SocketAddr,
        dir: &Path,
    ) -> Result<coordinator::CoordinatorSettings, HarnessError> {
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
    ) -> Result<node::NodeSettings, HarnessError> {
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
    ) -> Result<node::NodeSettings, HarnessError> {
        Ok(node::NodeSettings {
            ehr: None,
            imaging: None,
            name: hospital.party.clone(),
            coordinator: format!("https://127.0.0.1:{}", coordinator.port()),
            coordinator_name: "coordinator".into(),
            data_dir: store_dir.to_path_buf(),
            approved_code_hashes: vec![plan.code_hash()],
            exit_when_done: true,
            listen: Some(loopback()),
            tls: tls(hospital),
            source,
            console: None,
            review: node::config::Review::AllowList,
            dictation: None,
            memory: None,
            secret: Some(simulated_node_secret(plan.seed, &hospital.party)),
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

/// The EHR of `hospital`'s node in a federation under `workdir`, as the node
/// opens it (created empty when missing).
pub async fn node_ehr(workdir: &Path, hospital: &str) -> Result<ehr::Store, HarnessError> {
    open_ehr(&workdir.join("nodes").join(hospital)).await
}

async fn open_ehr(store_dir: &Path) -> Result<ehr::Store, HarnessError> {
    std::fs::create_dir_all(store_dir).map_err(io(store_dir))?;
    let url = format!("sqlite:{}", store_dir.join("ehr.sqlite").display());
    Ok(ehr::Store::open(&url).await?)
}

/// The weights of a model a federation under `workdir` stored (e.g. its final
/// model, `PlanState::global_sha256`), checked against their hash.
pub fn stored_model(workdir: &Path, sha256: &str) -> Result<learn::Weights, HarnessError> {
    let path = workdir
        .join("coordinator/artifacts/models")
        .join(format!("{sha256}.safetensors"));
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let weights = learn::Weights::from_safetensors(&bytes)
        .map_err(|e| HarnessError::PlanFailed(format!("{}: {e}", path.display())))?;
    if weights.sha256_hex() != sha256 {
        return Err(HarnessError::PlanFailed(format!(
            "{} does not hash to its name",
            path.display()
        )));
    }
    Ok(weights)
}

/// Give a node its own EHR under `store_dir` (loaded with its centre's records
/// as FHIR when it holds no patient yet), and make the gate over it the
/// node's dataset.
async fn with_ehr(
    mut settings: node::NodeSettings,
    data_dir: &Path,
    store_dir: &Path,
) -> Result<node::NodeSettings, HarnessError> {
    let store = open_ehr(store_dir).await?;
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
        dicom_listen: Some(loopback()),
        ae_title: "COHORT".into(),
    });
    Ok(settings)
}

/// Issue credentials, start the coordinator on a free loopback port and one
/// node task per hospital, each with its own store under `workdir`, training
/// from the UCI files.
pub async fn start_federation(
    plan: &TrainingPlan,
    workdir: &Path,
) -> Result<Federation, HarnessError> {
    start_federation_from(plan, workdir, DataSource::Files).await
}

/// Run `plan` to its end in a federation under `workdir` (the UCI files as
/// data) and return its final state.
pub async fn run_plan(plan: &TrainingPlan, workdir: &Path) -> Result<PlanState, HarnessError> {
    Ok(start_federation(plan, workdir)
        .await?
        .finish(|_| {})
        .await?
        .state)
}

/// [`start_federation`] with the data source of the nodes chosen.
pub async fn start_federation_from(
    plan: &TrainingPlan,
    workdir: &Path,
    source: DataSource,
) -> Result<Federation, HarnessError> {
    start_federation_with(plan, workdir, source, None).await
}

/// [`start_federation_from`] with web consoles: the coordinator's on
/// `console.listen`, and each node that has an EHR its own on a free loopback
/// port, with the same accounts.
pub async fn start_federation_with(
    plan: &TrainingPlan,
    workdir: &Path,
    source: DataSource,
    console: Option<console::ConsoleSettings>,
) -> Result<Federation, HarnessError> {
    let data_dir = workdir.join("data/heart-disease");
    write_heart_data(&data_dir)?;
    let credentials = Credentials::prepare(&workdir.join("pki"), &plan.hospitals)?;
    let mut settings =
        credentials.coordinator_settings(plan, loopback(), &workdir.join("coordinator"))?;
    settings.console = console.clone();
    let coordinator = coordinator::start(settings).await?;
    let mut nodes = Vec::new();
    for h in &credentials.hospitals {
        let store_dir = workdir.join("nodes").join(&h.party);
        let address = coordinator.address();
        let settings = match source {
            DataSource::Files => {
                credentials.node_settings(h, plan, address, &data_dir, &store_dir)?
            }
            DataSource::Ehr => {
                let files = credentials.node_settings(h, plan, address, &data_dir, &store_dir)?;
                with_ehr(files, &data_dir, &store_dir).await?
            }
            DataSource::CodedNotes | DataSource::SignedNotes | DataSource::TaggerNotes => {
                let store = open_ehr(&store_dir).await?;
                let taggers = node::task::tagger_models(&store_dir);
                let source: Box<dyn node::source::DatasetSource> = match source {
                    DataSource::CodedNotes => Box::new(
                        node::source::EhrCodedNotes::new(store.clone(), deid::text::Lang::En)
                            .with_taggers(taggers),
                    ),
                    DataSource::TaggerNotes => Box::new(node::source::EhrTaggerNotes::new(
                        store.clone(),
                        deid::text::Lang::En,
                    )),
                    _ => Box::new(
                        node::source::EhrSignedNotes::new(store.clone()).with_taggers(taggers),
                    ),
                };
                let mut settings =
                    credentials.node_settings_with(h, plan, address, &store_dir, source)?;
                settings.ehr = Some(store);
                settings
            }
            DataSource::Synthetic { rows } => {
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
        let mut settings = settings;
        if let (Some(c), Some(_)) = (&console, &settings.ehr) {
            settings.console = Some(console::ConsoleSettings {
                listen: loopback(),
                ..c.clone()
            });
        }
        nodes.push((h.party.clone(), node::start(settings).await?));
    }
    Ok(Federation { coordinator, nodes })
}

impl Federation {
    /// Wait for the plan to end (calling `on_event` with each of its events)
    /// and for every node to stop.
    pub async fn finish(
        self,
        on_event: impl FnMut(PlanEvent) + Send + 'static,
    ) -> Result<Finished, HarnessError> {
        let (coordinator, finished) = self.settle(on_event, true).await;
        coordinator.shutdown().await;
        finished
    }

    /// Wait for the plan to end and its ledger to be published, and hand
    /// back the coordinator still serving; with `wait_nodes`, also wait for
    /// every node to stop (otherwise their APIs go on serving).
    pub async fn settle(
        self,
        mut on_event: impl FnMut(PlanEvent) + Send + 'static,
        wait_nodes: bool,
    ) -> (
        coordinator::RunningCoordinator,
        Result<Finished, HarnessError>,
    ) {
        let mut events = self.coordinator.subscribe();
        let watcher = tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                on_event(event);
            }
        });
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
            Phase::Failed { reason } => Err(HarnessError::PlanFailed(reason.clone())),
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
