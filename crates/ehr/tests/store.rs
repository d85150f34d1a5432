//! The store on SQLite and PostgreSQL: versions, history, search, transactions.

mod common;

use ehr::bundle::{self, EntryOutcome};
use ehr::search::SearchRequest;
use ehr::{Error, Store};
use serde_json::{Value, json};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn create(store: &Store, resource: Value) -> String {
    let mut tx = store.begin().await.unwrap();
    let written = tx.create(resource).await.unwrap();
    tx.commit().await.unwrap();
    written.id
}

async fn ids(store: &Store, resource_type: &str, query: &[(&str, &str)]) -> Vec<String> {
    let request = SearchRequest::parse(resource_type, &pairs(query)).unwrap();
    let result = store.search(&request, None).await.unwrap();
    result.matches.into_iter().map(|v| v.id).collect()
}

/// A search case: type, criteria, the ids expected in order.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a String>);

fn included(result: &ehr::search::SearchResult) -> Vec<String> {
    result.included.iter().map(|v| v.id.clone()).collect()
}

/// Checks every case on `store` (of backend `backend`).
async fn check_cases(store: &Store, backend: &str, cases: Vec<Case<'_>>) {
    for (t, query, expected) in cases {
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(
            ids(store, t, &query).await,
            expected,
            "{backend}: {t}?{query:?}"
        );
    }
}

/// The ids a search includes (`_include`, `_revinclude`).
async fn included_by(store: &Store, resource_type: &str, query: &[(&str, &str)]) -> Vec<String> {
    let request = SearchRequest::parse(resource_type, &pairs(query)).unwrap();
    included(&store.search(&request, None).await.unwrap())
}

fn patient(family: &str, birth: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Ann"]}], "gender": "female",
           "birthDate": birth, "identifier": [{"system": "urn:mrn", "value": family}]})
}

