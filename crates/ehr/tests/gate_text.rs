//! Free text through the gate: a canary patient's name and identifiers,
//! planted in a note, a dictation transcript and a Composition section
//! (also misspelt, in capitals, without accents), reach no output byte; a
//! patient whose Consent denies research use is left out; counts per category.

mod common;

use base64::Engine as _;
use deid::text::{Label, Lang};
use ehr::gate::{self, PseudonymKey};
use ehr::{Store, datetime};
use serde_json::{Value, json};

/// Store `resource`; false when the store does not keep its type.
async fn put(store: &Store, resource: Value) -> bool {
    let mut tx = store.begin().await.unwrap();
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_string(),
        resource["id"].as_str().unwrap().to_string(),
    );
    match tx.update(&t, &id, resource, None).await {
        Ok(_) => {
            tx.commit().await.unwrap();
            true
        }
        Err(ehr::Error::UnknownType(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

fn note(id: &str, patient: &str, text: &str) -> Value {
    json!({
        "resourceType": "DocumentReference", "id": id, "status": "current",
        "subject": {"reference": format!("Patient/{patient}")},
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text)}}]
    })
}

const CANARIES: &[&str] = &[
    "Quatrebarbes",
    "QUATREBARBES",
    "quatrebarbes",
    "Zéphyrine",
    "ZEPHYRINE",
    "Zephyrine",
    "Quatrebarbe",
    "8012345678",
    "0611223344",
    "Lemarchal",
];

#[tokio::test]
async fn a_canary_patient_reaches_no_output_byte() {
    let backend = common::sqlite().await;
    let store = &backend.store;
    put(
        store,
        json!({
            "resourceType": "Patient", "id": "canary",
            "name": [{"family": "Quatrebarbes", "given": ["Zéphyrine"]}],
            "birthDate": "1950-04-03",
            "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "8012345678"}],
            "telecom": [{"system": "phone", "value": "06 11 22 33 44"}],
            "contact": [{"name": {"family": "Lemarchal", "given": ["Odilon"]}}]
        }),
    )
    .await;
    put(
        store,
        json!({"resourceType": "Patient", "id": "refuses", "name": [{"family": "Durand"}]}),
    )
    .await;
    put(store, note("n1", "canary", "Mme QUATREBARBES Zephyrine, née le 03/04/1950, IPP 8012345678.\nVue le 12 mars 2024 avec son fils M. Odilon Lemarchal (0611223344).")).await;
    put(
        store,
        note(
            "t1",
            "canary",
            "dictée : patiente zéphyrine quatrebarbe revue ce jour, rappeler au 06.11.22.33.44",
        ),
    )
    .await;
    let composition = put(store, json!({
        "resourceType": "Composition", "id": "c1", "status": "final",
        "subject": {"reference": "Patient/canary"},
        "type": {"text": "lettre de sortie"}, "date": "2024-03-12", "title": "Lettre",
        "author": [{"display": "service"}],
        "section": [{"title": "Histoire", "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Madame Quatrebarbes (IPP 8012345678) est sortie le 14/03/2024.</div>"}}]
    })).await;
    put(store, note("n2", "refuses", "M. Durand refuse.")).await;
    put(store, json!({
        "resourceType": "Consent", "id": "no", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/refuses"},
        "provision": {"type": "deny", "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]}
    })).await;

    let key = PseudonymKey::from_bytes([7; 32]);
    let dataset = gate::build_text_dataset(
        store,
        &key,
        Lang::Fr,
        &gate::default_research_purposes(),
        datetime::now_micros(),
    )
    .await
    .unwrap();
    assert_eq!(dataset.documents.len(), 2 + usize::from(composition));
    assert_eq!(dataset.excluded, 1);
    let mut bytes = Vec::new();
    for d in &dataset.documents {
        bytes.extend_from_slice(d.pseudonym.as_bytes());
        bytes.extend_from_slice(d.text.as_bytes());
    }
    bytes.extend_from_slice(format!("{:?}", dataset.removed).as_bytes());
    let out = String::from_utf8(bytes).unwrap();
    for canary in CANARIES {
        assert!(!out.contains(canary), "{canary} leaked in {out}");
    }
    assert!(!out.contains("1950") && !out.contains("Durand"), "{out}");
    assert!(dataset.removed[&Label::Name] >= 6, "{:?}", dataset.removed);
    assert!(dataset.removed[&Label::Date] >= 2, "{:?}", dataset.removed);
}
