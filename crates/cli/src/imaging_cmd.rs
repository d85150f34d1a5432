//! `cohort imaging serve`: a stand-alone ultrasound receiver (DICOM C-STORE
//! and C-ECHO, DICOMweb STOW-RS/QIDO-RS/WADO-RS) over a local image store,
//! tied to the hospital's EHR as a node ties it: DICOMweb takes the EHR's
//! bearer tokens and every access is an AuditEvent there; studies are linked
//! to its Patients and filed as ImagingStudy. There is no anonymous mode.
//!
//! `cohort imaging gate`: the imaging side of the training gate over an image
//! store: consenting, linked patients' images de-identified (headers and
//! burned-in text) into a training export under pseudonymous keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use imaging::gate::{FileStatus, FrameCrop, MANIFEST, REPORT};
use imaging::{
    ConsentCheck, DicomReceiver, GateOptions, ImageStore, MemoryDirectory, PatientDirectory,
    PatientRef, TrainingGate, WebConfig,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::deid_cmd::KeyArgs;

/// `futures::future::BoxFuture`, which the imaging traits return.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Imaging commands.
#[derive(Debug, Subcommand)]
pub enum ImagingCommand {
    /// Receive ultrasound studies over DICOM and DICOMweb, store them in DIR.
    Serve(ServeArgs),
    /// Export the stored images that may serve training, de-identified:
    /// patients who refused research use and studies still waiting for their
    /// patient are left out (and counted); each image becomes a de-identified
    /// DICOM file and a grayscale PNG of its first frame, listed in
    /// OUT/manifest.csv under pseudonymous keys, with OUT/report.jsonl saying
    /// what happened to each.
    Gate(GateArgs),
}

/// What part of the first frame becomes the training PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CropArg {
    /// The ultrasound data regions (the whole frame when the file has none).
    DataRegions,
    /// The whole frame.
    WholeFrame,
}

/// Arguments of `cohort imaging gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Image store folder (of `cohort imaging serve` or a node).
    #[arg(long)]
    pub store: PathBuf,
    /// Output folder (created; must be empty or absent).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    /// The hospital's EHR (`sqlite:PATH` or `postgres://...`): patients found
    /// by identifier, consent from their active Consents; the export is
    /// recorded there as an AuditEvent.
    #[arg(long, conflicts_with_all = ["patients", "consents"], required_unless_present = "patients")]
    pub db: Option<String>,
    /// Without an EHR: JSON object mapping Patient ID to FHIR Patient id.
    #[arg(long)]
    pub patients: Option<PathBuf>,
    /// Without an EHR: FHIR Consent resources (one resource, a Bundle, a JSON
    /// array or NDJSON), judged by the EHR gate's consent rule.
    #[arg(long, requires = "patients")]
    pub consents: Option<PathBuf>,
    /// Part of the first frame written as the training PNG.
    #[arg(long, value_enum, default_value_t = CropArg::DataRegions)]
    pub crop: CropArg,
    /// Decoded pixels held at once while cleaning a file, in MiB: a larger image is cleaned in
    /// runs of frames (slower, not bigger).
    #[arg(long, default_value_t = deid::pixel::DEFAULT_PIXEL_MEMORY >> 20)]
    pub pixel_memory_mib: usize,
}

/// Arguments of `cohort imaging serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Image store folder (instances, index, reconciliation queue).
    #[arg(long)]
    pub dir: PathBuf,
    /// The hospital's EHR (`sqlite:PATH` or `postgres://...`). DICOMweb
    /// accepts its bearer tokens (`cohort ehr token create`; scopes on
    /// ImagingStudy: read to search and retrieve, write to store) and records
    /// every access there as an AuditEvent; studies are linked to its
    /// Patients by identifier and filed as ImagingStudy.
    #[arg(long)]
    pub db: String,
    /// DICOM listen address.
    #[arg(long, default_value = "127.0.0.1:11112")]
    pub dicom_listen: SocketAddr,
    /// HTTP listen address (DICOMweb under /dicomweb).
    #[arg(long, default_value = "127.0.0.1:8042")]
    pub http_listen: SocketAddr,
    /// AE title of the receiver (associations calling another are rejected).
    #[arg(long, default_value = "COHORT")]
    pub ae_title: String,
    /// Largest STOW-RS request body, in bytes (larger ones get 413).
    #[arg(long, default_value_t = WebConfig::default().max_upload_bytes)]
    pub max_upload_bytes: u64,
    /// Seconds a DICOM association or an HTTP connection may stay silent
    /// before it is closed.
    #[arg(long, default_value_t = 30)]
    pub idle_timeout_secs: u64,
}

