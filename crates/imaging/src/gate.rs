//! The imaging side of the node's training gate: before any image serves
//! training it is de-identified.
//!
//! [`TrainingGate::select`] reads the study index and keeps the instances
//! whose study is linked to a Patient of the EHR who has not refused research
//! use ([`ConsentCheck`]); studies still in the reconciliation queue (patient
//! unknown or no Patient ID) are left out. [`TrainingGate::export`] then
//! de-identifies each instance with `deid` (PS3.15 Annex E headers and
//! burned-in pixel text) and writes, under pseudonymous keys only:
//!
//! ```text
//! OUT/manifest.csv                          one row per exported instance
//! OUT/report.jsonl                          one line per instance tried: exported or failed
//! OUT/{study}/{series}/{instance}.dcm       the de-identified DICOM file
//! OUT/{study}/{series}/{instance}.png       its first frame, 8-bit grayscale, data regions
//! ```
//!
//! The keys are the replacement UIDs the de-identifier writes into the files
//! (`2.25.…`, keyed by the hospital's secret), so the manifest, the paths and
//! the headers agree and none holds an original UID. Patients left out are
//! only counted, never named. Each instance is written whole or not at all,
//! and one that fails does not stop the others.
//!
//! ```no_run
//! use std::sync::Arc;
//! use imaging::{GateOptions, ImageStore, MemoryDirectory, RefusedPatients, TrainingGate};
//!
//! # async fn demo() -> imaging::Result<()> {
//! let gate = TrainingGate::new(
//!     ImageStore::local(std::path::Path::new("/var/lib/cohort/images"))?,
//!     Arc::new(MemoryDirectory::default()),
//!     Arc::new(RefusedPatients::default()),
//!     deid::DeidKey::new(b"a hospital secret of 16+ bytes")?,
//!     GateOptions::default(),
//! )?;
//! let selection = gate.select().await?;
//! let report = gate.export(&selection, std::path::Path::new("/tmp/export"), &|_| {}).await?;
//! println!("{} exported, {} failed", report.exported, report.failed);
//! # Ok(()) }
//! ```

mod consent;
pub mod frame;
mod output;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deid::{DeidKey, Deidentifier, Options, PixelReport, ProfileOption};
use dicom_dictionary_std::tags;
use serde::Serialize;

pub use consent::{ConsentCheck, RefusedPatients};
pub use frame::{Crop, FrameCrop, TrainingFrame};

use crate::ehr::PatientDirectory;
use crate::error::{ImagingError, Result};
use crate::index::StudyRecord;
use crate::instance::instance_path;
use crate::reconcile::queue_path;
use crate::store::ImageStore;

/// Name of the manifest in the output folder.
pub const MANIFEST: &str = "manifest.csv";
/// Name of the per-instance report in the output folder.
pub const REPORT: &str = "report.jsonl";
/// Columns of the manifest.
pub const MANIFEST_COLUMNS: [&str; 11] = [
    "study_key",
    "series_key",
    "instance_key",
    "dicom",
    "frame",
    "width",
    "height",
    "crop_x",
    "crop_y",
    "frames",
    "data_blanked_fraction",
];

/// How the gate de-identifies and what frame it cuts.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// De-identification profile; must claim Clean Pixel Data and must not
    /// claim Retain UIDs. Default: [`Options::training`].
    pub deid: Options,
    /// Part of the first frame written as the training image.
    pub crop: FrameCrop,
    /// Decoded pixels held at once while cleaning a file, in bytes (see `deid::pixel::clean`).
    pub pixel_memory: usize,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            deid: Options::training(),
            crop: FrameCrop::DataRegions,
            pixel_memory: deid::pixel::DEFAULT_PIXEL_MEMORY,
        }
    }
}

/// One instance that may serve training. Holds original UIDs: it stays in
/// memory and is never written out.
#[derive(Debug, Clone)]
pub struct SelectedInstance {
    study_uid: String,
    series_uid: String,
    sop_uid: String,
    /// The hospital's Patient ID (for redacting error messages).
    patient_identifier: String,
    /// FHIR id of the Patient.
    patient: String,
}

/// What the gate selected, and how many instances it left out.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Instances to export, by study, series and instance UID.
    pub instances: Vec<SelectedInstance>,
    /// Instances of patients whose consent refuses research use.
    pub excluded_by_consent: usize,
    /// Instances of studies not linked to a Patient (reconciliation queue).
    pub unreconciled: usize,
}

/// What happened to one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// De-identified and written.
    Exported,
    /// Not written; see the error.
    Failed,
}

