//! Clinical documents through the REST API, on SQLite and PostgreSQL: a consultation note as a
//! `Composition` (created preliminary, searched by patient, encounter, status, type and section,
//! replaced by its `final` version, signed by a `Provenance`), and a dictation transcript as a
//! `DocumentReference` with its text inline and its recording in a `Binary`.

mod api_support;
mod common;

use api_support::Api;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const LOINC: &str = "http://loinc.org";

impl Api {
    /// A request with `token` and, for updates, an `If-Match`: status and JSON body.
    async fn request(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Value) {
        let headers: Vec<(&str, &str)> =
            if_match.map(|tag| ("if-match", tag)).into_iter().collect();
        let (status, _, value) = self.call(method, uri, Some(token), body, &headers).await;
        (status, value)
    }

    /// `GET uri` with `Accept: accept`: status, media type and the body's bytes.
    async fn get_raw(&self, uri: &str, token: &str, accept: &str) -> (StatusCode, String, Vec<u8>) {
        let request = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("accept", accept)
            .body(Body::empty())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let media = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, media, bytes.to_vec())
    }

    /// Creates `resource` and returns its id.
    async fn create(&self, resource: Value) -> String {
        let t = resource["resourceType"].as_str().unwrap().to_string();
        let (status, created) = self.admin("POST", &format!("/{t}"), Some(resource)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().unwrap().to_string()
    }

    /// The ids a search finds.
    async fn ids(&self, query: &str) -> Vec<String> {
        let (status, bundle) = self.admin("GET", query, None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] != "include")
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn section(code: &str, title: &str, text: &str) -> Value {
    json!({"title": title, "code": {"coding": [{"system": LOINC, "code": code}]},
        "text": {"status": "generated",
            "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{text}</p></div>")}})
}

fn consultation_note(patient: &str, encounter: &str, doctor: &str) -> Value {
    json!({
        "resourceType": "Composition", "status": "preliminary",
        "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "encounter": {"reference": format!("Encounter/{encounter}")},
        "date": "2024-03-12T10:30:00Z",
        "author": [{"reference": format!("Practitioner/{doctor}")}],
        "title": "Consultation note (draft)",
        "section": [
            section("10164-2", "History of present illness", "Cough for three days."),
            section("51847-2", "Assessment and plan", "Viral bronchitis; rest."),
        ]
    })
}

