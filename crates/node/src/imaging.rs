//! Ultrasound ingest on the node: the DICOM receiver and DICOMweb routes of
//! the `imaging` crate, connected to the hospital's EHR — studies are linked
//! to the Patient holding the DICOM PatientID as an identifier, and each study
//! becomes (or updates) a FHIR ImagingStudy in the EHR.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use imaging::ehr::{ImagingStudySink, PatientDirectory, PatientIdentifier, PatientRef};

/// Where the node keeps images and listens for DICOM associations.
#[derive(Clone, Debug)]
pub struct ImagingSettings {
    /// Directory of the image store (object store, local files).
    pub dir: PathBuf,
    /// Address of the DICOM C-STORE/C-ECHO receiver; none to accept DICOMweb only.
    pub dicom_listen: Option<SocketAddr>,
    /// The receiver's AE title.
    pub ae_title: String,
}

/// Patients of the EHR, found by the identifier a device writes as PatientID.
pub struct EhrDirectory {
    store: ehr::Store,
}

/// ImagingStudy resources written into the EHR (created or replaced by id).
pub struct EhrStudySink {
    store: ehr::Store,
}

fn ehr_error(e: ehr::Error) -> imaging::ImagingError {
    imaging::ImagingError::Ehr(e.to_string())
}

impl PatientDirectory for EhrDirectory {
    fn find_patient<'a>(
        &'a self,
        identifier: &'a PatientIdentifier,
    ) -> BoxFuture<'a, imaging::Result<Option<PatientRef>>> {
        Box::pin(async move {
            let mut tx = self.store.begin().await.map_err(ehr_error)?;
            let ids = tx
                .matching_ids(
                    "Patient",
                    &[("identifier".to_string(), identifier.value.clone())],
                    2,
                )
                .await
                .map_err(ehr_error)?;
            tx.commit().await.map_err(ehr_error)?;
            Ok(match ids.as_slice() {
                [id] => Some(PatientRef {
                    id: id.clone(),
                    display: None,
                }),
                _ => None,
            })
        })
    }
}

impl ImagingStudySink for EhrStudySink {
    fn upsert(&self, imaging_study: serde_json::Value) -> BoxFuture<'_, imaging::Result<()>> {
        Box::pin(async move {
            let id = imaging_study["id"]
                .as_str()
                .ok_or_else(|| imaging::ImagingError::Ehr("ImagingStudy without an id".into()))?
                .to_string();
            let mut tx = self.store.begin().await.map_err(ehr_error)?;
            tx.update("ImagingStudy", &id, imaging_study, None)
                .await
                .map_err(ehr_error)?;
            tx.commit().await.map_err(ehr_error)?;
            Ok(())
        })
    }
}

/// The ingest service over the node's EHR, and its DICOM receiver when configured.
pub async fn start(
    settings: &ImagingSettings,
    ehr_store: ehr::Store,
) -> imaging::Result<(
    Arc<imaging::Imaging>,
    Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
)> {
    std::fs::create_dir_all(&settings.dir)
        .map_err(|e| imaging::ImagingError::Ehr(format!("{}: {e}", settings.dir.display())))?;
    let service = Arc::new(
        imaging::Imaging::open(
            imaging::store::ImageStore::local(&settings.dir)?,
            Arc::new(EhrDirectory {
                store: ehr_store.clone(),
            }),
            Arc::new(EhrStudySink { store: ehr_store }),
        )
        .await?,
    );
    let receiver = match settings.dicom_listen {
        None => None,
        Some(address) => {
            let receiver =
                imaging::scp::DicomReceiver::bind(address, &settings.ae_title, service.clone())
                    .await?;
            let bound = receiver.local_addr()?;
            let task = tokio::spawn(async move {
                if let Err(e) = receiver.run().await {
                    tracing::error!(error = %e, "DICOM receiver stopped");
                }
            });
            tracing::info!(address = %bound, "DICOM receiver listening");
            Some((bound, task))
        }
    };
    Ok((service, receiver))
}
