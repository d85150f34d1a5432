//! What the FHIR store tests of the note share: reading stored resources back and the
//! context of a draft for a new patient and doctor.

use notes::fhir::NoteContext;
use serde_json::{Value, json};

/// The resource of a stored version.
pub fn resource(version: &ehr::store::Version) -> Value {
    serde_json::from_str(version.content.as_deref().expect("not a deletion")).unwrap()
}

/// The stored resource without what the server adds (`id`, `meta`).
pub fn without_server_fields(mut stored: Value) -> Value {
    if let Some(map) = stored.as_object_mut() {
        map.remove("id");
        map.remove("meta");
    }
    stored
}

/// A patient and a doctor of these family names written in `tx`, and the context of a draft
/// of theirs.
pub async fn note_context(tx: &mut ehr::store::Tx, patient: &str, doctor: &str) -> NoteContext {
    let patient = tx
        .create(json!({"resourceType": "Patient", "name": [{"family": patient}]}))
        .await
        .unwrap();
    let doctor = tx
        .create(json!({"resourceType": "Practitioner", "name": [{"family": doctor}]}))
        .await
        .unwrap();
    NoteContext {
        patient: format!("Patient/{}", patient.id),
        author: format!("Practitioner/{}", doctor.id),
        date: "2026-12-06T09:00:00Z".into(),
        encounter: None,
    }
}
