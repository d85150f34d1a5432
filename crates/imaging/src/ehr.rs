//! The EHR side of ingest, as two small traits the node connects to its FHIR
//! store: find a Patient by the hospital's identifier, and create or update
//! an ImagingStudy. In-memory implementations serve tests and demos.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A patient identifier as DICOM carries it: Patient ID, qualified by
/// Issuer of Patient ID when present.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PatientIdentifier {
    /// Issuer of Patient ID (the identifier's system), if any.
    pub issuer: Option<String>,
    /// Patient ID.
    pub value: String,
}

/// A FHIR Patient found in the EHR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRef {
    /// Logical id of the Patient resource (`Patient/{id}`).
    pub id: String,
    /// Display text for the reference.
    pub display: Option<String>,
}

/// Finds patients by identifier.
pub trait PatientDirectory: Send + Sync {
    /// The Patient with this identifier, if the EHR knows one.
    fn find_patient<'a>(
        &'a self,
        identifier: &'a PatientIdentifier,
    ) -> BoxFuture<'a, Result<Option<PatientRef>>>;
}

/// Receives FHIR R4 ImagingStudy resources (JSON), keyed by their `id`.
pub trait ImagingStudySink: Send + Sync {
    /// Create the ImagingStudy, or replace the one with the same `id`.
    fn upsert(&self, imaging_study: serde_json::Value) -> BoxFuture<'_, Result<()>>;
}

/// A patient directory held in memory.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    patients: Mutex<HashMap<String, PatientRef>>,
}

impl MemoryDirectory {
    /// Register a patient under an identifier value (any issuer).
    pub fn add(&self, identifier: &str, patient: PatientRef) {
        if let Ok(mut patients) = self.patients.lock() {
            patients.insert(identifier.to_string(), patient);
        }
    }
}

impl PatientDirectory for MemoryDirectory {
    fn find_patient<'a>(
        &'a self,
        identifier: &'a PatientIdentifier,
    ) -> BoxFuture<'a, Result<Option<PatientRef>>> {
        let found = self
            .patients
            .lock()
            .ok()
            .and_then(|p| p.get(&identifier.value).cloned());
        Box::pin(async move { Ok(found) })
    }
}

/// An ImagingStudy sink held in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    studies: Mutex<HashMap<String, serde_json::Value>>,
}

impl MemorySink {
    /// The stored ImagingStudy with this `id`.
    pub fn get(&self, id: &str) -> Option<serde_json::Value> {
        self.studies.lock().ok()?.get(id).cloned()
    }

    /// How many ImagingStudy resources are stored.
    pub fn len(&self) -> usize {
        self.studies.lock().map_or(0, |s| s.len())
    }

    /// Whether none is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ImagingStudySink for MemorySink {
    fn upsert(&self, imaging_study: serde_json::Value) -> BoxFuture<'_, Result<()>> {
        let id = imaging_study["id"].as_str().unwrap_or_default().to_string();
        if let Ok(mut studies) = self.studies.lock() {
            studies.insert(id, imaging_study);
        }
        Box::pin(async { Ok(()) })
    }
}