#[tokio::test]
async fn a_consultation_note_is_drafted_searched_signed_and_versioned() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let patient = api
            .create(json!({"resourceType": "Patient", "name": [{"family": "Martin"}]}))
            .await;
        let other = api
            .create(json!({"resourceType": "Patient", "name": [{"family": "Petit"}]}))
            .await;
        let doctor = api
            .create(json!({"resourceType": "Practitioner", "name": [{"family": "House"}]}))
            .await;
        let encounter = api
            .create(json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")}}))
            .await;
        let draft = consultation_note(&patient, &encounter, &doctor);
        let id = api.create(draft.clone()).await;
        api.create(consultation_note(&other, &encounter, &doctor))
            .await;

        let (status, read) = api.admin("GET", &format!("/Composition/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{}: {read}", b.name);
        assert_eq!(read["section"], draft["section"]);
        assert_eq!(read["meta"]["versionId"], "1");

        let mine = vec![id.clone()];
        assert_eq!(
            api.ids(&format!("/Composition?patient={patient}")).await,
            mine
        );
        assert_eq!(
            api.ids(&format!(
                "/Composition?subject=Patient/{patient}&status=preliminary"
            ))
            .await,
            mine
        );
        assert_eq!(
            api.ids(&format!(
                "/Composition?encounter=Encounter/{encounter}&patient={patient}"
            ))
            .await,
            mine
        );
        assert_eq!(
            api.ids(&format!(
                "/Composition?patient={patient}&type={LOINC}|11488-4&section={LOINC}|51847-2&date=ge2024-03-12&author=Practitioner/{doctor}"
            ))
            .await,
            mine
        );
        assert!(
            api.ids(&format!("/Composition?patient={patient}&status=final"))
                .await
                .is_empty()
        );
        assert!(
            api.ids(&format!(
                "/Composition?patient={patient}&section={LOINC}|10187-3"
            ))
            .await
            .is_empty()
        );
        assert_eq!(
            api.ids("/Composition?patient.name=martin").await,
            mine,
            "chained search"
        );

        // The clinician corrects and signs: the final version replaces the draft.
        let mut signed = read.clone();
        signed["status"] = json!("final");
        signed["title"] = json!("Consultation note");
        signed["section"][1] = section(
            "51847-2",
            "Assessment and plan",
            "Viral bronchitis; rest; review in 7 days.",
        );
        signed["attester"] = json!([{"mode": "legal", "time": "2024-03-12T11:00:00Z",
            "party": {"reference": format!("Practitioner/{doctor}")}}]);
        let (status, written) = api
            .request(
                "PUT",
                &format!("/Composition/{id}"),
                &api.admin,
                Some(signed),
                Some("W/\"1\""),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{written}");
        assert_eq!(written["meta"]["versionId"], "2");
        let provenance = api.create(json!({
            "resourceType": "Provenance",
            "target": [{"reference": format!("Composition/{id}/_history/2")}],
            "recorded": "2024-03-12T11:00:00Z",
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE"}]},
            "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "verifier"}]},
                "who": {"reference": format!("Practitioner/{doctor}")}}],
            "signature": [{"type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.5"}],
                "when": "2024-03-12T11:00:00Z", "who": {"reference": format!("Practitioner/{doctor}")}}]
        }))
        .await;

        assert!(
            api.ids(&format!(
                "/Composition?patient={patient}&status=preliminary"
            ))
            .await
            .is_empty(),
            "{}: the draft is no longer current",
            b.name
        );
        assert_eq!(
            api.ids(&format!(
                "/Composition?patient={patient}&status=final&attester=Practitioner/{doctor}"
            ))
            .await,
            mine
        );
        let (_, history) = api
            .admin("GET", &format!("/Composition/{id}/_history"), None)
            .await;
        let statuses: Vec<&str> = history["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["final", "preliminary"], "{}", b.name);
        let (_, draft_again) = api
            .admin("GET", &format!("/Composition/{id}/_history/1"), None)
            .await;
        assert_eq!(draft_again["title"], "Consultation note (draft)");

        // The signature points at the signed version, and is found from the note.
        assert_eq!(
            api.ids(&format!("/Provenance?target=Composition/{id}"))
                .await,
            vec![provenance.clone()]
        );
        let (_, with_signature) = api
            .admin(
                "GET",
                &format!("/Composition?_id={id}&_revinclude=Provenance:target"),
                None,
            )
            .await;
        let included: Vec<&str> = with_signature["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(included, ["Composition", "Provenance"], "{with_signature}");

        // The note is the patient's data: their app reads it, another patient's does not.
        let token = api
            .store
            .create_token("app", "patient/*.read", Some(&patient), None)
            .await
            .unwrap();
        let (status, _) = api
            .request("GET", &format!("/Composition/{id}"), &token, None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, everything) = api
            .request(
                "GET",
                &format!("/Patient/{patient}/$everything"),
                &token,
                None,
                None,
            )
            .await;
        assert!(
            everything["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["resource"]["id"] == json!(id)),
            "{everything}"
        );
        let stranger = api
            .store
            .create_token("other-app", "patient/*.read", Some(&other), None)
            .await
            .unwrap();
        let (status, _) = api
            .request("GET", &format!("/Composition/{id}"), &stranger, None, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}", b.name);

        // Broken notes are refused with the element named.
        let mut broken = consultation_note(&patient, &encounter, &doctor);
        broken["status"] = json!("signed");
        let (status, outcome) = api.admin("POST", "/Composition", Some(broken)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(outcome["issue"][0]["expression"][0], "Composition.status");
    }
}

#[tokio::test]
async fn a_transcript_keeps_its_text_inline_and_its_recording_in_a_binary() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let patient = api
            .create(json!({"resourceType": "Patient", "name": [{"family": "Leroy"}]}))
            .await;
        let text = "Patiente revue ce jour : toux sèche, pas de fièvre.";
        let audio: Vec<u8> = (0..=255u8).cycle().take(48_000).collect();
        let urn = "urn:uuid:2f1c5b0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {
                "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
                "type": {"coding": [{"system": LOINC, "code": "34109-9", "display": "Note"}], "text": "Dictation transcript"},
                "subject": {"reference": format!("Patient/{patient}")},
                "date": "2024-03-12T10:00:00Z",
                "content": [
                    {"attachment": {"contentType": "text/plain; charset=utf-8", "language": "fr", "data": b64(text.as_bytes()), "title": "Transcript"}},
                    {"attachment": {"contentType": "audio/wav", "url": urn, "size": audio.len(), "title": "Recording"}}
                ]},
             "request": {"method": "POST", "url": "DocumentReference"}},
            {"fullUrl": urn,
             "resource": {"resourceType": "Binary", "contentType": "audio/wav",
                "securityContext": {"reference": format!("Patient/{patient}")}, "data": b64(&audio)},
             "request": {"method": "POST", "url": "Binary"}}
        ]});
        let (status, response) = api.admin("POST", "/", Some(bundle)).await;
        assert_eq!(status, StatusCode::OK, "{}: {response}", b.name);

        let found = api
            .ids(&format!(
                "/DocumentReference?patient={patient}&contenttype=text/plain;%20charset=utf-8&status=current"
            ))
            .await;
        assert_eq!(found.len(), 1, "{}", b.name);
        let (_, doc) = api
            .admin("GET", &format!("/DocumentReference/{}", found[0]), None)
            .await;
        let stored = base64::engine::general_purpose::STANDARD
            .decode(doc["content"][0]["attachment"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(stored).unwrap(), text);
        // The recording's link was rewritten to the Binary the server created.
        let link = doc["content"][1]["attachment"]["url"].as_str().unwrap();
        let binary = link
            .strip_prefix("Binary/")
            .unwrap_or_else(|| panic!("{link}"));
        let (status, recording) = api.admin("GET", &format!("/{link}"), None).await;
        assert_eq!(status, StatusCode::OK, "{recording}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(recording["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, audio);
        // Asked for as audio, the Binary is its recording (FHIR's raw Binary read).
        let (status, media, raw) = api
            .get_raw(&format!("/{link}"), &api.admin, "audio/wav")
            .await;
        assert_eq!((status, media.as_str()), (StatusCode::OK, "audio/wav"));
        assert_eq!(raw, audio);
        let (status, _, raw) = api
            .get_raw(&format!("/{link}"), &api.admin, "audio/*")
            .await;
        assert_eq!((status, raw.len()), (StatusCode::OK, audio.len()));
        let (status, _, _) = api
            .get_raw(&format!("/{link}"), &api.admin, "text/plain")
            .await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
        let (status, _, _) = api.get_raw("/Patient", &api.admin, "audio/wav").await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            api.ids(&format!(
                "/Binary?securitycontext=Patient/{patient}&contenttype=audio/wav"
            ))
            .await,
            vec![binary.to_string()]
        );

        // The recording is the patient's data: their token reaches it, another's does not,
        // and the read is audited.
        let token = api
            .store
            .create_token("app", "patient/*.read", Some(&patient), None)
            .await
            .unwrap();
        let (status, _) = api
            .request("GET", &format!("/{link}"), &token, None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let stranger_id = api
            .create(json!({"resourceType": "Patient", "name": [{"family": "Autre"}]}))
            .await;
        let stranger = api
            .store
            .create_token("other", "patient/*.read", Some(&stranger_id), None)
            .await
            .unwrap();
        let (status, _) = api
            .request("GET", &format!("/{link}"), &stranger, None, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, audit) = api
            .admin(
                "GET",
                &format!("/AuditEvent?entity=Binary/{binary}&patient={patient}&_count=100"),
                None,
            )
            .await;
        let readers: Vec<&str> = audit["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["resource"]["agent"][0]["who"]["display"].as_str())
            .collect();
        assert!(
            readers.contains(&"app"),
            "{}: the read was not audited: {audit}",
            b.name
        );

        // Bytes that are not base64 are refused, naming the element.
        let (status, outcome) = api
            .admin(
                "POST",
                "/Binary",
                Some(json!({"resourceType": "Binary", "contentType": "audio/wav", "data": "UklGR!=="})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            outcome["issue"][0]["expression"][0], "Binary.data",
            "{outcome}"
        );
    }
}
