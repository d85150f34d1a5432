//! The draft note as a FHIR `Composition` of its own in the node's EHR: the `preliminary`
//! Composition and a DocumentReference pointing to it are stored and read back unchanged,
//! signing stores the `final` Composition as version 2 with a Provenance of that version, and
//! every resource validates against the FHIR R4 JSON Schema (skipped without the schema tools,
//! see `fhir_store.rs`).

use ehr::Store;
use notes::Summarizer;
use notes::fhir::{composition, document_reference, sign_composition};
use serde_json::{Value, json};

mod common;

use common::{note_context, resource, without_server_fields};

const TRANSCRIPT: &str = "[doctor] hi , mrs lee . you're here today for left wrist pain .\n\
    [patient] yes , i fell on my left wrist two days ago .\n\
    [doctor] any numbness in your fingers ?\n[patient] no .\n\
    [doctor] on exam there is swelling over the left wrist .\n\
    [doctor] your x-ray shows no fracture .\n\
    [doctor] take ibuprofen four hundred milligrams every six hours as needed .";

async fn stored_and_signed() -> Vec<Value> {
    let draft = Summarizer::shipped().unwrap().draft(TRANSCRIPT).unwrap();
    assert!(draft.flags.is_empty(), "{:?}", draft.flags);
    let store = Store::open("sqlite::memory:").await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let context = note_context(&mut tx, "Lee", "Okafor").await;
    let draft_composition = composition(&draft, &context);
    let written = tx.create(draft_composition.clone()).await.unwrap();
    let mut draft_document = document_reference(&draft, &context);
    draft_document["context"] =
        json!({"related": [{"reference": format!("Composition/{}", written.id)}]});
    let document = tx.create(draft_document.clone()).await.unwrap();
    tx.commit().await.unwrap();

    let stored = resource(&store.read("Composition", &written.id).await.unwrap());
    assert_eq!(without_server_fields(stored.clone()), draft_composition);
    assert_eq!(stored["status"], "preliminary");
    let stored_document = resource(&store.read("DocumentReference", &document.id).await.unwrap());
    assert_eq!(without_server_fields(stored_document), draft_document);

    let (final_composition, provenance) =
        sign_composition(&stored, &context.author, "2026-12-06T10:00:00Z", 2).unwrap();
    assert!(
        sign_composition(
            &final_composition,
            &context.author,
            "2026-12-06T10:00:00Z",
            3
        )
        .is_err()
    );
    let mut tx = store.begin().await.unwrap();
    let updated = tx
        .update(
            "Composition",
            &written.id,
            final_composition.clone(),
            Some(1),
        )
        .await
        .unwrap();
    let provenance_id = tx.create(provenance.clone()).await.unwrap().id;
    tx.commit().await.unwrap();
    assert_eq!(updated.version, 2);

    let first = resource(&store.vread("Composition", &written.id, 1).await.unwrap());
    assert_eq!(first["status"], "preliminary");
    let last = resource(&store.read("Composition", &written.id).await.unwrap());
    assert_eq!(last["status"], "final");
    assert_eq!(last["section"], draft_composition["section"]);
    assert_eq!(
        last["attester"][0]["party"]["reference"],
        json!(context.author)
    );
    let provenance = resource(&store.read("Provenance", &provenance_id).await.unwrap());
    assert_eq!(
        provenance["target"][0]["reference"],
        json!(format!("Composition/{}/_history/2", written.id))
    );
    vec![draft_composition, draft_document, last, provenance]
}

#[tokio::test]
async fn the_composition_round_trips_and_signing_stores_a_final_version() {
    stored_and_signed().await;
}

#[tokio::test]
async fn stored_resources_validate_against_the_fhir_r4_schema() {
    let resources = stored_and_signed().await;
    if let Some(result) = fhir_schema::validate(&resources) {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
}
