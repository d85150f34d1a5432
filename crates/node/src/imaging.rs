//! Ultrasound ingest on the node: the DICOM receiver and DICOMweb routes of
//! the `imaging` crate, connected to the hospital's EHR — studies are linked
//! to the Patient holding the DICOM PatientID as an identifier, and each study
//! becomes (or updates) a FHIR ImagingStudy in the EHR. For training, the
//! imaging gate asks the EHR's consent rule ([`EhrConsent`]) and its export
//! is recorded as an AuditEvent ([`record_training_export`]). DICOMweb takes
//! the EHR's bearer tokens and records every access as an AuditEvent
//! ([`EhrAccess`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use imaging::ehr::{ImagingStudySink, PatientDirectory, PatientIdentifier, PatientRef};
use imaging::gate::ConsentCheck;
use imaging::{AccessControl, AccessRecord, Grant, ImagingError, Operation, Reach};

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

impl EhrDirectory {
    /// Patients of `store`.
    pub fn new(store: ehr::Store) -> Self {
        Self { store }
    }
}

/// ImagingStudy resources written into the EHR (created or replaced by id).
pub struct EhrStudySink {
    store: ehr::Store,
}

/// The EHR training gate's consent rule for images: a Patient refused
/// research use when one of their active Consents denies a research purpose
/// now (`ehr::gate::denying_patient` with the default research purposes).
pub struct EhrConsent {
    store: ehr::Store,
    purposes: Vec<ehr::gate::Purpose>,
}

impl EhrConsent {
    /// The Consents of `store`.
    pub fn new(store: ehr::Store) -> Self {
        Self {
            store,
            purposes: ehr::gate::default_research_purposes(),
        }
    }
}

impl ConsentCheck for EhrConsent {
    fn refuses_research<'a>(
        &'a self,
        patient: &'a PatientRef,
    ) -> BoxFuture<'a, imaging::Result<bool>> {
        Box::pin(async move {
            let mut request = ehr::search::SearchRequest::parse(
                "Consent",
                &[
                    ("patient".to_string(), format!("Patient/{}", patient.id)),
                    ("status".to_string(), "active".to_string()),
                ],
            )
            .map_err(ehr_error)?;
            request.count = usize::MAX / 2;
            request.total = ehr::search::Total::None;
            let consents = self.store.search(&request, None).await.map_err(ehr_error)?;
            let now = ehr::datetime::now_micros();
            for version in consents.matches {
                let consent: serde_json::Value = serde_json::from_str(
                    version.content.as_deref().unwrap_or("null"),
                )
                .map_err(|e| imaging::ImagingError::Ehr(format!("Consent/{}: {e}", version.id)))?;
                if ehr::gate::denying_patient(&consent, &self.purposes, now).as_deref()
                    == Some(patient.id.as_str())
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }
}

/// Record an imaging training export in the EHR's access log: whose images
/// were read for it (the export itself names nobody) and the counts.
pub async fn record_training_export(
    store: &ehr::Store,
    report: &imaging::GateReport,
) -> ehr::Result<()> {
    let principal = ehr::auth::Principal {
        name: "imaging-training-gate".to_string(),
        scopes: Vec::new(),
        patient: None,
    };
    let access = ehr::audit::Access {
        principal: &principal,
        address: None,
        action: ehr::audit::Action::Read,
        interaction: "operation",
        resources: Vec::new(),
        patients: report.patients.iter().cloned().collect(),
        query: None,
        success: true,
        description: Some(format!(
            "imaging training export: {} instances exported, {} excluded by consent, {} unreconciled, {} failed",
            report.exported, report.excluded_by_consent, report.unreconciled, report.failed
        )),
    };
    write_audit(store, &access, "cohort imaging training gate").await
}

pub(crate) async fn write_audit(
    store: &ehr::Store,
    access: &ehr::audit::Access<'_>,
    observer: &str,
) -> ehr::Result<()> {
    let mut tx = store.begin().await?;
    tx.create(ehr::audit::audit_event(
        access,
        observer,
        ehr::datetime::now_micros(),
    ))
    .await?;
    tx.commit().await
}

/// DICOMweb access through the EHR: the FHIR API's bearer tokens and SMART
/// scopes on ImagingStudy (read for QIDO-RS searches and WADO-RS retrievals,
/// create for STOW-RS, update for the reconciliation queue; `patient/`
/// scopes reach only studies linked to the token's patient), and an
/// AuditEvent in the EHR for every access, naming the studies
/// (`ImagingStudy/{Study Instance UID}`) and their patients.
pub struct EhrAccess {
    store: ehr::Store,
    observer: String,
}

impl EhrAccess {
    /// Tokens and access log of `store`; AuditEvents name `observer` as
    /// their source.
    pub fn new(store: ehr::Store, observer: impl Into<String>) -> Self {
        Self {
            store,
            observer: observer.into(),
        }
    }
}

impl AccessControl for EhrAccess {
    fn authorize<'a>(
        &'a self,
        token: Option<&'a str>,
        operation: Operation,
    ) -> BoxFuture<'a, imaging::Result<Grant>> {
        Box::pin(async move {
            let token = token.ok_or_else(|| {
                ImagingError::Unauthorized(
                    "DICOMweb needs an Authorization: Bearer token (one of the EHR's tokens)"
                        .into(),
                )
            })?;
            let principal = self.store.authenticate(token).await.map_err(auth_error)?;
            let interaction = match operation {
                Operation::Search => ehr::auth::Interaction::Search,
                Operation::Read => ehr::auth::Interaction::Read,
                Operation::Store => ehr::auth::Interaction::Create,
                Operation::Reconcile => ehr::auth::Interaction::Update,
            };
            let reach = match principal
                .access("ImagingStudy", interaction)
                .map_err(auth_error)?
            {
                ehr::auth::Access::All => Reach::All,
                ehr::auth::Access::Compartment(patient) => Reach::Patient(patient),
            };
            Ok(Grant {
                name: principal.name,
                reach,
            })
        })
    }

    fn record<'a>(
        &'a self,
        grant: &'a Grant,
        address: Option<&'a str>,
        access: &'a AccessRecord,
    ) -> BoxFuture<'a, imaging::Result<()>> {
        Box::pin(async move {
            let principal = ehr::auth::Principal {
                name: grant.name.clone(),
                scopes: Vec::new(),
                patient: None,
            };
            let (action, interaction) = match access.operation {
                Operation::Search => (ehr::audit::Action::Read, "search-type"),
                Operation::Read => (ehr::audit::Action::Read, "read"),
                Operation::Store => (ehr::audit::Action::Create, "create"),
                Operation::Reconcile => (ehr::audit::Action::Execute, "operation"),
            };
            let mut resources: Vec<String> = access
                .studies
                .iter()
                .map(|study| format!("ImagingStudy/{study}"))
                .collect();
            if resources.is_empty() {
                resources.push("ImagingStudy".to_string());
            }
            let description = match &access.description {
                Some(what) => format!("DICOMweb {}: {what}", access.interaction),
                None => format!("DICOMweb {}", access.interaction),
            };
            let event = ehr::audit::Access {
                principal: &principal,
                address,
                action,
                interaction,
                resources,
                patients: access.patients.clone(),
                query: access.query.as_deref(),
                success: access.success,
                description: Some(description),
            };
            write_audit(&self.store, &event, &self.observer)
                .await
                .map_err(ehr_error)
        })
    }
}

