//! The study index: what is stored, by study, series and instance. One JSON
//! record per study in the object store (`index/{study}.json`), loaded at
//! start and rewritten after every instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ehr::PatientIdentifier;
use crate::instance::InstanceInfo;
use crate::reconcile::QueueReason;
use crate::service::Link;

/// One stored instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Instance Number.
    pub number: Option<i64>,
    /// Number of frames.
    pub frames: u32,
    /// Transfer syntax stored.
    pub transfer_syntax: String,
    /// Rows.
    #[serde(default)]
    pub rows: Option<u32>,
    /// Columns.
    #[serde(default)]
    pub columns: Option<u32>,
}

/// One series of a study.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesRecord {
    /// Series Number.
    pub number: Option<i64>,
    /// Modality.
    pub modality: Option<String>,
    /// Series Description.
    pub description: Option<String>,
    /// Instances by SOP Instance UID.
    pub instances: BTreeMap<String, InstanceRecord>,
}

/// One study.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    /// Study Instance UID.
    pub uid: String,
    /// The hospital's patient identifier.
    pub patient: Option<PatientIdentifier>,
    /// Accession Number.
    pub accession_number: Option<String>,
    /// Study Date.
    pub date: Option<String>,
    /// Study Time.
    pub time: Option<String>,
    /// Study Description.
    pub description: Option<String>,
    /// Patient's Name.
    #[serde(default)]
    pub patient_name: Option<String>,
    /// Patient's Birth Date.
    #[serde(default)]
    pub patient_birth_date: Option<String>,
    /// Patient's Sex.
    #[serde(default)]
    pub patient_sex: Option<String>,
    /// Study ID.
    #[serde(default)]
    pub study_id: Option<String>,
    /// Referring Physician's Name.
    #[serde(default)]
    pub referring_physician: Option<String>,
    /// The FHIR Patient id the study is linked to; `None` while queued.
    #[serde(default)]
    pub linked: Option<String>,
    /// Series by Series Instance UID.
    pub series: BTreeMap<String, SeriesRecord>,
}

impl StudyRecord {
    /// Add (or replace) an instance; study-level facts fill in when missing.
    pub fn add(&mut self, info: &InstanceInfo) {
        self.uid.clone_from(&info.study_uid);
        fill(&mut self.patient, &info.patient);
        fill(&mut self.accession_number, &info.accession_number);
        fill(&mut self.date, &info.study_date);
        fill(&mut self.time, &info.study_time);
        fill(&mut self.description, &info.study_description);
        fill(&mut self.patient_name, &info.patient_name);
        fill(&mut self.patient_birth_date, &info.patient_birth_date);
        fill(&mut self.patient_sex, &info.patient_sex);
        fill(&mut self.study_id, &info.study_id);
        fill(&mut self.referring_physician, &info.referring_physician);
        let series = self.series.entry(info.series_uid.clone()).or_default();
        fill(&mut series.number, &info.series_number);
        fill(&mut series.modality, &info.modality);
        fill(&mut series.description, &info.series_description);
        series.instances.insert(
            info.sop_uid.clone(),
            InstanceRecord {
                sop_class_uid: info.sop_class_uid.clone(),
                number: info.instance_number,
                frames: info.frames,
                transfer_syntax: info.transfer_syntax.clone(),
                rows: info.rows,
                columns: info.columns,
            },
        );
    }

    /// The study's link as last recorded.
    pub fn current_link(&self) -> Link {
        match (&self.linked, &self.patient) {
            (Some(patient), _) => Link::Linked(patient.clone()),
            (None, Some(_)) => Link::Queued(QueueReason::UnknownPatient),
            (None, None) => Link::Queued(QueueReason::NoPatientId),
        }
    }

    /// Number of instances over all series.
    pub fn instance_count(&self) -> usize {
        self.series.values().map(|s| s.instances.len()).sum()
    }

    /// The instance record, if stored.
    pub fn instance(&self, series: &str, instance: &str) -> Option<&InstanceRecord> {
        self.series.get(series)?.instances.get(instance)
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

/// Object path of a study's index record.
pub fn record_path(study: &str) -> String {
    format!("index/{study}.json")
}