#[tokio::test]
async fn every_version_is_kept_and_readable() {
    for b in common::backends().await {
        let s = &b.store;
        let id = create(s, patient("Ng", "1970-01-01")).await;
        let mut tx = s.begin().await.unwrap();
        let mut updated = patient("Ngo", "1970-01-01");
        updated["id"] = json!(id);
        let w = tx.update("Patient", &id, updated, Some(1)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(w.version, 2, "{}", b.name);
        let current: Value =
            serde_json::from_str(&s.read("Patient", &id).await.unwrap().content.unwrap()).unwrap();
        assert_eq!(current["name"][0]["family"], "Ngo");
        assert_eq!(current["meta"]["versionId"], "2");
        let v1: Value =
            serde_json::from_str(&s.vread("Patient", &id, 1).await.unwrap().content.unwrap())
                .unwrap();
        assert_eq!(v1["name"][0]["family"], "Ng");
        let mut tx = s.begin().await.unwrap();
        tx.delete("Patient", &id).await.unwrap();
        tx.commit().await.unwrap();
        assert!(
            matches!(s.read("Patient", &id).await, Err(Error::Gone(_))),
            "{}",
            b.name
        );
        let history = s
            .history(Some("Patient"), Some(&id), None, 10, 0)
            .await
            .unwrap();
        let methods: Vec<_> = history
            .versions
            .iter()
            .map(|v| (v.version, v.method.as_str()))
            .collect();
        assert_eq!(
            methods,
            vec![(3, "DELETE"), (2, "PUT"), (1, "POST")],
            "{}",
            b.name
        );
        assert!(
            ids(s, "Patient", &[("family", "ngo")]).await.is_empty(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn stale_if_match_is_refused() {
    for b in common::backends().await {
        let id = create(&b.store, patient("A", "1980")).await;
        let mut tx = b.store.begin().await.unwrap();
        let mut p = patient("B", "1980");
        p["id"] = json!(id);
        let err = tx.update("Patient", &id, p, Some(7)).await.unwrap_err();
        assert_eq!(err.status(), 412, "{}", b.name);
    }
}

#[tokio::test]
async fn search_covers_each_parameter_type() {
    for b in common::backends().await {
        let s = &b.store;
        let ann = create(s, patient("Müller", "1980-05-01")).await;
        let bob = create(s, patient("Miller", "1990-07-15")).await;
        let obs = |pid: &str, v: f64, date: &str| {
            json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "subject": {"reference": format!("Patient/{pid}")}, "effectiveDateTime": date,
            "valueQuantity": {"value": v, "system": "http://unitsofmeasure.org", "code": "mm[Hg]", "unit": "mmHg"}})
        };
        let o1 = create(s, obs(&ann, 120.0, "2024-01-10")).await;
        let o2 = create(s, obs(&bob, 150.5, "2024-03-01T10:00:00Z")).await;
        let n = b.name;
        let (ann_ref, both) = (format!("Patient/{ann}"), format!("{bob},{ann}"));
        let cases: Vec<Case> = vec![
            ("Patient", vec![("name", "mull")], vec![&ann]), // accent-insensitive prefix
            ("Patient", vec![("family:exact", "Miller")], vec![&bob]),
            ("Patient", vec![("family:contains", "ille")], vec![&bob]),
            ("Patient", vec![("birthdate", "lt1985")], vec![&ann]),
            ("Patient", vec![("birthdate", "1990-07")], vec![&bob]),
            (
                "Patient",
                vec![("identifier", "urn:mrn|Miller")],
                vec![&bob],
            ),
            ("Patient", vec![("gender:not", "female")], vec![]),
            (
                "Observation",
                vec![
                    ("code", "http://loinc.org|8480-6"),
                    ("value-quantity", "gt130"),
                ],
                vec![&o2],
            ),
            (
                "Observation",
                vec![("value-quantity", "120||mm[Hg]")],
                vec![&o1],
            ),
            ("Observation", vec![("date", "ge2024-02-01")], vec![&o2]),
            ("Observation", vec![("subject", &ann_ref)], vec![&o1]),
            ("Observation", vec![("patient", &bob)], vec![&o2]),
            (
                "Observation",
                vec![("subject:Patient.name", "miller")],
                vec![&o2],
            ),
            (
                "Patient",
                vec![("_has:Observation:patient:value-quantity", "lt130")],
                vec![&ann],
            ),
            (
                "Patient",
                vec![("_id", &both), ("_sort", "-birthdate")],
                vec![&bob, &ann],
            ),
            (
                "Observation",
                vec![("_sort", "-value-quantity")],
                vec![&o2, &o1],
            ),
            (
                "Patient",
                vec![("deceased:missing", "true"), ("_sort", "family")],
                vec![&bob, &ann],
            ),
        ];
        check_cases(s, n, cases).await;
        let request = SearchRequest::parse(
            "Observation",
            &pairs(&[("_include", "Observation:subject"), ("_count", "1")]),
        )
        .unwrap();
        let result = s.search(&request, None).await.unwrap();
        assert_eq!(result.matches.len(), 1, "{n}");
        assert!(result.more, "{n}");
        assert_eq!(result.total, Some(2), "{n}");
        assert_eq!(included(&result), vec![ann.clone()], "{n}");
        let query = [
            ("_revinclude", "Observation:subject"),
            ("_id", ann.as_str()),
        ];
        assert_eq!(
            included_by(s, "Patient", &query).await,
            vec![o1.clone()],
            "{n}"
        );

        // `patient` is `subject` narrowed to Patients, stored once under `subject`: an
        // Observation of a Location is found by `subject` but never by `patient`
        let room = create(s, json!({"resourceType": "Location", "name": "Room 4"})).await;
        let mut of_room = obs(&ann, 99.0, "2024-05-01");
        of_room["subject"]["reference"] = json!(format!("Location/{room}"));
        let o3 = create(s, of_room).await;
        let room_ref = format!("Location/{room}");
        let cases: Vec<Case> = vec![
            ("Observation", vec![("subject", &room_ref)], vec![&o3]),
            ("Observation", vec![("patient", &room_ref)], vec![]),
            ("Observation", vec![("patient", &ann)], vec![&o1]),
            ("Observation", vec![("patient:missing", "true")], vec![&o3]),
            ("Observation", vec![("patient.name", "miller")], vec![&o2]),
            (
                "Observation",
                vec![("_sort", "patient"), ("value-quantity", "gt0")],
                vec![&o1, &o2, &o3],
            ),
            (
                "Location",
                vec![("_has:Observation:patient:value-quantity", "gt0")],
                vec![],
            ),
            (
                "Location",
                vec![("_has:Observation:subject:value-quantity", "gt0")],
                vec![&room],
            ),
        ];
        check_cases(s, n, cases).await;
        let both = format!("{o1},{o3}");
        let query = [("_include", "Observation:patient"), ("_id", both.as_str())];
        assert_eq!(
            included_by(s, "Observation", &query).await,
            vec![ann.clone()],
            "{n}"
        );
        let query = [
            ("_revinclude", "Observation:patient"),
            ("_id", ann.as_str()),
        ];
        assert_eq!(
            included_by(s, "Patient", &query).await,
            vec![o1.clone()],
            "{n}"
        );
    }
}

fn transaction(entries: Value) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

#[tokio::test]
async fn transaction_resolves_local_references() {
    for b in common::backends().await {
        let mut bundle = transaction(json!([
            {"fullUrl": "urn:uuid:obs", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:pat"}}, "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:pat", "resource": patient("Lee", "2000"), "request": {"method": "POST", "url": "Patient"}},
        ]));
        let mut tx = b.store.begin().await.unwrap();
        let outcomes = bundle::transaction(&mut tx, &mut bundle).await.unwrap();
        tx.commit().await.unwrap();
        let [EntryOutcome::Written(obs), EntryOutcome::Written(pat)] = &outcomes[..] else {
            panic!("{outcomes:?}")
        };
        assert_eq!(
            obs.resource.as_ref().unwrap()["subject"]["reference"],
            format!("Patient/{}", pat.id),
            "{}",
            b.name
        );
    }
}

/// A bulk load: Bundles as parts of shared transactions, each kept or undone alone.
#[tokio::test]
async fn a_failed_bundle_in_a_group_is_undone_alone() {
    for b in common::backends().await {
        let with_observation = |family: &str, subject: &str| {
            transaction(json!([
                {"fullUrl": "urn:uuid:pat", "resource": patient(family, "2000"), "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": family}, "subject": {"reference": subject}}, "request": {"method": "POST", "url": "Observation"}},
            ]))
        };
        let mut group = ehr::store::GroupCommit::new(&b.store);
        let mut load = async |mut bundle: Value| {
            let (part, tx) = group.begin_part().await?;
            let outcome = bundle::transaction(tx, &mut bundle).await;
            let written = outcome.as_ref().map_or(0, Vec::len);
            group.end_part(part, outcome, written).await
        };
        let first = load(with_observation("First", "urn:uuid:pat"))
            .await
            .unwrap();
        let EntryOutcome::Written(first_patient) = &first[0] else {
            panic!("{first:?}")
        };
        // fails when the part ends: the reference does not resolve
        let dangling = load(with_observation("Dangling", "Patient/nobody")).await;
        assert!(
            dangling.unwrap_err().to_string().contains("Patient/nobody"),
            "{}",
            b.name
        );
        // fails inside the Bundle: an Observation without a status
        let mut invalid = with_observation("Invalid", "urn:uuid:pat");
        invalid["entry"][1]["resource"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        assert!(load(invalid).await.is_err(), "{}", b.name);
        // fails after more writes than are held back: some were sent before the failure
        let mut long = with_observation("Long", "urn:uuid:pat");
        let observation = long["entry"][1].clone();
        let entries = long["entry"].as_array_mut().unwrap();
        entries.extend(std::iter::repeat_n(observation, 1_100));
        entries.push(json!({"resource": {"resourceType": "Observation", "code": {"text": "Long"}}, "request": {"method": "POST", "url": "Observation"}}));
        let error = load(long).await.unwrap_err();
        assert!(
            error.to_string().contains("entry 1102"),
            "{}: {error}",
            b.name
        );
        // refers to a resource of an earlier part of the same transaction
        let earlier = format!("Patient/{}", first_patient.id);
        load(with_observation("Last", &earlier)).await.unwrap();
        group.finish().await.unwrap();

        let mut families: Vec<String> = Vec::new();
        for id in ids(&b.store, "Patient", &[]).await {
            let patient: Value =
                serde_json::from_str(&b.store.read("Patient", &id).await.unwrap().content.unwrap())
                    .unwrap();
            families.push(patient["name"][0]["family"].as_str().unwrap().into());
        }
        families.sort();
        assert_eq!(families, ["First", "Last"], "{}", b.name);
        // the undone parts left no index entries behind
        for family in ["Dangling", "Invalid", "Long"] {
            assert!(
                ids(&b.store, "Patient", &[("family", family)])
                    .await
                    .is_empty()
            );
            assert!(
                ids(&b.store, "Observation", &[("code:text", family)])
                    .await
                    .is_empty()
            );
        }
        let on_first = ids(&b.store, "Observation", &[("subject", earlier.as_str())]).await;
        assert_eq!(on_first.len(), 2, "{}", b.name);
    }
}

#[tokio::test]
async fn failed_transaction_changes_nothing() {
    for b in common::backends().await {
        let mut bundle = transaction(json!([
            {"resource": patient("Kept", "2000"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "code": {"text": "x"}}, "request": {"method": "POST", "url": "Observation"}},
        ]));
        let mut tx = b.store.begin().await.unwrap();
        let err = bundle::transaction(&mut tx, &mut bundle).await.unwrap_err();
        drop(tx);
        assert!(err.to_string().contains("entry 1"), "{err}");
        assert_eq!(err.status(), 400);
        assert!(ids(&b.store, "Patient", &[]).await.is_empty(), "{}", b.name);
    }
}

#[tokio::test]
async fn references_must_resolve_and_referenced_resources_cannot_be_deleted() {
    for b in common::backends().await {
        let s = &b.store;
        let mut tx = s.begin().await.unwrap();
        tx.create(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/nobody"}})).await.unwrap();
        let err = tx.commit().await.unwrap_err();
        assert!(err.to_string().contains("Patient/nobody"), "{err}");
        let pid = create(s, patient("Ref", "2000")).await;
        create(s, json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{pid}")}})).await;
        let mut tx = s.begin().await.unwrap();
        tx.delete("Patient", &pid).await.unwrap();
        let err = tx.commit().await.unwrap_err();
        assert_eq!(err.status(), 409, "{}: {err}", b.name);
        assert!(s.read("Patient", &pid).await.is_ok());
    }
}