/// Run an imaging command until interrupted.
pub async fn run(command: ImagingCommand) -> anyhow::Result<()> {
    match command {
        ImagingCommand::Serve(args) => serve(args).await,
        ImagingCommand::Gate(args) => gate(args).await,
    }
}

fn patient_list(path: &std::path::Path) -> anyhow::Result<MemoryDirectory> {
    let directory = MemoryDirectory::default();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let patients: HashMap<String, String> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object of strings", path.display()))?;
    for (identifier, id) in patients {
        directory.add(&identifier, PatientRef { id, display: None });
    }
    Ok(directory)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let ehr_store = ehr::Store::open(&args.db)
        .await
        .with_context(|| format!("cannot open the EHR database {}", args.db))?;
    let service = node::imaging::open(&args.dir, ehr_store.clone()).await?;
    let idle = Duration::from_secs(args.idle_timeout_secs);
    let receiver = DicomReceiver::bind(args.dicom_listen, &args.ae_title, service.clone())
        .await?
        .with_idle_timeout(idle);
    println!(
        "DICOM receiver {} on {}",
        args.ae_title,
        receiver.local_addr()?
    );
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_listen))?;
    println!(
        "DICOMweb on http://{}/dicomweb (bearer tokens of {})",
        listener.local_addr()?,
        args.db
    );
    let access = Arc::new(node::imaging::EhrAccess::new(
        ehr_store,
        "cohort imaging serve",
    ));
    let config = WebConfig {
        max_upload_bytes: args.max_upload_bytes,
        idle_timeout: idle,
    };
    let app = axum::Router::new().nest("/dicomweb", imaging::router(service, access, config));
    tokio::select! {
        result = receiver.run() => result?,
        result = imaging::http::serve(listener, app, idle) => result?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}

/// FHIR Consent resources from a file, judged by the EHR gate's rule.
struct ConsentFile {
    consents: Vec<Value>,
    purposes: Vec<ehr::gate::Purpose>,
    now: i64,
}

impl ConsentFile {
    /// Consents from JSON (a Consent, a Bundle of them, an array) or NDJSON.
    fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let values: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            Ok(value) if value["resourceType"] == "Bundle" => value["entry"]
                .as_array()
                .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
                .unwrap_or_default(),
            Ok(value) => vec![value],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(n, l)| {
                    serde_json::from_str(l)
                        .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))
                })
                .collect::<anyhow::Result<_>>()?,
        };
        Ok(Self {
            consents: values
                .into_iter()
                .filter(|v| v["resourceType"] == "Consent")
                .collect(),
            purposes: ehr::gate::default_research_purposes(),
            now: ehr::datetime::now_micros(),
        })
    }
}

impl ConsentCheck for ConsentFile {
    fn refuses_research<'a>(
        &'a self,
        patient: &'a PatientRef,
    ) -> BoxFuture<'a, imaging::Result<bool>> {
        let refused = self.consents.iter().any(|consent| {
            ehr::gate::denying_patient(consent, &self.purposes, self.now).as_deref()
                == Some(patient.id.as_str())
        });
        Box::pin(async move { Ok(refused) })
    }
}

