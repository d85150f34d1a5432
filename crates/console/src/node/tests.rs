use std::sync::Arc;

use axum::http::StatusCode;
use ehr::auth::{Interaction, Principal};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[path = "../../examples/node_console/fixtures.rs"]
mod fixtures;

use super::*;
use crate::testing::{csrf_in, get, login, post, send};
use crate::{ConsoleSettings, Users};

struct Node {
    app: Router,
    ehr: ehr::Store,
    approvals: Arc<MemoryApprovals>,
    patients: fixtures::Seeded,
    _dir: tempfile::TempDir,
}

async fn node() -> Node {
    node_with(|_| None).await
}

/// A node console whose dictation is `dictation(ehr)`.
async fn node_with(dictation: impl FnOnce(&ehr::Store) -> Option<Arc<dyn Transcription>>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let ehr = ehr::Store::open(&format!(
        "sqlite:{}",
        dir.path().join("ehr.sqlite").display()
    ))
    .await
    .unwrap();
    let patients = fixtures::seed(&ehr).await.unwrap();
    let images = fixtures::images(&dir.path().join("images"), &ehr)
        .await
        .unwrap();
    let approvals = fixtures::approvals("hospital-test");
    let settings = ConsoleSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        users: Users::one_per_role("pw"),
        secure_cookies: true,
        oidc: None,
    };
    let app = router(
        NodeConsole {
            hospital: "hospital-test".into(),
            ehr: ehr.clone(),
            images: Some(images),
            disclosures: fixtures::disclosures(&"ef".repeat(32)),
            approvals: approvals.clone(),
            oidc: None,
            coding_models: Some(dir.path().join("coding-models")),
            dictation: dictation(&ehr),
        },
        &settings,
    );
    Node {
        app,
        ehr,
        approvals,
        patients,
        _dir: dir,
    }
}

/// The AuditEvents naming `patient`.
async fn audit_events(store: &ehr::Store, patient: &str) -> Vec<Value> {
    let request = ehr::search::SearchRequest::parse(
        "AuditEvent",
        &[
            ("patient".into(), patient.into()),
            ("_count".into(), "100".into()),
        ],
    )
    .unwrap();
    store
        .search(&request, None)
        .await
        .unwrap()
        .matches
        .iter()
        .map(|v| serde_json::from_str(v.content.as_deref().unwrap()).unwrap())
        .collect()
}

fn described(events: &[Value], who: &str, page: &str) -> usize {
    events
        .iter()
        .filter(|e| {
            e["agent"][0]["who"]["display"] == who
                && e["outcomeDesc"] == format!("web console: {page}")
        })
        .count()
}

#[test]
fn page_roles_are_the_roles_whose_scopes_read_the_resources() {
    let readers = |resource: &str| -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|role| {
                let principal = Principal {
                    name: "x".into(),
                    scopes: access::scopes(*role),
                    patient: None,
                };
                principal.access(resource, Interaction::Search).is_ok()
            })
            .collect()
    };
    assert_eq!(readers("Patient"), PATIENT_READERS);
    assert_eq!(readers("Consent"), CONSENT_READERS);
    assert_eq!(readers("AuditEvent"), AUDIT_READERS);
    for role in Role::ALL {
        let written = role.fhir_scopes().split_whitespace().count();
        assert_eq!(
            access::scopes(role).len(),
            written,
            "{role:?}: a scope does not parse"
        );
    }
}

