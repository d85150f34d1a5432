//! `cohort imaging serve`: a stand-alone ultrasound receiver (DICOM C-STORE
//! and C-ECHO, DICOMweb STOW-RS/WADO-RS) over a local image store. Inside a
//! node, the node mounts `imaging::router` and links the hospital's EHR
//! instead of the JSON patient list used here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use imaging::{DicomReceiver, ImageStore, Imaging, MemoryDirectory, PatientRef, StoreSink};

/// Imaging commands.
#[derive(Debug, Subcommand)]
pub enum ImagingCommand {
    /// Receive ultrasound studies over DICOM and DICOMweb, store them in DIR.
    Serve(ServeArgs),
}

/// Arguments of `cohort imaging serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Image store folder (instances, index, reconciliation queue, ImagingStudy JSON).
    #[arg(long)]
    pub dir: PathBuf,
    /// DICOM listen address.
    #[arg(long, default_value = "0.0.0.0:11112")]
    pub dicom_listen: SocketAddr,
    /// HTTP listen address (DICOMweb under /dicomweb).
    #[arg(long, default_value = "127.0.0.1:8042")]
    pub http_listen: SocketAddr,
    /// AE title of the receiver.
    #[arg(long, default_value = "COHORT")]
    pub ae_title: String,
    /// JSON object mapping Patient ID to FHIR Patient id, for linking studies
    /// without an EHR (others wait in the reconciliation queue).
    #[arg(long)]
    pub patients: Option<PathBuf>,
}

/// Run an imaging command until interrupted.
pub async fn run(command: ImagingCommand) -> anyhow::Result<()> {
    match command {
        ImagingCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = ImageStore::local(&args.dir)?;
    let directory = Arc::new(MemoryDirectory::default());
    if let Some(path) = &args.patients {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let patients: HashMap<String, String> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON object of strings", path.display()))?;
        for (identifier, id) in patients {
            directory.add(&identifier, PatientRef { id, display: None });
        }
    }
    let service =
        Arc::new(Imaging::open(store.clone(), directory, Arc::new(StoreSink::new(store))).await?);
    let receiver = DicomReceiver::bind(args.dicom_listen, &args.ae_title, service.clone()).await?;
    println!(
        "DICOM receiver {} on {}",
        args.ae_title,
        receiver.local_addr()?
    );
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_listen))?;
    println!("DICOMweb on http://{}/dicomweb", listener.local_addr()?);
    let app = axum::Router::new().nest("/dicomweb", imaging::router(service));
    tokio::select! {
        result = receiver.run() => result?,
        result = axum::serve(listener, app) => result?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}