/// An exported instance: where its files are and how it was cleaned.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedInstance {
    /// The de-identified DICOM file, relative to the output folder.
    pub dicom: String,
    /// The training frame (PNG), relative to the output folder.
    pub frame: String,
    /// The frame's crop of the first frame.
    pub crop: Crop,
    /// Frames in the image.
    pub frames: u32,
    /// Transfer syntax of the de-identified file.
    pub transfer_syntax: String,
    /// Pixel cleaning: boxes blanked, shares of the frame and data regions blanked.
    pub pixels: Option<PixelReport>,
}

/// The report line of one instance (pseudonymous keys only).
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    /// Pseudonymous study key.
    pub study_key: String,
    /// Pseudonymous series key.
    pub series_key: String,
    /// Pseudonymous instance key.
    pub instance_key: String,
    /// Exported or failed.
    pub status: FileStatus,
    /// Why it failed (identifiers of the instance redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported: Option<ExportedInstance>,
}

/// The outcome of an export.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateReport {
    /// Instances exported.
    pub exported: usize,
    /// Instances left out because their patient refused research use.
    pub excluded_by_consent: usize,
    /// Instances left out because their study waits for its patient.
    pub unreconciled: usize,
    /// Instances that could not be de-identified or written.
    pub failed: usize,
    /// One outcome per instance tried, in key order.
    pub files: Vec<FileOutcome>,
    /// FHIR ids of the patients whose images were exported, for the EHR's
    /// audit log; never written to the output folder.
    #[serde(skip)]
    pub patients: BTreeSet<String>,
}

/// Selects and exports training images of one image store.
pub struct TrainingGate {
    store: ImageStore,
    directory: Arc<dyn PatientDirectory>,
    consent: Arc<dyn ConsentCheck>,
    deidentifier: Arc<Deidentifier>,
    key: DeidKey,
    crop: FrameCrop,
}

impl std::fmt::Debug for TrainingGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingGate")
            .field("store", &self.store)
            .field("crop", &self.crop)
            .finish_non_exhaustive()
    }
}

impl TrainingGate {
    /// A gate over `store`, finding patients in `directory` and asking
    /// `consent`, de-identifying with `key`. Refuses options that keep the
    /// original UIDs or leave pixel data uncleaned.
    pub fn new(
        store: ImageStore,
        directory: Arc<dyn PatientDirectory>,
        consent: Arc<dyn ConsentCheck>,
        key: DeidKey,
        options: GateOptions,
    ) -> Result<Self> {
        if !options.deid.claims(ProfileOption::CleanPixelData) {
            return Err(ImagingError::Export(
                "the training gate cleans burned-in text: the profile must claim Clean Pixel Data"
                    .into(),
            ));
        }
        if options.deid.claims(ProfileOption::RetainUids) {
            return Err(ImagingError::Export(
                "the training gate exports no original UID: the profile must not claim Retain UIDs"
                    .into(),
            ));
        }
        let deidentifier = Arc::new(
            Deidentifier::new(key.clone(), options.deid)?.with_pixel_memory(options.pixel_memory),
        );
        Ok(Self {
            store,
            directory,
            consent,
            deidentifier,
            key,
            crop: options.crop,
        })
    }

    /// The instances that may serve training: those of studies linked to a
    /// Patient whose consent does not refuse research use.
    pub async fn select(&self) -> Result<Selection> {
        let mut records = Vec::new();
        for path in self.store.list("index").await? {
            if let Some(bytes) = self.store.get(&path).await? {
                records.push(serde_json::from_slice::<StudyRecord>(&bytes)?);
            }
        }
        records.sort_by(|a, b| a.uid.cmp(&b.uid));
        let mut selection = Selection::default();
        let mut refuses: HashMap<String, bool> = HashMap::new();
        for record in records {
            let count = record.instance_count();
            let queued = self.store.get(&queue_path(&record.uid)).await?.is_some();
            let patient = match (&record.patient, queued) {
                (Some(identifier), false) => self
                    .directory
                    .find_patient(identifier)
                    .await?
                    .map(|p| (identifier.value.clone(), p)),
                _ => None,
            };
            let Some((identifier, patient)) = patient else {
                selection.unreconciled += count;
                continue;
            };
            let refused = match refuses.get(&patient.id) {
                Some(refused) => *refused,
                None => {
                    let refused = self.consent.refuses_research(&patient).await?;
                    refuses.insert(patient.id.clone(), refused);
                    refused
                }
            };
            if refused {
                selection.excluded_by_consent += count;
                continue;
            }
            for (series_uid, series) in &record.series {
                for sop_uid in series.instances.keys() {
                    selection.instances.push(SelectedInstance {
                        study_uid: record.uid.clone(),
                        series_uid: series_uid.clone(),
                        sop_uid: sop_uid.clone(),
                        patient_identifier: identifier.clone(),
                        patient: patient.id.clone(),
                    });
                }
            }
        }
        Ok(selection)
    }

