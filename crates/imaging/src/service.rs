//! The imaging service: store an instance, index it, and link its study to
//! the EHR (or queue it for reconciliation); retrieve and render.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::ehr::{ImagingStudySink, PatientDirectory};
use crate::error::{ImagingError, Result};
use crate::fhir::imaging_study;
use crate::index::{StudyRecord, record_path};
use crate::instance::{InstanceInfo, ULTRASOUND_SOP_CLASSES, instance_path};
use crate::reconcile::{QUEUE_PREFIX, QueueReason, QueuedStudy, queue_path};
use crate::store::ImageStore;
use crate::{render, uid, validate};

/// Where a stored instance's study stands with the EHR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// The study's ImagingStudy references this Patient id.
    Linked(String),
    /// The study waits in the reconciliation queue.
    Queued(QueueReason),
}

/// The outcome of storing one instance.
#[derive(Debug, Clone)]
pub struct Stored {
    /// What the instance is.
    pub info: InstanceInfo,
    /// Its study's link to the EHR.
    pub link: Link,
    /// The same bytes were already stored (nothing was written).
    pub already_stored: bool,
}

/// Receives, stores and serves images.
pub struct Imaging {
    store: ImageStore,
    directory: Arc<dyn PatientDirectory>,
    sink: Arc<dyn ImagingStudySink>,
    studies: Mutex<HashMap<String, StudyRecord>>,
}

