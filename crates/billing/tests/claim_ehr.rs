//! The claim round trip on a node's EHR: a Synthea-like encounter with its note in a
//! DocumentReference -> suggested codes with evidence -> the coder's decisions -> Claim,
//! ChargeItem and Provenances written into the FHIR store, read back, and valid against the
//! FHIR R4 JSON Schema (skipped without the schema tools, see `fhir_schema::validate`); the
//! accepted codes come back as training labels.

use base64::Engine;
use billing::claim::{Decision, Encounter, FeeSchedule, accepted_labels};
use billing::corpus::{Case, CodeLists, CodeSystem, Lang, Split};
use billing::encounter::{
    CodeDecision, find_coverage, read_encounter_note, review, suggest_note, write_claim,
};
use billing::features::Featurizer;
use billing::{Coder, CoderSpec, TrainConfig, examples, label_space, train};
use serde_json::{Value, json};

/// A code model trained on eight short Spanish notes: fractures (S72.0 with an X-ray,
/// BW03ZZZ) and fevers (R50.9).
/// A training case: id, text, diagnoses, procedures.
type Row = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

fn coder() -> Coder {
    let rows: [Row; 8] = [
        ("1", "Fiebre alta y escalofríos.", &["R50.9"], &[]),
        ("2", "Refiere fiebre de tres días.", &["R50.9"], &[]),
        ("3", "Cuadro febril, fiebre persistente.", &["R50.9"], &[]),
        (
            "4",
            "Fractura de cuello de fémur; radiografía de cadera.",
            &["S72.0"],
            &["BW03ZZZ"],
        ),
        (
            "5",
            "Caída con fractura de fémur y radiografía.",
            &["S72.0"],
            &["BW03ZZZ"],
        ),
        (
            "6",
            "Fractura del fémur derecho, radiografía urgente.",
            &["S72.0"],
            &["BW03ZZZ"],
        ),
        ("7", "Control anual sin hallazgos.", &[], &[]),
        ("8", "Revisión rutinaria, sin incidencias.", &[], &[]),
    ];
    let codes = |pick: fn(&Row) -> &'static [&'static str]| -> CodeLists {
        rows.iter()
            .map(|r| {
                (
                    r.0.to_string(),
                    pick(r).iter().map(|c| c.to_string()).collect(),
                )
            })
            .collect()
    };
    let split = Split {
        cases: rows
            .iter()
            .map(|r| Case {
                id: r.0.into(),
                text: r.1.into(),
            })
            .collect(),
        diagnoses: codes(|r| r.2),
        procedures: codes(|r| r.3),
        evidence: Default::default(),
    };
    let spec = CoderSpec {
        lang: Lang::Es,
        featurizer: Featurizer {
            buckets: 1 << 10,
            max_n: 2,
        },
        dim: 8,
        labels: label_space([
            (CodeSystem::Diagnosis, "R50.9".to_string()),
            (CodeSystem::Diagnosis, "S72.0".to_string()),
            (CodeSystem::Procedure, "BW03ZZZ".to_string()),
        ]),
    };
    let cfg = TrainConfig {
        epochs: 60,
        batch_size: 2,
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    let (weights, _) = train(&spec, &spec.init(1), &examples(&spec, &split), &cfg, 2).unwrap();
    Coder::new(spec, weights).unwrap()
}

const NOTE: &str = "Mujer de 80 años que ingresa tras una caída. Dolor en la cadera; \
                    la radiografía muestra fractura del cuello del fémur.";

/// A Synthea-like encounter: organisation, patient, coverage, coder, encounter and its note.
async fn encounter_store() -> ehr::Store {
    let store = ehr::Store::open("sqlite::memory:").await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let note = base64::engine::general_purpose::STANDARD.encode(NOTE);
    for resource in [
        json!({"resourceType": "Organization", "id": "hosp", "name": "Hospital General"}),
        json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1946-01-02"}),
        json!({"resourceType": "Practitioner", "id": "coder1", "name": [{"family": "Coder"}]}),
        json!({"resourceType": "Coverage", "id": "cov1", "status": "active",
               "beneficiary": {"reference": "Patient/p1"},
               "payor": [{"reference": "Organization/hosp"}]}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
               "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "50849002",
                                      "display": "Emergency room admission"}]}],
               "subject": {"reference": "Patient/p1"},
               "period": {"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T12:00:00Z"},
               "serviceProvider": {"reference": "Organization/hosp"}}),
        // An older note without text, and the discharge note.
        json!({"resourceType": "DocumentReference", "id": "d0", "status": "current",
               "subject": {"reference": "Patient/p1"}, "date": "2026-03-02T08:30:00Z",
               "content": [{"attachment": {"contentType": "application/pdf", "data": "JVBERg=="}}],
               "context": {"encounter": [{"reference": "Encounter/e1"}]}}),
        json!({"resourceType": "DocumentReference", "id": "d1", "status": "current",
               "subject": {"reference": "Patient/p1"}, "date": "2026-03-02T11:00:00Z",
               "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": note}}],
               "context": {"encounter": [{"reference": "Encounter/e1"}]}}),
    ] {
        let id = resource["id"].as_str().unwrap().to_string();
        tx.create_with_id(resource, id).await.unwrap();
    }
    tx.commit().await.unwrap();
    store
}