fn auth_error(e: ehr::Error) -> ImagingError {
    match e {
        ehr::Error::Unauthorized(message) => ImagingError::Unauthorized(message),
        ehr::Error::Forbidden(message) => ImagingError::Forbidden(message),
        other => ehr_error(other),
    }
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

/// The ingest service over the image store in `dir`, filing into and
/// finding patients in the EHR `ehr_store`.
pub async fn open(
    dir: &std::path::Path,
    ehr_store: ehr::Store,
) -> imaging::Result<Arc<imaging::Imaging>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| imaging::ImagingError::Ehr(format!("{}: {e}", dir.display())))?;
    Ok(Arc::new(
        imaging::Imaging::open(
            imaging::store::ImageStore::local(dir)?,
            Arc::new(EhrDirectory {
                store: ehr_store.clone(),
            }),
            Arc::new(EhrStudySink { store: ehr_store }),
        )
        .await?,
    ))
}

/// The ingest service over the node's EHR, and its DICOM receiver when configured.
pub async fn start(
    settings: &ImagingSettings,
    ehr_store: ehr::Store,
) -> imaging::Result<(
    Arc<imaging::Imaging>,
    Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
)> {
    let service = open(&settings.dir, ehr_store).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn put(store: &ehr::Store, resource: serde_json::Value) {
        let (t, id) = (
            resource["resourceType"].as_str().expect("type").to_string(),
            resource["id"].as_str().expect("id").to_string(),
        );
        let mut tx = store.begin().await.expect("tx");
        tx.update(&t, &id, resource, None).await.expect("stored");
        tx.commit().await.expect("committed");
    }

    fn consent(id: &str, patient: &str, status: &str, provision: &str) -> serde_json::Value {
        json!({"resourceType": "Consent", "id": id, "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8"}]}],
            "patient": {"reference": format!("Patient/{patient}")},
            "provision": {"type": provision}})
    }

    #[tokio::test]
    async fn the_image_gate_sees_the_ehr_patients_and_their_refusals() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("ehr.db").display());
        let store = ehr::Store::open(&url).await.expect("EHR opens");
        for (id, mrn) in [("p1", "MRN-1"), ("p2", "MRN-2"), ("p3", "MRN-3")] {
            put(
                &store,
                json!({"resourceType": "Patient", "id": id,
                    "identifier": [{"system": "urn:hospital:mrn", "value": mrn}]}),
            )
            .await;
        }
        put(&store, consent("c1", "p1", "active", "deny")).await;
        put(&store, consent("c2", "p2", "inactive", "deny")).await;
        put(&store, consent("c3", "p3", "active", "permit")).await;

        let directory = EhrDirectory::new(store.clone());
        let found = directory
            .find_patient(&PatientIdentifier {
                issuer: None,
                value: "MRN-1".into(),
            })
            .await
            .expect("search");
        assert_eq!(found.map(|p| p.id).as_deref(), Some("p1"));

        let consent = EhrConsent::new(store.clone());
        let refuses = |id: &str| {
            let patient = PatientRef {
                id: id.into(),
                display: None,
            };
            let consent = &consent;
            async move { consent.refuses_research(&patient).await.expect("answers") }
        };
        assert!(refuses("p1").await);
        assert!(!refuses("p2").await);
        assert!(!refuses("p3").await);

        let report = imaging::GateReport {
            exported: 2,
            patients: ["p3".to_string()].into_iter().collect(),
            ..imaging::GateReport::default()
        };
        record_training_export(&store, &report)
            .await
            .expect("audited");
        let mut tx = store.begin().await.expect("tx");
        let events = tx
            .matching_ids(
                "AuditEvent",
                &[("entity".to_string(), "Patient/p3".to_string())],
                10,
            )
            .await
            .expect("search");
        tx.commit().await.expect("committed");
        assert_eq!(events.len(), 1);
    }
}