    /// De-identify the selected instances into `out` (which must be empty or
    /// absent), calling `on_file` after each. One instance failing does not
    /// stop the others; an error is returned only when the output folder
    /// itself cannot be used.
    pub async fn export(
        &self,
        selection: &Selection,
        out: &Path,
        on_file: &(dyn Fn(&FileOutcome) + Send + Sync),
    ) -> Result<GateReport> {
        prepare_output(out)?;
        let mut report = GateReport {
            excluded_by_consent: selection.excluded_by_consent,
            unreconciled: selection.unreconciled,
            ..GateReport::default()
        };
        for instance in &selection.instances {
            let stored = self
                .store
                .get(&instance_path(
                    &instance.study_uid,
                    &instance.series_uid,
                    &instance.sop_uid,
                ))
                .await;
            let work = ExportWork {
                deidentifier: self.deidentifier.clone(),
                key: self.key.clone(),
                crop: self.crop,
                out: out.to_path_buf(),
                instance: instance.clone(),
            };
            let outcome = match stored {
                Ok(Some(bytes)) => tokio::task::spawn_blocking(move || work.run(&bytes))
                    .await
                    .unwrap_or_else(|e| {
                        let mut failed = ExportWork::keys_of(&self.key, instance);
                        failed.error = Some(format!("export task failed: {e}"));
                        failed
                    }),
                Ok(None) => work.failed("the stored file is missing".into()),
                Err(e) => work.failed(format!("cannot read the stored file: {e}")),
            };
            match outcome.status {
                FileStatus::Exported => {
                    report.exported += 1;
                    report.patients.insert(instance.patient.clone());
                }
                FileStatus::Failed => report.failed += 1,
            }
            on_file(&outcome);
            report.files.push(outcome);
        }
        report.files.sort_by(|a, b| {
            (&a.study_key, &a.series_key, &a.instance_key).cmp(&(
                &b.study_key,
                &b.series_key,
                &b.instance_key,
            ))
        });
        write_manifest_and_report(out, &report)?;
        Ok(report)
    }
}