async fn read(store: &ehr::Store, reference: &str) -> Value {
    let (kind, id) = reference.split_once('/').unwrap();
    serde_json::from_str(
        store
            .read(kind, id)
            .await
            .unwrap()
            .content
            .as_deref()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn an_encounter_note_becomes_a_reviewed_claim_in_the_store() {
    let store = encounter_store().await;
    let note = read_encounter_note(&store, "e1").await.unwrap();
    assert_eq!(note.document, "DocumentReference/d1");
    assert_eq!(
        (note.patient.as_str(), note.provider.as_deref()),
        ("Patient/p1", Some("Organization/hosp"))
    );
    assert_eq!(note.text, NOTE);

    let suggestions = suggest_note(&coder(), &note, 2).unwrap();
    assert_eq!(suggestions[0].code, "S72.0", "{suggestions:?}");
    let chars: Vec<char> = NOTE.chars().collect();
    let evidence: Vec<String> = suggestions[0]
        .evidence
        .iter()
        .map(|s| chars[s.start..s.end].iter().collect())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("fractura") || e.contains("fémur")),
        "{evidence:?}"
    );

    // The coder accepts the fracture and the X-ray, rejects fever, and adds a code.
    let decide = |code: &str, decision, system| CodeDecision {
        code: code.into(),
        decision,
        system,
    };
    let decisions = [
        decide("s72.0", Decision::Accepted, None),
        decide("R50.9", Decision::Rejected, None),
        decide("BW03ZZZ", Decision::Accepted, None),
        decide("W19", Decision::Accepted, Some(CodeSystem::Diagnosis)),
    ];
    let reviewed = review(&suggestions, &decisions).unwrap();
    assert_eq!(reviewed[0].evidence, suggestions[0].evidence);
    assert!(reviewed[3].evidence.is_empty());
    assert!(review(&suggestions, &[decide("Z00", Decision::Accepted, None)]).is_err());
    assert!(review(&suggestions, &[decisions[0].clone(), decisions[0].clone()]).is_err());

    let coverage = find_coverage(&store, &note.patient).await.unwrap().unwrap();
    let encounter = Encounter {
        patient: note.patient.clone(),
        encounter: note.encounter.clone(),
        provider: note.provider.clone().unwrap(),
        coverage,
        document: note.document.clone(),
        coder: "Practitioner/coder1".into(),
        date: "2026-03-03T09:00:00Z".into(),
    };
    let fees = FeeSchedule::parse("EUR", 40.0, "BW03ZZZ,32.5\n").unwrap();
    let written = write_claim(&store, &encounter, &reviewed, &fees)
        .await
        .unwrap();
    assert_eq!(
        (written.charge_items.len(), written.provenances.len()),
        (1, 4)
    );

    let claim = read(&store, &written.claim).await;
    let diagnoses: Vec<&str> = claim["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["diagnosisCodeableConcept"]["coding"][0]["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(diagnoses, ["S72.0", "W19"]);
    assert_eq!(
        claim["procedure"][0]["procedureCodeableConcept"]["coding"][0]["code"],
        "BW03ZZZ"
    );
    assert_eq!(
        claim["insurance"][0]["coverage"]["reference"],
        "Coverage/cov1"
    );
    assert_eq!(claim["total"]["value"], 40.0 + 32.5 + 40.0);
    assert_eq!(
        claim["supportingInfo"][0]["valueReference"]["reference"],
        "DocumentReference/d1"
    );
    let charge = read(&store, &written.charge_items[0]).await;
    assert_eq!(charge["code"]["coding"][0]["code"], "BW03ZZZ");
    let mut provenances = Vec::new();
    for p in &written.provenances {
        provenances.push(read(&store, p).await);
    }
    // The accepted codes are the encounter's new training labels.
    let labels = accepted_labels(&provenances);
    assert_eq!(
        labels["Encounter/e1"],
        [
            (CodeSystem::Diagnosis, "S72.0".to_string()),
            (CodeSystem::Procedure, "BW03ZZZ".to_string()),
            (CodeSystem::Diagnosis, "W19".to_string()),
        ]
    );

    let mut resources = vec![claim, charge];
    resources.extend(provenances);
    if let Some(result) = fhir_schema::validate(&resources) {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn missing_encounters_notes_and_decisions_are_clear_errors() {
    let store = encounter_store().await;
    assert!(read_encounter_note(&store, "nope").await.is_err());
    let mut tx = store.begin().await.unwrap();
    tx.create_with_id(
        json!({"resourceType": "Encounter", "id": "e2", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
        "e2".into(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let error = read_encounter_note(&store, "e2").await.unwrap_err();
    assert!(
        error.to_string().contains("no DocumentReference"),
        "{error}"
    );
    assert_eq!(find_coverage(&store, "Patient/other").await.unwrap(), None);
}
