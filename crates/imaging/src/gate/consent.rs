//! Whether a patient refused research use, as the training gate asks it. The
//! node answers from the EHR's active Consents with the EHR gate's own rule
//! (`ehr::gate::denying_patient`); tests and stand-alone runs use a list.

use std::collections::HashSet;
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::ehr::PatientRef;
use crate::error::Result;

/// Answers, for one Patient of the EHR, whether their consent refuses the
/// use of their data for research (training a model is research).
pub trait ConsentCheck: Send + Sync {
    /// `true` if an active Consent of `patient` denies research use now.
    /// An error stops the export: the gate never guesses consent.
    fn refuses_research<'a>(&'a self, patient: &'a PatientRef) -> BoxFuture<'a, Result<bool>>;
}

/// Patients known to have refused, by FHIR Patient id, held in memory.
#[derive(Debug, Default)]
pub struct RefusedPatients {
    ids: Mutex<HashSet<String>>,
}

impl RefusedPatients {
    /// Record that Patient `id` refused research use.
    pub fn add(&self, id: &str) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.insert(id.to_string());
        }
    }
}

impl ConsentCheck for RefusedPatients {
    fn refuses_research<'a>(&'a self, patient: &'a PatientRef) -> BoxFuture<'a, Result<bool>> {
        let refused = self
            .ids
            .lock()
            .map_err(|_| crate::ImagingError::Ehr("consent list poisoned".into()))
            .map(|ids| ids.contains(&patient.id));
        Box::pin(async move { refused })
    }
}
