//! Fixture data of the node console's tests and test server: three invented
//! patients with their records in an EHR store, one ultrasound study
//! (`OBXXXX1A_rle.dcm`, see its licence file) received by an imaging service
//! that links it to the patient with its Patient ID, and a plan waiting for
//! the data protection officer.

use std::sync::Arc;

use base64::Engine;
use console::node::{Disclosure, DisclosureLog, MemoryApprovals};
use futures::future::BoxFuture;
use imaging::{
    ImageStore, Imaging, ImagingStudySink, PatientDirectory, PatientIdentifier, PatientRef,
};
use serde_json::{Value, json};

/// The hospital's medical record numbers.
const MRN: &str = "urn:oid:1.2.250.1.999.1";
/// The Patient ID the ultrasound fixture carries.
pub const ULTRASOUND_MRN: &str = "11-05-25-142825";
const SNOMED: &str = "http://snomed.info/sct";

/// The ids the fixture patients got.
pub struct Seeded {
    /// Amina Haddad: conditions, medication, allergy, note, encounter, the ultrasound study.
    pub haddad: String,
    /// Jean Dupont: refused research use (an active Consent).
    pub dupont: String,
    /// Li Wei.
    pub wei: String,
}

fn patient(given: &str, family: &str, gender: &str, born: &str, mrn: &str, city: &str) -> Value {
    json!({"resourceType": "Patient", "active": true,
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family, "given": [given]}],
        "gender": gender, "birthDate": born,
        "address": [{"city": city}]})
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn clinical(code: &str) -> Value {
    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": code}]})
}

/// The record of patient `id`: conditions, medications, allergies, a note
/// and an encounter, from `(snomed code, display)` lists.
fn record(
    id: &str,
    conditions: &[(&str, &str)],
    medications: &[(&str, &str)],
    allergy: Option<(&str, &str)>,
    note: &str,
    visit: &str,
) -> Vec<Value> {
    let subject = json!({"reference": format!("Patient/{id}")});
    let mut out = Vec::new();
    for (code, display) in conditions {
        out.push(json!({"resourceType": "Condition", "subject": subject, "clinicalStatus": clinical("active"),
            "code": concept(SNOMED, code, display), "onsetDateTime": visit}));
    }
    for (drug, dosage) in medications {
        out.push(json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject,
            "medicationCodeableConcept": {"text": drug}, "authoredOn": visit,
            "dosageInstruction": [{"text": dosage}]}));
    }
    if let Some((code, display)) = allergy {
        out.push(json!({"resourceType": "AllergyIntolerance", "patient": subject, "criticality": "high",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
            "code": concept(SNOMED, code, display),
            "reaction": [{"manifestation": [concept(SNOMED, "247472004", "Hives")]}]}));
    }
    out.push(json!({"resourceType": "Encounter", "id": format!("{id}-visit"), "status": "finished", "subject": subject,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
        "type": [{"text": "Outpatient consultation"}], "period": {"start": visit, "end": visit}}));
    out.push(json!({"resourceType": "DocumentReference", "status": "current", "docStatus": "final", "subject": subject,
        "type": concept("http://loinc.org", "11506-3", "Progress note"), "date": format!("{visit}T10:00:00Z"),
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(note)}}]}));
    out
}

/// What Li Wei and her doctor said at the 2025-06-03 visit.
const WEI_TRANSCRIPT: &str = "[doctor] good morning . how is your asthma ?\n\
    [patient] much better , i use the inhaler maybe twice a week .\n\
    [doctor] any night time cough or wheezing ?\n[patient] no , none .\n\
    [doctor] on exam your lungs are clear , no wheezing .\n\
    [doctor] let's keep salbutamol two puffs when needed and check your inhaler technique .\n\
    [patient] okay , thank you .";