fn load_key(args: &KeyArgs) -> anyhow::Result<deid::DeidKey> {
    let secret = match (&args.key_file, &args.key) {
        (Some(path), _) => std::fs::read(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?,
        (None, Some(key)) => key.as_bytes().to_vec(),
        (None, None) => {
            bail!("no de-identification key: pass --key-file or set COHORT_DEID_KEY_FILE")
        }
    };
    Ok(deid::DeidKey::new(&secret)?)
}

async fn gate(args: GateArgs) -> anyhow::Result<()> {
    let key = load_key(&args.key)?;
    if !args.store.join("index").is_dir() {
        bail!("{} holds no image store index", args.store.display());
    }
    let store = ImageStore::local(&args.store)?;
    let ehr_store = match &args.db {
        Some(db) => Some(
            ehr::Store::open(db)
                .await
                .with_context(|| format!("cannot open the EHR database {db}"))?,
        ),
        None => None,
    };
    let (directory, consent): (Arc<dyn PatientDirectory>, Arc<dyn ConsentCheck>) =
        match (&ehr_store, &args.patients) {
            (Some(ehr), _) => (
                Arc::new(node::imaging::EhrDirectory::new(ehr.clone())),
                Arc::new(node::imaging::EhrConsent::new(ehr.clone())),
            ),
            (None, Some(patients)) => (
                Arc::new(patient_list(patients)?),
                Arc::new(match &args.consents {
                    Some(path) => ConsentFile::read(path)?,
                    None => ConsentFile {
                        consents: Vec::new(),
                        purposes: Vec::new(),
                        now: 0,
                    },
                }),
            ),
            (None, None) => bail!("pass --db, or --patients (and --consents)"),
        };
    let options = GateOptions {
        crop: match args.crop {
            CropArg::DataRegions => FrameCrop::DataRegions,
            CropArg::WholeFrame => FrameCrop::WholeFrame,
        },
        pixel_memory: args.pixel_memory_mib << 20,
        ..GateOptions::default()
    };
    let gate = TrainingGate::new(store, directory, consent, key, options)?;
    let selection = gate.select().await?;
    let bar = ProgressBar::new(selection.instances.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = gate
        .export(&selection, &args.out, &|outcome| {
            if let (FileStatus::Failed, Some(error)) = (outcome.status, &outcome.error) {
                bar.println(format!("{}: {error}", outcome.instance_key));
            }
            bar.inc(1);
        })
        .await?;
    bar.finish_and_clear();
    if let Some(ehr) = &ehr_store {
        node::imaging::record_training_export(ehr, &report)
            .await
            .context("cannot record the export in the EHR's audit log")?;
    }
    println!(
        "{} exported, {} excluded by consent, {} waiting for reconciliation, {} failed; \
         manifest {}, report {}",
        report.exported,
        report.excluded_by_consent,
        report.unreconciled,
        report.failed,
        args.out.join(MANIFEST).display(),
        args.out.join(REPORT).display()
    );
    if report.failed > 0 {
        bail!(
            "{} of {} images could not be exported (see the report)",
            report.failed,
            report.failed + report.exported
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(file: &ConsentFile, id: &str) -> bool {
        let patient = PatientRef {
            id: id.into(),
            display: None,
        };
        block_on(file.refuses_research(&patient)).expect("answers")
    }

    /// Run a ready future (the consent file answers without waiting).
    fn block_on<T>(future: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn consents_are_read_from_a_bundle_an_array_or_ndjson() {
        let deny = |patient: &str| {
            serde_json::json!({
                "resourceType": "Consent", "status": "active",
                "scope": {"coding": [{"code": "research"}]},
                "patient": {"reference": format!("Patient/{patient}")},
                "provision": {"type": "deny"},
            })
        };
        let permit = serde_json::json!({
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"code": "research"}]},
            "patient": {"reference": "Patient/p2"}, "provision": {"type": "permit"},
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let bundle = serde_json::json!({"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": deny("p1")}, {"resource": permit.clone()}]});
        let array = serde_json::json!([deny("p1"), permit.clone()]);
        let ndjson = format!("{}\n{}\n", deny("p1"), permit);
        for (name, text) in [
            ("bundle.json", bundle.to_string()),
            ("array.json", array.to_string()),
            ("consents.ndjson", ndjson),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            let file = ConsentFile::read(&path).expect("reads");
            assert!(refused(&file, "p1"), "{name}");
            assert!(!refused(&file, "p2"), "{name}");
            assert!(!refused(&file, "p3"), "{name}");
        }
    }
}