impl std::fmt::Debug for Imaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imaging")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Imaging {
    /// Open the service over a store, loading its study index.
    pub async fn open(
        store: ImageStore,
        directory: Arc<dyn PatientDirectory>,
        sink: Arc<dyn ImagingStudySink>,
    ) -> Result<Self> {
        let mut studies = HashMap::new();
        for path in store.list("index").await? {
            if let Some(bytes) = store.get(&path).await? {
                let record: StudyRecord = serde_json::from_slice(&bytes)?;
                studies.insert(record.uid.clone(), record);
            }
        }
        Ok(Self {
            store,
            directory,
            sink,
            studies: Mutex::new(studies),
        })
    }

    /// Store one DICOM Part 10 instance held in memory (see
    /// [`Imaging::store_file`]).
    pub async fn store_instance(&self, bytes: Bytes) -> Result<Stored> {
        let staged = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut file = tempfile::NamedTempFile::new()?;
            std::io::Write::write_all(&mut file, &bytes)?;
            Ok(file.into_temp_path())
        })
        .await
        .map_err(|e| ImagingError::Network(e.to_string()))?
        .map_err(|e| ImagingError::InvalidInstance(format!("cannot stage the instance: {e}")))?;
        self.store_file(&staged).await
    }

    /// Store one DICOM Part 10 instance (an ultrasound SOP class) from a
    /// local file, index it and create or update its study's ImagingStudy.
    /// The file is checked first ([`validate::check_file`]): a truncated or
    /// inconsistent instance is refused. A stored instance is never
    /// replaced: sending the same bytes again is acknowledged and changes
    /// nothing, a different object under a stored SOP Instance UID is a
    /// [`ImagingError::Conflict`].
    pub async fn store_file(&self, file: &std::path::Path) -> Result<Stored> {
        let path = file.to_path_buf();
        let info = tokio::task::spawn_blocking(move || {
            let info = InstanceInfo::read_file(&path, &ULTRASOUND_SOP_CLASSES)?;
            validate::check_file(&path, &info)?;
            Ok::<_, ImagingError>(info)
        })
        .await
        .map_err(|e| ImagingError::InvalidInstance(e.to_string()))??;
        // one store at a time: the check for a stored copy and the write
        // must not interleave with another store of the same instance
        let mut studies = self.studies.lock().await;
        match self.store.same_as_file(&info.path(), file).await? {
            Some(true) => {
                let link = match studies.get_mut(&info.study_uid) {
                    Some(record) => record.current_link(),
                    None => {
                        self.link(studies.entry(info.study_uid.clone()).or_default())
                            .await?
                    }
                };
                tracing::info!(study = %info.study_uid, instance = %info.sop_uid, "instance already stored");
                return Ok(Stored {
                    info,
                    link,
                    already_stored: true,
                });
            }
            Some(false) => {
                return Err(ImagingError::Conflict(format!(
                    "a different instance is already stored as SOP Instance UID {}; stored instances are not replaced",
                    info.sop_uid
                )));
            }
            None => {}
        }
        self.store.put_file(&info.path(), file).await?;
        let record = studies.entry(info.study_uid.clone()).or_default();
        record.add(&info);
        let link = self.link(record).await?;
        tracing::info!(study = %info.study_uid, instance = %info.sop_uid, ?link, "stored instance");
        Ok(Stored {
            info,
            link,
            already_stored: false,
        })
    }

    /// Link a study to its Patient (upserting its ImagingStudy), or queue
    /// it; the study's index record is written with the outcome.
    async fn link(&self, record: &mut StudyRecord) -> Result<Link> {
        let found = match &record.patient {
            Some(identifier) => self.directory.find_patient(identifier).await?,
            None => None,
        };
        record.linked = found.as_ref().map(|p| p.id.clone());
        self.store
            .put(
                &record_path(&record.uid),
                Bytes::from(serde_json::to_vec(&record)?),
            )
            .await?;
        match found {
            Some(patient) => {
                self.sink.upsert(imaging_study(record, &patient)).await?;
                self.store.delete(&queue_path(&record.uid)).await?;
                Ok(Link::Linked(patient.id))
            }
            None => {
                let reason = if record.patient.is_some() {
                    QueueReason::UnknownPatient
                } else {
                    QueueReason::NoPatientId
                };
                let queued = QueuedStudy {
                    study_uid: record.uid.clone(),
                    patient: record.patient.clone(),
                    reason,
                    instances: record.instance_count(),
                };
                self.store
                    .put(
                        &queue_path(&record.uid),
                        Bytes::from(serde_json::to_vec(&queued)?),
                    )
                    .await?;
                Ok(Link::Queued(reason))
            }
        }
    }

    /// The studies waiting for their patient.
    pub async fn reconciliation_queue(&self) -> Result<Vec<QueuedStudy>> {
        let mut queue = Vec::new();
        for path in self.store.list(QUEUE_PREFIX).await? {
            if let Some(bytes) = self.store.get(&path).await? {
                queue.push(serde_json::from_slice(&bytes)?);
            }
        }
        Ok(queue)
    }

    /// Try again to link every queued study; returns how many got linked.
    pub async fn reconcile(&self) -> Result<usize> {
        let mut studies = self.studies.lock().await;
        let mut linked = 0;
        for queued in self.reconciliation_queue().await? {
            if let Some(record) = studies.get_mut(&queued.study_uid)
                && matches!(self.link(record).await?, Link::Linked(_))
            {
                linked += 1;
            }
        }
        Ok(linked)
    }

    /// Every study's index record, by Study Instance UID.
    pub async fn studies(&self) -> Vec<StudyRecord> {
        let mut studies: Vec<StudyRecord> = self.studies.lock().await.values().cloned().collect();
        studies.sort_by(|a, b| a.uid.cmp(&b.uid));
        studies
    }

    /// The object store holding the images.
    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    /// The index record of a study.
    pub async fn study(&self, study: &str) -> Option<StudyRecord> {
        self.studies.lock().await.get(study).cloned()
    }

    /// The stored bytes of an instance.
    pub async fn retrieve(&self, study: &str, series: &str, instance: &str) -> Result<Bytes> {
        let path = instance_path(
            uid::checked(study)?,
            uid::checked(series)?,
            uid::checked(instance)?,
        );
        self.store
            .get(&path)
            .await?
            .ok_or_else(|| ImagingError::NotFound(format!("instance {instance}")))
    }

    /// Frame `frame` (1-based) of an instance, rendered as PNG.
    pub async fn render(
        &self,
        study: &str,
        series: &str,
        instance: &str,
        frame: u32,
    ) -> Result<Vec<u8>> {
        let bytes = self.retrieve(study, series, instance).await?;
        tokio::task::spawn_blocking(move || render::frame_png(&bytes, frame))
            .await
            .map_err(|e| ImagingError::Render(e.to_string()))?
    }
}
