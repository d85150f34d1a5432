//! Free text through the gate: a canary patient's name and identifiers, planted in a note, in
//! dictation transcripts (inline, and in a Binary) and in Composition sections (also misspelt,
//! in capitals, without accents, split by markup, as character references), and the name of
//! the doctor who wrote the note, reach no output byte; a patient whose Consent denies research
//! use is left out; withdrawn documents and replaced versions stay in; counts per kind and
//! category.

mod common;

use base64::Engine as _;
use deid::text::{Label, Lang};
use ehr::gate::{self, PseudonymKey, TextKind};
use ehr::{Store, datetime};
use serde_json::{Value, json};

async fn put(store: &Store, resource: Value) {
    let mut tx = store.begin().await.unwrap();
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_string(),
        resource["id"].as_str().unwrap().to_string(),
    );
    tx.update(&t, &id, resource, None).await.unwrap();
    tx.commit().await.unwrap();
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn note(id: &str, patient: &str, text: &str) -> Value {
    json!({
        "resourceType": "DocumentReference", "id": id, "status": "current",
        "subject": {"reference": format!("Patient/{patient}")},
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
            "data": b64(text.as_bytes())}}]
    })
}

fn transcript(id: &str, patient: &str, attachment: Value) -> Value {
    json!({
        "resourceType": "DocumentReference", "id": id, "status": "current", "docStatus": "preliminary",
        "type": {"coding": [{"system": "http://loinc.org", "code": "34109-9", "display": "Note"}], "text": "Dictation transcript"},
        "subject": {"reference": format!("Patient/{patient}")},
        "content": [attachment, {"attachment": {"contentType": "application/json",
            "data": b64(br#"{"segments": [{"text": "Quatrebarbes"}]}"#), "title": "Timed segments"}}]
    })
}

fn composition(status: &str, sections: Value) -> Value {
    json!({
        "resourceType": "Composition", "id": "c1", "status": status,
        "subject": {"reference": "Patient/canary"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}], "text": "lettre de sortie"},
        "date": "2024-03-12", "title": "Lettre de sortie de Mme Quatrebarbes",
        "author": [{"reference": "Practitioner/doc"}],
        "section": sections
    })
}

fn section(code: &str, div: &str) -> Value {
    json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{div}</div>")}})
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
    "Vandermeersch",
    "vandermeersch",
    "Hippolyte",
    "hippolyte",
    "brouillon",
    "erreur",
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
    put(
        store,
        json!({"resourceType": "Practitioner", "id": "doc",
        "name": [{"family": "Vandermeersch", "given": ["Hippolyte"]}]}),
    )
    .await;
    put(store, note("n1", "canary", "Mme QUATREBARBES Zephyrine, née le 03/04/1950, IPP 8012345678.\nVue le 12 mars 2024 avec son fils M. Odilon Lemarchal (0611223344).")).await;
    put(
        store,
        transcript(
            "t1",
            "canary",
            json!({"attachment": {"contentType": "text/plain; charset=utf-8", "title": "Transcript",
                "data": b64("dictée : patiente zéphyrine quatrebarbe revue ce jour, rappeler au 06.11.22.33.44".as_bytes())}}),
        ),
    )
    .await;
    // A transcript kept in a Binary, written in Latin-1.
    put(store, json!({"resourceType": "Binary", "id": "b1", "contentType": "text/plain; charset=iso-8859-1",
        "securityContext": {"reference": "Patient/canary"},
        "data": b64(b"Mme Z\xe9phyrine Quatrebarbes, IPP 8012345678, va mieux.")})).await;
    put(
        store,
        transcript(
            "t2",
            "canary",
            json!({"attachment": {"contentType": "text/plain; charset=iso-8859-1", "url": "Binary/b1", "title": "Transcript"}}),
        ),
    )
    .await;
    // A draft letter, then its signed version: only the signed text leaves.
    put(
        store,
        composition(
            "preliminary",
            json!([section("10164-2", "brouillon Quatrebarbes")]),
        ),
    )
    .await;
    put(store, composition("final", json!([
        section("10164-2", "<p>Madame <b>Quatre</b>barbes (IPP 8012345678) est sortie le 14/03/2024.</p>"),
        {"title": "Suivi", "section": [section("18776-5", "Revoir Mme Z&#233;phyrine QUATREBARBES ; copie \u{e0} hippolyte vandermeersch.")]}
    ]))).await;
    // Withdrawn: never leaves.
    let mut wrong = note("n3", "canary", "erreur de dossier : Quatrebarbes");
    wrong["status"] = json!("entered-in-error");
    put(store, wrong).await;
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
    let counts = &dataset.counts;
    assert_eq!(counts.documents[&TextKind::Note], 1, "{counts:?}");
    assert_eq!(counts.documents[&TextKind::Transcript], 2, "{counts:?}");
    assert_eq!(
        counts.documents[&TextKind::CompositionSection],
        2,
        "{counts:?}"
    );
    assert_eq!(dataset.documents.len(), counts.total_documents());
    for document in &dataset.documents {
        let prefix = match document.kind {
            TextKind::CompositionSection => "Composition/",
            _ => "DocumentReference/",
        };
        assert!(document.resource.starts_with(prefix), "{document:?}");
    }
    assert_eq!((counts.patients, counts.excluded_by_consent), (1, 1));
    let mut sections: Vec<_> = dataset
        .documents
        .iter()
        .filter_map(|d| d.section.as_deref())
        .collect();
    sections.sort();
    assert_eq!(
        sections,
        ["http://loinc.org|10164-2", "http://loinc.org|18776-5"]
    );
    let mut bytes = Vec::new();
    for d in &dataset.documents {
        bytes.extend_from_slice(d.pseudonym.as_bytes());
        bytes.extend_from_slice(d.text.as_bytes());
        bytes.extend_from_slice(format!("{:?} {:?}", d.kind, d.section).as_bytes());
    }
    bytes.extend_from_slice(format!("{counts:?}").as_bytes());
    let out = String::from_utf8(bytes).unwrap();
    for canary in CANARIES {
        assert!(!out.contains(canary), "{canary} leaked in {out}");
    }
    assert!(!out.contains("1950") && !out.contains("Durand"), "{out}");
    assert!(
        out.contains("sortie") && out.contains("mieux"),
        "the texts themselves leave: {out}"
    );
    assert!(counts.removed[&Label::Name] >= 10, "{counts:?}");
    assert!(counts.removed[&Label::Date] >= 3, "{counts:?}");
    assert_eq!(
        counts.total_removed(),
        counts.removed.values().sum::<usize>()
    );
}
