//! The REST API through the axum router (no socket), on SQLite and PostgreSQL.

mod api_support;
mod common;

use api_support::{Api, BASE};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ehr::{ApiConfig, EhrState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

impl Api {
    async fn count(&self, t: &str) -> usize {
        let (_, bundle) = self
            .admin("GET", &format!("/{t}?_summary=count"), None)
            .await;
        bundle["total"].as_u64().unwrap() as usize
    }
}

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "gender": "male", "birthDate": "1960-02-03"})
}

fn outcome_says(value: &Value, words: &str) -> bool {
    value["resourceType"] == "OperationOutcome"
        && value["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains(words))
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let (status, headers, body) = api.call("GET", "/Patient", None, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", b.name);
        assert!(headers.contains_key("www-authenticate"));
        assert!(outcome_says(&body, "Bearer"), "{body}");
        let (status, _, _) = api
            .call("GET", "/Patient", Some("cohort_ehr_forged"), None, &[])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        b.store.revoke_token("admin").await.unwrap();
        let (status, _, body) = api
            .call("GET", "/Patient", Some(&api.admin), None, &[])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(outcome_says(&body, "revoked"), "{body}");
        let (status, _, body) = api.call("GET", "/metadata", None, None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["resourceType"], "CapabilityStatement");
    }
}

#[tokio::test]
async fn crud_round_trip_with_versions_and_audit() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let mut p = patient("Smith");
        p["extension"] = json!([{"url": "http://example.org/x", "valueString": "kept"}]);
        let (status, headers, created) = api
            .call("POST", "/Patient", Some(&api.admin), Some(p.clone()), &[])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{}: {created}", b.name);
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(
            headers["location"],
            format!("{BASE}/Patient/{id}/_history/1")
        );
        assert_eq!(headers["etag"], "W/\"1\"");
        let (status, read) = api.admin("GET", &format!("/Patient/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read["extension"], p["extension"]);
        let mut changed = read.clone();
        changed["name"][0]["family"] = json!("Smyth");
        let (status, headers, _) = api
            .call(
                "PUT",
                &format!("/Patient/{id}"),
                Some(&api.admin),
                Some(changed.clone()),
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["etag"], "W/\"2\"");
        let (status, _, body) = api
            .call(
                "PUT",
                &format!("/Patient/{id}"),
                Some(&api.admin),
                Some(changed),
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
        let (_, v1) = api
            .admin("GET", &format!("/Patient/{id}/_history/1"), None)
            .await;
        assert_eq!(v1["name"][0]["family"], "Smith");
        let (_, history) = api
            .admin("GET", &format!("/Patient/{id}/_history"), None)
            .await;
        assert_eq!(history["type"], "history");
        assert_eq!(history["entry"].as_array().unwrap().len(), 2);
        let (status, _) = api.admin("DELETE", &format!("/Patient/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = api.admin("GET", &format!("/Patient/{id}"), None).await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        // Every access above was recorded: create, read, update, vread, history, delete.
        let (_, audit) = api
            .admin("GET", &format!("/AuditEvent?patient={id}&_count=100"), None)
            .await;
        let codes: Vec<&str> = audit["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["subtype"][0]["code"].as_str().unwrap())
            .collect();
        for code in [
            "create",
            "read",
            "update",
            "vread",
            "history-instance",
            "delete",
        ] {
            assert!(
                codes.contains(&code),
                "{}: {code} missing from {codes:?}",
                b.name
            );
        }
        let event = &audit["entry"][0]["resource"];
        assert_eq!(event["agent"][0]["who"]["display"], "admin");
        assert!(event["recorded"].is_string());
        let (status, body) = api
            .admin(
                "DELETE",
                &format!("/AuditEvent/{}", event["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_precise_outcome_and_changes_nothing() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let n = b.name;
        let raw = Request::builder()
            .method("POST")
            .uri("/Patient")
            .header("authorization", format!("Bearer {}", api.admin))
            .header("content-type", "application/fhir+json")
            .body(Body::from("{\"resourceType\": \"Patient\","))
            .unwrap();
        let (status, _, body) = api.send(raw).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}");
        assert!(outcome_says(&body, "not valid JSON"), "{body}");
        let (status, body) = api
            .admin(
                "POST",
                "/Spaceship",
                Some(json!({"resourceType": "Spaceship"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{n}");
        assert!(outcome_says(&body, "Spaceship"), "{body}");
        let (status, body) = api.admin("POST", "/Observation", Some(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/ghost"}}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}");
        assert!(outcome_says(&body, "Patient/ghost"), "{body}");
        let (status, body) = api
            .admin(
                "POST",
                "/Observation",
                Some(json!({"resourceType": "Observation", "code": {"text": "x"}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["issue"][0]["expression"][0], "Observation.status");
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:a", "resource": patient("Tx"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:a"}, "effectiveDateTime": "2024-02-30"}, "request": {"method": "POST", "url": "Observation"}},
        ]});
        let (status, body) = api.admin("POST", "/", Some(bundle)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {body}");
        assert!(outcome_says(&body, "entry 1"), "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0],
            "Bundle.entry[1].resource.Observation.effectiveDateTime"
        );
        let (status, body) = api.admin("GET", "/Patient?birthdate=yesterday", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(outcome_says(&body, "birthdate"), "{body}");
        let (status, _, body) = api
            .call(
                "GET",
                "/Patient",
                Some(&api.admin),
                None,
                &[("accept", "application/fhir+xml")],
            )
            .await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
        assert_eq!(api.count("Patient").await, 0, "{n}: nothing was stored");
        assert_eq!(api.count("Observation").await, 0, "{n}");
    }
}

#[tokio::test]
async fn search_pages_with_links_and_includes() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let mut entries = Vec::new();
        for i in 0..7 {
            entries.push(json!({"fullUrl": format!("urn:uuid:p{i}"), "resource": patient(&format!("Page{i}")), "request": {"method": "POST", "url": "Patient"}}));
            entries.push(json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": format!("urn:uuid:p{i}")}, "valueQuantity": {"value": 60 + i, "unit": "/min"}}, "request": {"method": "POST", "url": "Observation"}}));
        }
        let (status, response) = api
            .admin(
                "POST",
                "/",
                Some(json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{response}");
        assert_eq!(response["type"], "transaction-response");
        assert_eq!(response["entry"][0]["response"]["status"], "201 Created");
        let (_, page1) = api.admin("GET", "/Observation?code=http://loinc.org|8867-4&_count=3&_include=Observation:subject&_sort=value-quantity", None).await;
        assert_eq!(page1["total"], 7, "{}", b.name);
        let matches: Vec<&Value> = page1["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .collect();
        assert_eq!(matches.len(), 3);
        assert_eq!(matches[0]["resource"]["valueQuantity"]["value"], 60);
        let includes = page1["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .count();
        assert_eq!(includes, 3);
        let next = page1["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, page3) = api
            .admin(
                "GET",
                &next.replace(BASE, "").replace("_offset=3", "_offset=6"),
                None,
            )
            .await;
        assert_eq!(
            page3["entry"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .count(),
            1
        );
        assert!(
            !page3["link"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["relation"] == "next")
        );
        let (_, chained) = api
            .admin("GET", "/Observation?subject:Patient.name=page4", None)
            .await;
        assert_eq!(chained["total"], 1);
        assert_eq!(
            chained["entry"][0]["resource"]["valueQuantity"]["value"],
            64
        );
    }
}

#[tokio::test]
async fn patient_scoped_tokens_see_only_their_patient() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let (_, a) = api.admin("POST", "/Patient", Some(patient("Alpha"))).await;
        let (_, z) = api.admin("POST", "/Patient", Some(patient("Zulu"))).await;
        let (a, z) = (
            a["id"].as_str().unwrap().to_string(),
            z["id"].as_str().unwrap().to_string(),
        );
        for pid in [&a, &z] {
            api.admin("POST", "/Observation", Some(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{pid}")}}))).await;
        }
        let token = api
            .store
            .create_token("app", "patient/*.read", Some(&a), None)
            .await
            .unwrap();
        let (status, _, bundle) = api
            .call("GET", "/Observation", Some(&token), None, &[])
            .await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        assert_eq!(bundle["total"], 1, "{}", b.name);
        assert_eq!(
            bundle["entry"][0]["resource"]["subject"]["reference"],
            format!("Patient/{a}")
        );
        let (status, _, body) = api
            .call("GET", &format!("/Patient/{z}"), Some(&token), None, &[])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _, _) = api
            .call("POST", "/Patient", Some(&token), Some(patient("New")), &[])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, everything) = api
            .call(
                "GET",
                &format!("/Patient/{a}/$everything"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(everything["total"], 2, "{everything}");
        let (status, _, _) = api
            .call(
                "GET",
                &format!("/Patient/{z}/Observation"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn bulk_export_writes_ndjson_per_type() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        for name in ["One", "Two"] {
            api.admin("POST", "/Patient", Some(patient(name))).await;
        }
        let (status, _, body) = api
            .call("GET", "/$export", Some(&api.admin), None, &[])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, headers, _) = api
            .call(
                "GET",
                "/$export?_type=Patient",
                Some(&api.admin),
                None,
                &[("prefer", "respond-async")],
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{}", b.name);
        let poll = headers["content-location"]
            .to_str()
            .unwrap()
            .replace(BASE, "");
        let manifest = loop {
            let (status, manifest) = api.admin("GET", &poll, None).await;
            if status == StatusCode::OK {
                break manifest;
            }
            assert_eq!(status, StatusCode::ACCEPTED);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(manifest["output"][0]["type"], "Patient");
        assert_eq!(manifest["output"][0]["count"], 2);
        let url = manifest["output"][0]["url"]
            .as_str()
            .unwrap()
            .replace(BASE, "");
        let (status, headers, ndjson) = api.call("GET", &url, Some(&api.admin), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/fhir+ndjson");
        let lines: Vec<Value> = ndjson
            .as_str()
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let user = api
            .store
            .create_token("clinician", "user/*.read", None, None)
            .await
            .unwrap();
        let (status, _, _) = api
            .call(
                "GET",
                "/$export",
                Some(&user),
                None,
                &[("prefer", "respond-async")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn nested_router_links_carry_the_mount_path() {
    let b = common::sqlite().await;
    let token = b
        .store
        .create_token("node", "user/*.*", None, None)
        .await
        .unwrap();
    let app = Router::new().nest(
        "/fhir",
        router(EhrState::new(b.store.clone(), ApiConfig::default())),
    );
    let request = Request::builder()
        .method("POST")
        .uri("/fhir/Patient")
        .header("host", "node.example:8443")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/fhir+json")
        .body(Body::from(patient("Nested").to_string()))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://node.example:8443/fhir/Patient/"),
        "{location}"
    );
}

/// Every AuditEvent in the store (read with the admin token).
async fn audit_events(api: &Api) -> Vec<Value> {
    let (status, bundle) = api.admin("GET", "/AuditEvent?_count=1000", None).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

/// Issue 10, item 3: parallel PUTs (each to its own id, and all to one id) all succeed while
/// reads go on; each resource ends in the right state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_and_reads_all_succeed() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let (_, seed) = api.admin("POST", "/Patient", Some(patient("Seed"))).await;
        let seed = seed["id"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for n in 0..20 {
            let (api1, api2, api3, seed) = (api.clone(), api.clone(), api.clone(), seed.clone());
            tasks.push(tokio::spawn(async move {
                let mut p = patient(&format!("Repro{n}"));
                p["id"] = json!(format!("repro-{n}"));
                api1.admin("PUT", &format!("/Patient/repro-{n}"), Some(p))
                    .await
            }));
            tasks.push(tokio::spawn(async move {
                let mut p = patient(&format!("Shared{n}"));
                p["id"] = json!("shared");
                api2.admin("PUT", "/Patient/shared", Some(p)).await
            }));
            tasks.push(tokio::spawn(async move {
                api3.admin("GET", &format!("/Patient/{seed}"), None).await
            }));
        }
        for task in tasks {
            let (status, body) = task.await.unwrap();
            assert!(status.is_success(), "{}: {status} {body}", b.name);
        }
        assert_eq!(api.count("Patient").await, 22, "{}", b.name);
        for n in 0..20 {
            let (_, p) = api.admin("GET", &format!("/Patient/repro-{n}"), None).await;
            assert_eq!(p["name"][0]["family"], format!("Repro{n}"), "{}", b.name);
        }
        let (_, shared) = api.admin("GET", "/Patient/shared", None).await;
        assert_eq!(shared["meta"]["versionId"], "20", "{}: {shared}", b.name);
    }
}

/// Issue 10, item 6: parallel conditional creates with the same If-None-Exist make exactly one
/// resource; the others get 200 and that resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_conditional_creates_make_one_resource() {
    for b in common::backends().await {
        let api = Api::new(&b.store).await;
        let mut tasks = Vec::new();
        for n in 0..10 {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let mut p = patient(&format!("Twin{n}"));
                p["identifier"] = json!([{"system": "http://hospital.example/mrn", "value": "42"}]);
                let condition = [("if-none-exist", "identifier=http://hospital.example/mrn|42")];
                let (status, _, body) = api
                    .call("POST", "/Patient", Some(&api.admin), Some(p), &condition)
                    .await;
                (status, body)
            }));
        }
        let mut created = 0;
        let mut ids = std::collections::HashSet::new();
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                StatusCode::CREATED => created += 1,
                StatusCode::OK => {}
                other => panic!("{}: {other} {body}", b.name),
            }
            ids.insert(body["id"].as_str().expect("the resource").to_string());
        }
        assert_eq!(created, 1, "{}", b.name);
        assert_eq!(ids.len(), 1, "{}: {ids:?}", b.name);
        assert_eq!(api.count("Patient").await, 1, "{}", b.name);
    }
}

/// Issue 10, item 8: clients cannot write AuditEvents, patient-scoped tokens cannot read the
/// access log, and refused requests are recorded with a failure outcome.
#[tokio::test]
async fn audit_trail_is_written_by_the_server_only() {
    for b in common::backends().await {
        let n = b.name;
        let api = Api::new(&b.store).await;
        let writer = b
            .store
            .create_token("writer", "user/*.write", None, None)
            .await
            .unwrap();
        let forged = json!({"resourceType": "AuditEvent",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "action": "R", "recorded": "2001-01-01T00:00:00Z", "outcome": "0",
            "agent": [{"who": {"display": "dr-someone-else"}, "requestor": true}],
            "source": {"observer": {"display": "elsewhere"}}});
        let (status, _, body) = api
            .call(
                "POST",
                "/AuditEvent",
                Some(&writer),
                Some(forged.clone()),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{n}: {body}");
        let mut with_id = forged.clone();
        with_id["id"] = json!("forged");
        let (status, _, _) = api
            .call(
                "PUT",
                "/AuditEvent/forged",
                Some(&writer),
                Some(with_id),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{n}");
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": forged, "request": {"method": "POST", "url": "AuditEvent"}}]});
        let (status, _, _) = api
            .call("POST", "/", Some(&writer), Some(bundle), &[])
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{n}");
        let (status, _, _) = api.call("GET", "/Patient", None, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (_, a) = api.admin("POST", "/Patient", Some(patient("Alpha"))).await;
        let (_, z) = api.admin("POST", "/Patient", Some(patient("Zulu"))).await;
        let (a, z) = (a["id"].as_str().unwrap(), z["id"].as_str().unwrap());
        let app = b
            .store
            .create_token("app", "patient/*.read", Some(a), None)
            .await
            .unwrap();
        for uri in [
            "/AuditEvent".to_string(),
            format!("/Patient/{a}/AuditEvent"),
        ] {
            let (status, _, body) = api.call("GET", &uri, Some(&app), None, &[]).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{n} {uri}: {body}");
        }
        let (status, _, _) = api
            .call("GET", &format!("/Patient/{z}"), Some(&app), None, &[])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let events = audit_events(&api).await;
        assert!(
            events
                .iter()
                .all(|e| e["recorded"] != "2001-01-01T00:00:00Z"
                    && e["agent"][0]["who"]["display"] != "dr-someone-else"),
            "{n}: a client wrote an AuditEvent"
        );
        let refused = |who: &str, interaction: &str| {
            events.iter().any(|e| {
                e["outcome"] == "4"
                    && e["agent"][0]["who"]["display"] == who
                    && e["subtype"][0]["code"] == interaction
            })
        };
        assert!(
            refused("writer", "create"),
            "{n}: refused create not recorded"
        );
        assert!(refused("writer", "update"), "{n}");
        assert!(refused("unauthenticated", "search-type"), "{n}");
        assert!(refused("app", "search-type"), "{n}");
        assert!(
            events.iter().any(|e| e["outcome"] == "4"
                && e["agent"][0]["who"]["display"] == "app"
                && e["entity"][0]["what"]["reference"] == format!("Patient/{z}")),
            "{n}: refused read of Patient/{z} not recorded"
        );
    }
}

/// Issue 10, item 9: NUL characters in a resource or a search are the client's error (400 with
/// an OperationOutcome naming the element), never a database error.
#[tokio::test]
async fn nul_characters_are_refused_with_an_outcome() {
    for b in common::backends().await {
        let n = b.name;
        let api = Api::new(&b.store).await;
        let (status, body) = api
            .admin("POST", "/Patient", Some(patient("Nu\u{0}ll")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {body}");
        assert_eq!(body["issue"][0]["expression"][0], "Patient.name[0].family");
        let (_, p) = api.admin("POST", "/Patient", Some(patient("Plain"))).await;
        let id = p["id"].as_str().unwrap();
        for uri in [
            "/Patient?name=%00".to_string(),
            "/Patient?fam%00ily=x".to_string(),
            format!("/Patient/{id}/Observation?code=a%00b"),
        ] {
            let (status, body) = api.admin("GET", &uri, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{n} {uri}: {body}");
            assert!(outcome_says(&body, "NUL"), "{n} {uri}: {body}");
        }
        let (status, body) = api.admin("GET", "/Patient/a%00b", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{n}: {body}");
        let mut updated = patient("Plain");
        updated["id"] = json!(id);
        updated["extension"] = json!([{"url": "http://example.org/x", "valueString": "\u{0}"}]);
        let (status, body) = api
            .admin("PUT", &format!("/Patient/{id}"), Some(updated))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {body}");
        assert_eq!(api.count("Patient").await, 1, "{n}");
    }
}

/// Issue 10, item 12: element types are checked against the R4 definitions.
#[tokio::test]
async fn elements_of_the_wrong_type_are_refused() {
    for b in common::backends().await {
        let n = b.name;
        let api = Api::new(&b.store).await;
        let (status, body) = api
            .admin(
                "POST",
                "/Patient",
                Some(json!({"resourceType": "Patient", "name": [{"family": 1}]})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n}: {body}");
        assert_eq!(body["issue"][0]["expression"][0], "Patient.name[0].family");
        assert!(outcome_says(&body, "must be a FHIR string"), "{body}");
        assert_eq!(api.count("Patient").await, 0, "{n}");
    }
}
