//! The study index: what is stored, by study, series and instance. One JSON
//! record per study in the object store (`index/{study}.json`), loaded at
//! start and rewritten after every instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ehr::PatientIdentifier;
use crate::instance::InstanceInfo;

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
            },
        );
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
