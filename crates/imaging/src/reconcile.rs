//! The reconciliation queue: studies whose patient the EHR does not know
//! (yet) are kept here, with their images stored, until someone links them.

use serde::{Deserialize, Serialize};

use crate::ehr::PatientIdentifier;

/// Why a study waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    /// The instances carry no Patient ID.
    NoPatientId,
    /// The EHR has no Patient with that identifier.
    UnknownPatient,
}

/// A study waiting for its patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedStudy {
    /// Study Instance UID.
    pub study_uid: String,
    /// The identifier the instances carry, if any.
    pub patient: Option<PatientIdentifier>,
    /// Why it waits.
    pub reason: QueueReason,
    /// Instances stored so far.
    pub instances: usize,
}

/// Object path of a queue record.
pub fn queue_path(study: &str) -> String {
    format!("reconciliation/{study}.json")
}

/// Prefix of all queue records.
pub const QUEUE_PREFIX: &str = "reconciliation";