#[tokio::test]
async fn clinicians_search_patients_and_read_charts_and_each_view_is_audited() {
    let n = node().await;
    let (cookie, _) = login(&n.app, "clinician").await;
    let (status, _, page) = send(&n.app, get("/patients?q=haddad", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("href=\"/patients/{}\"", n.patients.haddad)));
    assert!(!page.contains("Dupont"));
    let (_, _, page) = send(&n.app, get("/patients?q=MRN-0003", &cookie)).await;
    assert!(
        page.contains("Li Wei") && !page.contains("Haddad"),
        "search by identifier"
    );

    let chart = format!("/patients/{}", n.patients.haddad);
    let (status, _, page) = send(&n.app, get(&chart, &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "Amina Haddad",
        "1979-04-12",
        "Gestational diabetes mellitus",
        "Metformin 500 mg tablet",
        "Penicillin",
        "Hives",
        "growth on the 40th centile",
        "Outpatient consultation",
        "Ultrasound studies",
        &format!("/patients/{}/imaging/", n.patients.haddad),
    ] {
        assert!(page.contains(expected), "the chart shows {expected}");
    }

    let events = audit_events(&n.ehr, &n.patients.haddad).await;
    assert_eq!(described(&events, "clinician", "patient search"), 1);
    assert_eq!(described(&events, "clinician", "patient chart"), 1);
    let chart_event = events
        .iter()
        .find(|e| e["outcomeDesc"] == "web console: patient chart")
        .unwrap();
    assert_eq!(
        ehr::validate::validate(chart_event, None).unwrap(),
        "AuditEvent"
    );
    assert!(
        audit_events(&n.ehr, &n.patients.wei).await.len() == 1,
        "one search found Wei"
    );

    let (status, _, _) = send(&n.app, get("/patients/no-such-patient", &cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&n.app, get("/patients/bad%2Fid", &cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn frame_link(chart: &str) -> String {
    let at = chart.find("/imaging/").unwrap();
    let start = chart[..at].rfind('"').unwrap() + 1;
    let end = at + chart[at..].find('"').unwrap();
    chart[start..end].to_string()
}

#[tokio::test]
async fn the_frame_viewer_shows_the_patients_ultrasound_rendered_as_png() {
    let n = node().await;
    let (cookie, _) = login(&n.app, "clinician").await;
    let (_, _, chart) = send(
        &n.app,
        get(&format!("/patients/{}", n.patients.haddad), &cookie),
    )
    .await;
    let viewer = frame_link(&chart);
    let (status, _, page) = send(&n.app, get(&viewer, &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("1 of 1"));
    let png_path = format!("{viewer}/frames/1/rendered");
    assert!(page.contains(&png_path));

    let response = n
        .app
        .clone()
        .oneshot(get(&png_path, &cookie))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!(
        (width, height),
        (800, 600),
        "the fixture's 600 rows of 800 columns"
    );

    // No second frame; another patient's path to the study finds nothing.
    let (status, _, _) = send(&n.app, get(&format!("{viewer}/frames/2/rendered"), &cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let elsewhere = viewer.replace(&n.patients.haddad, &n.patients.wei);
    let (status, _, _) = send(&n.app, get(&elsewhere, &cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let events = audit_events(&n.ehr, &n.patients.haddad).await;
    assert_eq!(
        described(&events, "clinician", "ultrasound frame viewer"),
        1
    );
    assert_eq!(
        described(&events, "clinician", "rendered ultrasound frame"),
        1
    );
}

#[tokio::test]
async fn each_role_reaches_only_what_its_scopes_grant() {
    let n = node().await;
    let chart = format!("/patients/{}", n.patients.haddad);
    let (billing, _) = login(&n.app, "billing").await;
    let (status, _, page) = send(&n.app, get(&chart, &billing)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Gestational diabetes mellitus") && page.contains("Outpatient consultation")
    );
    assert!(
        !page.contains("Metformin")
            && !page.contains("Penicillin")
            && !page.contains("Ultrasound studies")
    );

    let (clinician, _) = login(&n.app, "clinician").await;
    let (_, _, full) = send(&n.app, get(&chart, &clinician)).await;
    let viewer = frame_link(&full);
    let refused: &[(&str, &[&str])] = &[
        (
            "billing",
            &[
                viewer.as_str(),
                "/consent",
                "/approvals",
                "/disclosures",
                "/access-log",
            ],
        ),
        (
            "clinician",
            &["/consent", "/approvals", "/disclosures", "/access-log"],
        ),
        (
            "data-scientist",
            &[
                "/patients",
                chart.as_str(),
                viewer.as_str(),
                "/consent",
                "/approvals",
                "/disclosures",
            ],
        ),
        (
            "auditor",
            &["/patients", chart.as_str(), "/consent", "/approvals"],
        ),
        ("dpo", &[viewer.as_str()]),
    ];
    for (user, paths) in refused {
        let (cookie, _) = login(&n.app, user).await;
        for path in *paths {
            let (status, _, page) = send(&n.app, get(path, &cookie)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{user} opened {path}");
            assert!(page.contains("Not allowed"));
        }
    }
    // A refused chart reads nothing, so it records nothing.
    let events = audit_events(&n.ehr, &n.patients.haddad).await;
    assert!(
        events
            .iter()
            .all(|e| e["agent"][0]["who"]["display"] != "data-scientist")
    );
}

#[tokio::test]
async fn the_dpo_records_and_withdraws_research_consent() {
    let n = node().await;
    let (cookie, csrf) = login(&n.app, "dpo").await;
    let (status, _, page) = send(&n.app, get("/consent", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Jean Dupont") && page.contains("<strong>yes</strong>"));

    let form = format!("csrf=forged&patient={}&decision=deny", n.patients.wei);
    let (status, _, _) = send(&n.app, post("/consent", &cookie, &form)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = format!("csrf={csrf}&patient=nobody&decision=deny");
    let (status, _, _) = send(&n.app, post("/consent", &cookie, &form)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let form = format!("csrf={csrf}&patient={}&decision=deny", n.patients.wei);
    let (status, _, _) = send(&n.app, post("/consent", &cookie, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // What the training gate reads: Wei and Dupont refused.
    let purposes = ehr::gate::default_research_purposes();
    let denying = |consents: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = consents
            .iter()
            .filter_map(|c| ehr::gate::denying_patient(c, &purposes, ehr::datetime::now_micros()))
            .collect();
        ids.sort();
        ids
    };
    let consents = |store: ehr::Store| async move {
        let request = ehr::search::SearchRequest::parse("Consent", &[]).unwrap();
        store
            .search(&request, None)
            .await
            .unwrap()
            .matches
            .iter()
            .map(|v| serde_json::from_str::<Value>(v.content.as_deref().unwrap()).unwrap())
            .collect::<Vec<_>>()
    };
    let mut expected = vec![n.patients.wei.clone(), n.patients.dupont.clone()];
    expected.sort();
    assert_eq!(denying(&consents(n.ehr.clone()).await), expected);

    // Withdraw Dupont's refusal.
    let all = consents(n.ehr.clone()).await;
    let dupont = all
        .iter()
        .find(|c| c["patient"]["reference"] == format!("Patient/{}", n.patients.dupont))
        .unwrap();
    let path = format!("/consent/{}/status", dupont["id"].as_str().unwrap());
    let (status, _, _) = send(
        &n.app,
        post(&path, &cookie, &format!("csrf={csrf}&status=inactive")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        denying(&consents(n.ehr.clone()).await),
        vec![n.patients.wei.clone()]
    );
    let (status, _, _) = send(
        &n.app,
        post(
            &path,
            &cookie,
            &format!("csrf={csrf}&status=entered-in-error"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let events = audit_events(&n.ehr, &n.patients.dupont).await;
    assert_eq!(described(&events, "dpo", "consent status changed"), 1);
    assert!(described(&events, "dpo", "consent management") >= 1);
}

#[tokio::test]
async fn the_node_waits_for_the_dpo_to_approve_a_plan() {
    let n = node().await;
    let pending = n.approvals.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    let plan_id = pending[0].plan_id.clone();
    let code_hash = fed::plan::TrainingPlan::from_json(&pending[0].plan_json)
        .unwrap()
        .code_hash();
    let waiting = {
        let approvals = n.approvals.clone();
        let plan_id = plan_id.clone();
        tokio::spawn(async move { approvals.wait(&plan_id).await })
    };

    let (cookie, csrf) = login(&n.app, "dpo").await;
    let (_, _, overview) = send(&n.app, get("/", &cookie)).await;
    assert!(overview.contains("1 plan waiting for your decision"));
    let (status, _, page) = send(&n.app, get("/approvals", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("heart") && page.contains(&code_hash));
    assert!(page.contains("not on the allow-list") && page.contains("What leaves the hospital"));

    let path = format!("/approvals/{plan_id}");
    let (status, _, _) = send(&n.app, post(&path, &cookie, "csrf=forged&decision=approve")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "no decision yet");

    let (status, _, _) = send(
        &n.app,
        post(&path, &cookie, &format!("csrf={csrf}&decision=approve")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let decided = waiting.await.unwrap();
    assert_eq!(
        (decided.decision, decided.by.as_str()),
        (Decision::Approve, "dpo")
    );
    assert_eq!(
        n.approvals.allow_list().await.unwrap(),
        vec![code_hash.clone()]
    );
    assert!(n.approvals.pending().await.unwrap().is_empty());
    let (status, _, _) = send(
        &n.app,
        post(&path, &cookie, &format!("csrf={csrf}&decision=decline")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "decided already");

    // The allow-list: a malformed hash is refused, a hash is removed.
    let (status, _, _) = send(
        &n.app,
        post(
            "/allow-list",
            &cookie,
            &format!("csrf={csrf}&code_hash=xyz&allowed=true"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let form = format!("csrf={csrf}&code_hash={code_hash}&allowed=false");
    let (status, _, _) = send(&n.app, post("/allow-list", &cookie, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(n.approvals.allow_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_declined_plan_carries_its_reason() {
    let approvals = MemoryApprovals::new([]).unwrap();
    approvals.offer("p1", "{}").unwrap();
    approvals.offer("p1", "{}").unwrap();
    assert_eq!(approvals.pending().await.unwrap().len(), 1, "offered once");
    approvals
        .decide("p1", "ana", Decision::Decline("not now".into()))
        .await
        .unwrap();
    let decided = approvals.wait("p1").await;
    assert_eq!(decided.decision, Decision::Decline("not now".into()));
    assert!(matches!(
        approvals.decide("p1", "ana", Decision::Approve).await,
        Err(ApprovalError::NotPending(_))
    ));
    assert!(MemoryApprovals::new(["ABC".to_string()]).is_err());
}

#[tokio::test]
async fn auditors_read_the_disclosures_and_access_logs() {
    let n = node().await;
    let (clinician, _) = login(&n.app, "clinician").await;
    send(
        &n.app,
        get(&format!("/patients/{}", n.patients.wei), &clinician),
    )
    .await;
    let (auditor, _) = login(&n.app, "auditor").await;
    let (status, _, page) = send(&n.app, get("/disclosures", &auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("4 messages") && page.contains("2 update") && page.contains("212"));
    let (status, _, page) = send(&n.app, get("/access-log", &auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("web console: patient chart") && page.contains(&n.patients.wei));
}

#[tokio::test]
async fn every_form_of_the_node_pages_carries_the_csrf_token() {
    let n = node().await;
    let (cookie, csrf) = login(&n.app, "dpo").await;
    for path in ["/consent", "/approvals"] {
        let (_, _, page) = send(&n.app, get(path, &cookie)).await;
        let forms = page.matches("<form").count();
        assert!(forms > 1);
        assert_eq!(
            page.matches(&format!("name=\"csrf\" value=\"{csrf}\""))
                .count(),
            forms,
            "{path}"
        );
        assert_eq!(csrf_in(&page), csrf);
    }
}

/// Store `resource` (with its id) in `store`.
async fn put(store: &ehr::Store, resource: serde_json::Value) {
    let kind = resource["resourceType"].as_str().unwrap().to_string();
    let id = resource["id"].as_str().unwrap().to_string();
    let mut tx = store.begin().await.unwrap();
    tx.update(&kind, &id, resource, None).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_clinician_drafts_the_visit_note_from_its_transcript_and_signs_it() {
    use base64::Engine as _;
    let n = node().await;
    let patient = n.patients.wei.clone();
    put(
        &n.ehr,
        serde_json::json!({
            "resourceType": "Encounter", "id": "visit-1", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")},
            "period": {"start": "2026-12-01T09:00:00Z"}
        }),
    )
    .await;
    let transcript = "[doctor] good morning . what brings you in ?\n\
        [patient] my right knee has been hurting for two weeks .\n\
        [doctor] any fever or chills ?\n[patient] no .\n\
        [doctor] on exam there is tenderness of the right knee .\n\
        [doctor] let's start ibuprofen six hundred milligrams three times a day .";
    put(
        &n.ehr,
        serde_json::json!({
            "resourceType": "DocumentReference", "id": "visit-1-transcript", "status": "current",
            "type": {"text": "Consultation transcript"},
            "subject": {"reference": format!("Patient/{patient}")},
            "content": [{"attachment": {"contentType": "text/plain",
                "data": base64::engine::general_purpose::STANDARD.encode(transcript)}}],
            "context": {"encounter": [{"reference": "Encounter/visit-1"}]}
        }),
    )
    .await;

    let (session, csrf) = login(&n.app, "clinician").await;
    let (status, _, page) = send(&n.app, get("/encounters/visit-1", &session)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("tenderness of the right knee"), "{page}");
    let (status, _, body) = send(
        &n.app,
        post(
            "/encounters/visit-1/draft",
            &session,
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, _, page) = send(&n.app, get("/encounters/visit-1", &session)).await;
    assert!(
        page.contains("(preliminary)") && page.contains("Sign this note"),
        "{page}"
    );
    assert!(page.contains("ibuprofen"), "{page}");

    // The draft, then its signature.
    let request = ehr::search::SearchRequest::parse(
        "DocumentReference",
        &[("encounter".into(), "Encounter/visit-1".into())],
    )
    .unwrap();
    let draft_id = n
        .ehr
        .search(&request, None)
        .await
        .unwrap()
        .matches
        .iter()
        .find(|v| v.content.as_deref().unwrap().contains("\"preliminary\""))
        .unwrap()
        .id
        .clone();
    let form = format!("csrf={csrf}&document={draft_id}");
    // Billing staff may not sign notes.
    let (billing, billing_csrf) = login(&n.app, "billing").await;
    let (status, _, _) = send(
        &n.app,
        post(
            "/encounters/visit-1/sign",
            &billing,
            &format!("csrf={billing_csrf}&document={draft_id}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(&n.app, post("/encounters/visit-1/sign", &session, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let signed: serde_json::Value = serde_json::from_str(
        n.ehr
            .read("DocumentReference", &draft_id)
            .await
            .unwrap()
            .content
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(signed["docStatus"], "final");
    assert_eq!(
        signed["context"]["encounter"][0]["reference"],
        "Encounter/visit-1"
    );
    let provenance = ehr::search::SearchRequest::parse("Provenance", &[]).unwrap();
    let found = n.ehr.search(&provenance, None).await.unwrap().matches;
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .content
            .as_deref()
            .unwrap()
            .contains("Practitioner/console-clinician")
    );
    // Each view and change is in the audit log.
    let events = audit_events(&n.ehr, &patient).await;
    for page in [
        "web console: visit",
        "web console: note drafted",
        "web console: note signed",
    ] {
        assert!(
            events.iter().any(|e| e.to_string().contains(page)),
            "{page}"
        );
    }
}

/// A stand-in for the node's speech model: files "heard N bytes" as the visit's transcript,
/// and refuses recordings that start with `BAD` as the node refuses corrupt audio.
struct FakeTranscription {
    ehr: ehr::Store,
}

impl Transcription for FakeTranscription {
    fn transcribe(&self, upload: Upload) -> futures::future::BoxFuture<'_, Result<String, String>> {
        use base64::Engine as _;
        Box::pin(async move {
            if upload.audio.starts_with(b"BAD") {
                return Err("unsupported or corrupt audio: no known format".into());
            }
            let text = format!(
                "heard {} bytes of {} in {}",
                upload.audio.len(),
                upload.content_type,
                upload.language
            );
            let document = serde_json::json!({
                "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
                "type": {"text": "Dictation transcript"},
                "subject": {"reference": format!("Patient/{}", upload.patient)},
                "content": [{"attachment": {"contentType": "text/plain", "title": "Transcript",
                    "data": base64::engine::general_purpose::STANDARD.encode(text)}}],
                "context": {"encounter": [{"reference": format!("Encounter/{}", upload.encounter)}]}
            });
            let mut tx = self.ehr.begin().await.map_err(|e| e.to_string())?;
            let written = tx.create(document).await.map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            Ok(written.id)
        })
    }

    fn max_bytes(&self) -> usize {
        4096
    }
}

/// A multipart upload of `audio` with the form's CSRF token.
fn upload(
    path: &str,
    cookie: &str,
    csrf: &str,
    audio: &[u8],
) -> axum::http::Request<axum::body::Body> {
    let mut body = format!(
        "--b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --b\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nfr\r\n\
         --b\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"d.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(audio);
    body.extend_from_slice(b"\r\n--b--\r\n");
    axum::http::Request::post(path)
        .header("cookie", cookie)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn a_clinician_uploads_a_dictation_and_the_node_files_its_transcript() {
    let n = node_with(|ehr| Some(Arc::new(FakeTranscription { ehr: ehr.clone() }))).await;
    let patient = n.patients.wei.clone();
    put(
        &n.ehr,
        serde_json::json!({
            "resourceType": "Encounter", "id": "visit-2", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")}
        }),
    )
    .await;
    let (session, csrf) = login(&n.app, "clinician").await;
    let (status, _, page) = send(&n.app, get("/encounters/visit-2", &session)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    // Billing staff read visits but do not file documents: no upload form, and a refused post.
    let (billing, billing_csrf) = login(&n.app, "billing").await;
    let (_, _, page) = send(&n.app, get("/encounters/visit-2", &billing)).await;
    assert!(!page.contains("multipart/form-data"), "{page}");
    let (status, _, _) = send(
        &n.app,
        upload(
            "/encounters/visit-2/dictation",
            &billing,
            &billing_csrf,
            b"RIFF",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &n.app,
        upload("/encounters/visit-2/dictation", &session, "forged", b"RIFF"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A corrupt recording: the node's reason, nothing filed.
    let (status, _, page) = send(
        &n.app,
        upload("/encounters/visit-2/dictation", &session, &csrf, b"BAD!"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("unsupported or corrupt audio"), "{page}");
    // Over the node's size limit.
    let (status, _, _) = send(
        &n.app,
        upload("/encounters/visit-2/dictation", &session, &csrf, &[7; 5000]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, body) = send(
        &n.app,
        upload(
            "/encounters/visit-2/dictation",
            &session,
            &csrf,
            b"RIFF....",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, _, page) = send(&n.app, get("/encounters/visit-2", &session)).await;
    assert!(page.contains("heard 8 bytes of audio/wav in fr"), "{page}");
    assert!(
        page.contains("Draft the note from the transcript"),
        "{page}"
    );
    let events = audit_events(&n.ehr, &patient).await;
    assert_eq!(described(&events, "clinician", "dictation transcribed"), 1);
}

/// A code model that has learnt two codes from a handful of notes, saved where the node keeps
/// its coding models.
fn train_coder(dir: &std::path::Path) {
    use billing::corpus::{Case, Lang, Split};
    let mut split = Split {
        cases: Vec::new(),
        diagnoses: Default::default(),
        procedures: Default::default(),
        evidence: Default::default(),
    };
    for i in 0..12 {
        let (text, code) = match i % 2 {
            0 => (
                "long standing arterial hypertension treated with amlodipine",
                "I10",
            ),
            _ => (
                "asthma with wheezing, salbutamol inhaler as needed",
                "J45.909",
            ),
        };
        split.cases.push(Case {
            id: format!("c{i}"),
            text: text.into(),
        });
        split.diagnoses.insert(format!("c{i}"), vec![code.into()]);
    }
    let spec = billing::codiesp::spec_for(
        &split,
        Lang::En,
        billing::features::Featurizer {
            buckets: 1 << 10,
            max_n: 2,
        },
        8,
    );
    let config = billing::TrainConfig {
        epochs: 80,
        batch_size: 2,
        learning_rate: 0.1,
        ..Default::default()
    };
    let (weights, _) = billing::train(
        &spec,
        &spec.init(1),
        &billing::examples(&spec, &split),
        &config,
        1,
    )
    .unwrap();
    let coder = billing::Coder::new(spec, weights).unwrap();
    coder.save(&dir.join("0001-test")).unwrap();
}

#[tokio::test]
async fn a_billing_officer_codes_a_visit_with_the_nodes_model_and_writes_the_claim() {
    use base64::Engine as _;
    let n = node().await;
    train_coder(&n._dir.path().join("coding-models"));
    let patient = n.patients.dupont.clone();
    put(&n.ehr, serde_json::json!({"resourceType": "Organization", "id": "hospital-test", "name": "Test hospital"})).await;
    put(
        &n.ehr,
        serde_json::json!({"resourceType": "Coverage", "id": "cov-1", "status": "active",
        "beneficiary": {"reference": format!("Patient/{patient}")},
        "payor": [{"reference": "Organization/hospital-test"}]}),
    )
    .await;
    put(
        &n.ehr,
        serde_json::json!({
            "resourceType": "Encounter", "id": "visit-2", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")},
            "serviceProvider": {"reference": "Organization/hospital-test"}
        }),
    )
    .await;
    let note = "Follow-up of arterial hypertension, well controlled with amlodipine.";
    put(&n.ehr, serde_json::json!({
        "resourceType": "DocumentReference", "id": "visit-2-note", "status": "current", "docStatus": "final",
        "subject": {"reference": format!("Patient/{patient}")}, "date": "2026-12-01T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain",
            "data": base64::engine::general_purpose::STANDARD.encode(note)}}],
        "context": {"encounter": [{"reference": "Encounter/visit-2"}]}
    }))
    .await;

    // A clinician does not bill.
    let (clinician, _) = login(&n.app, "clinician").await;
    let (status, _, _) = send(&n.app, get("/encounters/visit-2/coding", &clinician)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (session, csrf) = login(&n.app, "billing").await;
    let (status, _, page) = send(&n.app, get("/encounters/visit-2/coding", &session)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let top = page.find("I10").expect("I10 suggested");
    let other = page.find("J45.909").expect("J45.909 suggested");
    let table = &page[page.find("<table id=\"codes\"").unwrap()..];
    assert!(
        top < other,
        "hypertension ranks first for a hypertension note: {table}"
    );
    assert!(
        page.contains("hypertension"),
        "the evidence quotes the note"
    );
    let form = format!("csrf={csrf}&bill.diagnosis.I10=on");
    let (status, headers, body) =
        send(&n.app, post("/encounters/visit-2/claim", &session, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let location = headers["location"].to_str().unwrap().to_string();
    let claim_id = location.split("claim=").nth(1).unwrap().to_string();
    let claim: serde_json::Value = serde_json::from_str(
        n.ehr
            .read("Claim", &claim_id)
            .await
            .unwrap()
            .content
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    let coded: Vec<&str> = claim["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["diagnosisCodeableConcept"]["coding"][0]["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(coded, ["I10"]);
    // Every suggestion's decision, accepted or rejected, has its Provenance.
    let provenance =
        ehr::search::SearchRequest::parse("Provenance", &[("_count".into(), "100".into())])
            .unwrap();
    let decisions = n.ehr.search(&provenance, None).await.unwrap().matches.len();
    assert!(decisions >= 2, "{decisions} decisions recorded");
    let (_, _, page) = send(&n.app, get(&location, &session)).await;
    assert!(page.contains(&format!("Claim/{claim_id} written")));
}

#[test]
fn the_code_model_is_read_once_per_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cache = coding::CoderCache::default();
    assert!(cache.newest(dir.path()).is_none());
    train_coder(dir.path());
    let first = cache.newest(dir.path()).unwrap();
    assert!(Arc::ptr_eq(&first, &cache.newest(dir.path()).unwrap()));
    // A newer folder (a later plan's final model) is loaded in its place.
    std::fs::create_dir(dir.path().join("0002-later")).unwrap();
    for file in std::fs::read_dir(dir.path().join("0001-test")).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(
            &file,
            dir.path()
                .join("0002-later")
                .join(file.file_name().unwrap()),
        )
        .unwrap();
    }
    let second = cache.newest(dir.path()).unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    // An unreadable newer folder is passed over for the newest readable one.
    std::fs::create_dir(dir.path().join("0003-broken")).unwrap();
    assert!(Arc::ptr_eq(&second, &cache.newest(dir.path()).unwrap()));
}

#[tokio::test]
async fn every_node_console_route_but_the_login_and_assets_needs_a_login() {
    let n = node_with(|ehr| Some(Arc::new(FakeTranscription { ehr: ehr.clone() }))).await;
    let routes = harness::routes::declared_routes(include_str!("../node.rs"));
    assert!(routes.len() >= 18, "{routes:?}");
    let checked = harness::routes::assert_login_required(&n.app, &routes, &[]).await;
    assert_eq!(checked, routes.len());
    // The login routes and the embedded assets are public by design.
    let public = harness::routes::declared_routes(include_str!("../auth.rs"));
    assert!(public.contains(&"/login".to_string()), "{public:?}");
}
