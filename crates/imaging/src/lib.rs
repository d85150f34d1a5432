//! Ultrasound imaging into the EHR: a DICOM receiver (C-STORE and C-ECHO
//! SCP), DICOMweb STOW-RS, QIDO-RS and WADO-RS routes for the node's HTTP
//! API behind bearer tokens ([`AccessControl`], every access recorded),
//! storage in an object store (a local directory by default) with a study
//! index, and a FHIR R4 ImagingStudy per study linked to its Patient by the
//! hospital's identifier. Every instance is checked whole before it is
//! acknowledged ([`validate`]) and a stored instance is never replaced. Studies of patients the EHR does not know wait in
//! a reconciliation queue; nothing received is dropped. Before any image
//! serves training, the [`gate`] de-identifies it (headers and burned-in
//! pixel text) and exports it under pseudonymous keys, leaving out patients
//! who refused research use and studies still waiting for their patient.
//!
//! ```no_run
//! use std::sync::Arc;
//! use imaging::{DicomReceiver, ImageStore, Imaging, MemoryDirectory, MemorySink, WebConfig};
//!
//! # async fn demo(access: Arc<dyn imaging::AccessControl>) -> imaging::Result<()> {
//! let store = ImageStore::local(std::path::Path::new("/var/lib/cohort/images"))?;
//! let service = Arc::new(
//!     Imaging::open(store, Arc::new(MemoryDirectory::default()), Arc::new(MemorySink::default())).await?,
//! );
//! let receiver = DicomReceiver::bind("127.0.0.1:11112".parse().unwrap(), "COHORT", service.clone()).await?;
//! tokio::spawn(receiver.run());
//! let app = axum::Router::new().nest("/dicomweb", imaging::router(service, access, WebConfig::default()));
//! # let _ = app; Ok(()) }
//! ```

pub mod access;
pub mod dicomweb;
pub mod dimse;
pub mod ehr;
pub mod error;
pub mod fhir;
pub mod gate;
pub mod http;
pub mod index;
pub mod instance;
pub mod json;
pub mod multipart;
pub mod qido;
pub mod reconcile;
pub mod render;
pub mod scp;
pub mod service;
pub mod store;
pub mod uid;
pub mod validate;

pub use access::{AccessControl, AccessRecord, Grant, Operation, Reach};
pub use dicomweb::{WebConfig, router};
pub use ehr::{
    ImagingStudySink, MemoryDirectory, MemorySink, PatientDirectory, PatientIdentifier, PatientRef,
};
pub use error::{ImagingError, Result};
pub use gate::{ConsentCheck, GateOptions, GateReport, RefusedPatients, TrainingGate};
pub use reconcile::{QueueReason, QueuedStudy};
pub use scp::DicomReceiver;
pub use service::{Imaging, Link, Stored};
pub use store::ImageStore;