/// Refuse an output folder that already holds files: a patient who has
/// since refused must not stay in it from an earlier export.
fn prepare_output(out: &Path) -> Result<()> {
    let io = |e: std::io::Error| ImagingError::Export(format!("{}: {e}", out.display()));
    if out.exists() && std::fs::read_dir(out).map_err(io)?.next().is_some() {
        return Err(ImagingError::Export(format!(
            "{} is not empty; export into a new folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(io)
}

fn write_manifest_and_report(out: &Path, report: &GateReport) -> Result<()> {
    let mut manifest = MANIFEST_COLUMNS.join(",");
    manifest.push('\n');
    let mut lines = Vec::new();
    for file in &report.files {
        lines.extend(serde_json::to_vec(file)?);
        lines.push(b'\n');
        let Some(exported) = &file.exported else {
            continue;
        };
        let fraction = exported
            .pixels
            .as_ref()
            .map_or(String::new(), |p| format!("{:.6}", p.data_blanked_fraction));
        let row = [
            file.study_key.clone(),
            file.series_key.clone(),
            file.instance_key.clone(),
            exported.dicom.clone(),
            exported.frame.clone(),
            exported.crop.width.to_string(),
            exported.crop.height.to_string(),
            exported.crop.x.to_string(),
            exported.crop.y.to_string(),
            exported.frames.to_string(),
            fraction,
        ];
        manifest.push_str(&row.join(","));
        manifest.push('\n');
    }
    output::write_all_or_none(out, &[(MANIFEST, manifest.as_bytes()), (REPORT, &lines)])
        .map_err(|e| ImagingError::Export(format!("cannot write the manifest: {e}")))
}

/// Everything needed to export one instance off the async runtime.
struct ExportWork {
    deidentifier: Arc<Deidentifier>,
    key: DeidKey,
    crop: FrameCrop,
    out: PathBuf,
    instance: SelectedInstance,
}

impl ExportWork {
    /// A failed outcome under the keys the de-identifier gives this instance.
    fn keys_of(key: &DeidKey, instance: &SelectedInstance) -> FileOutcome {
        FileOutcome {
            study_key: key.uid(&instance.study_uid),
            series_key: key.uid(&instance.series_uid),
            instance_key: key.uid(&instance.sop_uid),
            status: FileStatus::Failed,
            error: None,
            exported: None,
        }
    }

    fn failed(&self, error: String) -> FileOutcome {
        let mut outcome = Self::keys_of(&self.key, &self.instance);
        outcome.error = Some(self.redact(&error, &outcome));
        outcome
    }

    /// `message` without the instance's original UIDs and Patient ID.
    fn redact(&self, message: &str, keys: &FileOutcome) -> String {
        let i = &self.instance;
        let mut text = message.to_string();
        for (original, replacement) in [
            (&i.study_uid, keys.study_key.as_str()),
            (&i.series_uid, keys.series_key.as_str()),
            (&i.sop_uid, keys.instance_key.as_str()),
            (&i.patient_identifier, "[patient id]"),
        ] {
            if !original.is_empty() {
                text = text.replace(original.as_str(), replacement);
            }
        }
        text
    }

    fn run(self, bytes: &[u8]) -> FileOutcome {
        match self.try_run(bytes) {
            Ok(outcome) => outcome,
            Err(error) => self.failed(error),
        }
    }

    fn try_run(&self, bytes: &[u8]) -> std::result::Result<FileOutcome, String> {
        let done = self
            .deidentifier
            .deidentify(bytes)
            .map_err(|e| format!("cannot de-identify: {e}"))?;
        let pixels = done
            .report
            .pixels
            .clone()
            .ok_or("no pixel data to clean, so no training frame")?;
        let file = deid::parse(&done.bytes).map_err(|e| format!("output unreadable: {e}"))?;
        let uid = |tag, original: &str| -> std::result::Result<String, String> {
            let value = file
                .element(tag)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
                .ok_or("output without its UIDs")?;
            let value = crate::uid::checked(&value)
                .map_err(|_| "output with an invalid UID")?
                .to_string();
            if value == deid::keys::trim_uid(original) {
                return Err("the de-identifier kept an original UID".into());
            }
            Ok(value)
        };
        let study_key = uid(tags::STUDY_INSTANCE_UID, &self.instance.study_uid)?;
        let series_key = uid(tags::SERIES_INSTANCE_UID, &self.instance.series_uid)?;
        let instance_key = uid(tags::SOP_INSTANCE_UID, &self.instance.sop_uid)?;
        let training = frame::training_frame(&file, self.crop)
            .map_err(|e| format!("no training frame: {e}"))?;
        let folder = format!("{study_key}/{series_key}");
        let dicom_name = format!("{instance_key}.dcm");
        let frame_name = format!("{instance_key}.png");
        output::write_all_or_none(
            &self.out.join(&folder),
            &[
                (dicom_name.as_str(), &done.bytes),
                (frame_name.as_str(), &training.png),
            ],
        )
        .map_err(|e| format!("cannot write: {e}"))?;
        Ok(FileOutcome {
            status: FileStatus::Exported,
            error: None,
            exported: Some(ExportedInstance {
                dicom: format!("{folder}/{dicom_name}"),
                frame: format!("{folder}/{frame_name}"),
                crop: training.crop,
                frames: training.frames,
                transfer_syntax: done.report.transfer_syntax_out.clone(),
                pixels: Some(pixels),
            }),
            study_key,
            series_key,
            instance_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryDirectory;

    fn gate(options: GateOptions) -> Result<TrainingGate> {
        let dir = tempfile::tempdir().expect("temp dir");
        TrainingGate::new(
            ImageStore::local(dir.path())?,
            Arc::new(MemoryDirectory::default()),
            Arc::new(RefusedPatients::default()),
            DeidKey::new(b"a gate test secret, not real").expect("key"),
            options,
        )
    }

    #[test]
    fn profiles_that_keep_uids_or_burned_in_text_are_refused() {
        let keep_uids = GateOptions {
            deid: Options::training().with(ProfileOption::RetainUids),
            ..GateOptions::default()
        };
        assert!(matches!(gate(keep_uids), Err(ImagingError::Export(_))));
        let headers_only = GateOptions {
            deid: Options::training().without(ProfileOption::CleanPixelData),
            ..GateOptions::default()
        };
        assert!(matches!(gate(headers_only), Err(ImagingError::Export(_))));
        assert!(gate(GateOptions::default()).is_ok());
    }

    #[test]
    fn a_non_empty_output_folder_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(prepare_output(&dir.path().join("new")).is_ok());
        std::fs::write(dir.path().join("new/old.png"), b"x").expect("write");
        assert!(matches!(
            prepare_output(&dir.path().join("new")),
            Err(ImagingError::Export(_))
        ));
    }
}