/// Write the three patients and their records to `store`.
pub async fn seed(store: &ehr::Store) -> ehr::Result<Seeded> {
    let mut tx = store.begin().await?;
    let haddad = tx
        .create(patient(
            "Amina",
            "Haddad",
            "female",
            "1979-04-12",
            ULTRASOUND_MRN,
            "Lyon",
        ))
        .await?
        .id;
    let dupont = tx
        .create(patient(
            "Jean",
            "Dupont",
            "male",
            "1956-09-30",
            "MRN-0002",
            "Villeurbanne",
        ))
        .await?
        .id;
    let wei = tx
        .create(patient(
            "Li",
            "Wei",
            "female",
            "1990-01-02",
            "MRN-0003",
            "Lyon",
        ))
        .await?
        .id;
    let mut resources = record(
        &haddad,
        &[
            ("11687002", "Gestational diabetes mellitus"),
            ("38341003", "Hypertensive disorder"),
        ],
        &[("Metformin 500 mg tablet", "500 mg twice a day with meals")],
        Some(("764146007", "Penicillin")),
        "Obstetric ultrasound at 24 weeks: single live fetus, growth on the 40th centile. Glucose log reviewed.",
        "2011-05-25",
    );
    resources.extend(record(
        &dupont,
        &[("84114007", "Heart failure")],
        &[("Furosemide 40 mg tablet", "40 mg every morning")],
        None,
        "Breathless on exertion, ankles swollen. Furosemide increased.",
        "2024-02-11",
    ));
    resources.extend(record(
        &wei,
        &[("195967001", "Asthma")],
        &[("Salbutamol 100 micrograms inhaler", "2 puffs when needed")],
        Some(("256349002", "Peanut")),
        "Asthma well controlled; inhaler technique checked.",
        "2025-06-03",
    ));
    // The transcript of Li Wei's visit, for the visit page's draft and signature.
    resources.push(json!({"resourceType": "DocumentReference", "status": "current", "subject": {"reference": format!("Patient/{wei}")},
        "type": {"text": "Consultation transcript"}, "date": "2025-06-03T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "title": "Consultation transcript",
            "data": base64::engine::general_purpose::STANDARD.encode(WEI_TRANSCRIPT)}}],
        "context": {"encounter": [{"reference": format!("Encounter/{wei}-visit")}]}}));
    resources.push(json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8"}]}],
        "patient": {"reference": format!("Patient/{dupont}")}, "dateTime": "2024-02-11",
        "policyRule": {"text": "the hospital's policy on research use of health data"},
        "provision": {"type": "deny", "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]}}));
    for resource in resources {
        match resource["id"].as_str().map(str::to_string) {
            Some(id) => {
                let kind = resource["resourceType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                tx.update(&kind, &id, resource, None).await?;
            }
            None => {
                tx.create(resource).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(Seeded {
        haddad,
        dupont,
        wei,
    })
}

/// Finds patients in the EHR by identifier, and writes ImagingStudy
/// resources to it (what the node connects the imaging service to).
struct Ehr(ehr::Store);

fn ehr_error(e: ehr::Error) -> imaging::ImagingError {
    imaging::ImagingError::Ehr(e.to_string())
}

impl PatientDirectory for Ehr {
    fn find_patient<'a>(
        &'a self,
        identifier: &'a PatientIdentifier,
    ) -> BoxFuture<'a, imaging::Result<Option<PatientRef>>> {
        Box::pin(async move {
            let request = ehr::search::SearchRequest::parse(
                "Patient",
                &[("identifier".into(), identifier.value.clone())],
            )
            .map_err(ehr_error)?;
            let found = self.0.search(&request, None).await.map_err(ehr_error)?;
            Ok(found.matches.first().map(|v| PatientRef {
                id: v.id.clone(),
                display: None,
            }))
        })
    }
}

impl ImagingStudySink for Ehr {
    fn upsert(&self, study: Value) -> BoxFuture<'_, imaging::Result<()>> {
        Box::pin(async move {
            let id = study["id"].as_str().unwrap_or_default().to_string();
            let mut tx = self.0.begin().await.map_err(ehr_error)?;
            tx.update("ImagingStudy", &id, study, None)
                .await
                .map_err(ehr_error)?;
            tx.commit().await.map_err(ehr_error)
        })
    }
}

/// An imaging service over `dir` that has received the ultrasound fixture,
/// linked through `store` to the patient with its Patient ID.
pub async fn images(dir: &std::path::Path, store: &ehr::Store) -> imaging::Result<Arc<Imaging>> {
    let ehr = Arc::new(Ehr(store.clone()));
    let service = Imaging::open(ImageStore::local(dir)?, ehr.clone(), ehr).await?;
    service
        .store_instance(bytes::Bytes::from_static(include_bytes!(
            "OBXXXX1A_rle.dcm"
        )))
        .await?;
    Ok(Arc::new(service))
}

/// Approvals with the heart-disease plan waiting for the data protection
/// officer (its code not on the allow-list) and `hospital` among its hospitals.
pub fn approvals(hospital: &str) -> Arc<MemoryApprovals> {
    let mut plan = fed::plan::TrainingPlan::heart_disease_default();
    if !plan.hospitals.iter().any(|h| h == hospital) {
        plan.hospitals.push(hospital.to_string());
    }
    let approvals = MemoryApprovals::new([]).expect("no hash to check");
    approvals
        .offer(&plan.plan_id(), &plan.to_json())
        .expect("offered");
    Arc::new(approvals)
}

/// A disclosures log held in memory.
pub struct Disclosures(pub Vec<Disclosure>);

impl DisclosureLog for Disclosures {
    fn disclosures(&self) -> BoxFuture<'_, Result<Vec<Disclosure>, String>> {
        let log = self.0.clone();
        Box::pin(async move { Ok(log) })
    }
}

/// What a node that took part in two rounds of a plan sent out.
pub fn disclosures(plan_id: &str) -> Arc<Disclosures> {
    let sent = |round: u32, kind: &str, sha: &str, unix_ms: i64| Disclosure {
        plan_id: plan_id.to_string(),
        round,
        kind: kind.to_string(),
        sha256: sha.to_string(),
        records: 212,
        unix_ms: Some(unix_ms),
    };
    Arc::new(Disclosures(vec![
        sent(0, "statistics", "", 1_764_000_000_000),
        sent(1, "update", &"ab".repeat(32), 1_764_000_004_000),
        sent(2, "update", &"cd".repeat(32), 1_764_000_008_000),
        sent(2, "evaluation", &"cd".repeat(32), 1_764_000_009_000),
    ]))
}
