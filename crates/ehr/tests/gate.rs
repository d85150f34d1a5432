//! The training gate on the UCI Heart Disease records loaded as FHIR: the same table as
//! `learn::heart`, consent honoured, no identifier in the output.

mod common;

use ehr::gate::{self, PseudonymKey};
use ehr::heart;
use ehr::{Store, datetime};
use serde_json::{Value, json};

const SPLIT_CSV: &str = include_str!("../../../data/heart-disease/flamby-split.csv");
/// The text of centre `index`'s data file.
fn data_file(index: usize) -> String {
    let name = learn::heart::CENTRES[index];
    let path = format!(
        "{}/../../data/heart-disease/processed.{name}.data",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Fed-Heart-Disease table of `store`, pseudonymised with `key`.
async fn heart_table(store: &Store, key: &PseudonymKey) -> gate::TrainingTable {
    gate::build_table(
        store,
        &heart::definition().unwrap(),
        key,
        datetime::now_micros(),
    )
    .await
    .unwrap()
}

async fn put(store: &Store, resource: Value) {
    let mut tx = store.begin().await.unwrap();
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_string(),
        resource["id"].as_str().unwrap().to_string(),
    );
    tx.update(&t, &id, resource, None).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn heart_table_through_the_gate_equals_the_csv_table_for_every_centre() {
    for b in common::backends().await {
        for (index, centre) in learn::heart::CENTRES.iter().enumerate() {
            let file = &data_file(index);
            let store = if b.name == "sqlite" {
                common::sqlite().await
            } else {
                common::postgres().await.unwrap()
            };
            heart::load_centre(&store.store, centre, file, SPLIT_CSV)
                .await
                .unwrap();
            let gated = heart::heart_dataset(&store.store).await.unwrap();
            let expected = learn::heart::load_centre(index, file, SPLIT_CSV).unwrap();
            assert_eq!(gated.train, expected.train, "{} {centre} train", b.name);
            assert_eq!(gated.test, expected.test, "{} {centre} test", b.name);
            assert_eq!(gated.excluded, 0);
        }
    }
}

#[tokio::test]
async fn loading_a_centre_twice_changes_nothing() {
    let b = common::sqlite().await;
    heart::load_centre(&b.store, "switzerland", &data_file(2), SPLIT_CSV)
        .await
        .unwrap();
    let before = b.store.counts().await.unwrap();
    heart::load_centre(&b.store, "switzerland", &data_file(2), SPLIT_CSV)
        .await
        .unwrap();
    assert_eq!(b.store.counts().await.unwrap(), before);
    let gated = heart::heart_dataset(&b.store).await.unwrap();
    assert_eq!((gated.train.len(), gated.test.len()), (30, 16));
}

fn research_opt_out(patient: &str) -> Value {
    json!({
        "resourceType": "Consent", "id": format!("optout-{patient}"), "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": "2026-01-01",
        "provision": {"type": "deny", "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "MLTRAINING"}]}
    })
}

#[tokio::test]
async fn patient_who_opts_out_is_absent_and_only_counted() {
    for b in common::backends().await {
        heart::load_centre(&b.store, "cleveland", &data_file(0), SPLIT_CSV)
            .await
            .unwrap();
        // Line 1 is the first training row; line 3 the first test row... whatever they are,
        // they disappear and the rest stays in order.
        put(&b.store, research_opt_out("uci-cleveland-1")).await;
        let mut inactive = research_opt_out("uci-cleveland-2");
        inactive["status"] = json!("inactive");
        put(&b.store, inactive).await;
        let gated = heart::heart_dataset(&b.store).await.unwrap();
        let full = learn::heart::load_centre(0, &data_file(0), SPLIT_CSV).unwrap();
        assert_eq!(gated.excluded, 1, "{}", b.name);
        assert_eq!(gated.train.len(), full.train.len() - 1);
        assert_eq!(
            gated.train.x[..],
            full.train.x[13..],
            "{}: the opted-out row is gone, the rest in order",
            b.name
        );
        assert_eq!(gated.test, full.test);
        // The EHR's own log records whose records the build read; the opted-out patient's
        // were not.
        let read_by_gate = |patient: &str| {
            let pairs = vec![("patient".to_string(), patient.to_string())];
            let request = ehr::search::SearchRequest::parse("AuditEvent", &pairs).unwrap();
            let store = b.store.clone();
            async move { store.search(&request, None).await.unwrap().matches.len() }
        };
        assert_eq!(read_by_gate("uci-cleveland-3").await, 1, "{}", b.name);
        assert_eq!(read_by_gate("uci-cleveland-1").await, 0, "{}", b.name);
    }
}

#[tokio::test]
async fn canary_name_and_identifier_never_reach_the_table() {
    for b in common::backends().await {
        heart::load_centre(&b.store, "cleveland", &data_file(0), SPLIT_CSV)
            .await
            .unwrap();
        let mut tx = b.store.begin().await.unwrap();
        let id = "uci-cleveland-5";
        let current: Value =
            serde_json::from_str(&b.store.read("Patient", id).await.unwrap().content.unwrap())
                .unwrap();
        let mut canary = current.clone();
        canary["name"] = json!([{"family": "CANARYFAMILY", "given": ["Zebulon"]}]);
        canary["identifier"] = json!([{"system": "urn:oid:1.2.3", "value": "CANARY-ID-4242"}]);
        canary["birthDate"] = json!("1931-07-04");
        tx.update("Patient", id, canary, None).await.unwrap();
        tx.commit().await.unwrap();
        let key = PseudonymKey::load_or_create(&b.store).await.unwrap();
        let table = heart_table(&b.store, &key).await;
        assert_eq!(
            table.rows.len(),
            303,
            "{}: the canary patient is still a row",
            b.name
        );
        let dump = format!("{table:?}");
        for secret in [
            "CANARYFAMILY",
            "Zebulon",
            "CANARY-ID-4242",
            "1931-07-04",
            id,
            "uci-cleveland",
        ] {
            assert!(
                !dump.contains(secret),
                "{}: {secret} leaked into the table",
                b.name
            );
        }
        assert!(table.rows.iter().any(|r| r.pseudonym == key.pseudonym(id)));
    }
}

#[tokio::test]
async fn dates_in_the_table_are_shifted_per_patient() {
    let b = common::sqlite().await;
    heart::load_centre(&b.store, "switzerland", &data_file(2), SPLIT_CSV)
        .await
        .unwrap();
    let line = SPLIT_CSV
        .lines()
        .find(|l| l.contains(",switzerland,"))
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap();
    let id = &format!("uci-switzerland-{line}");
    let mut age: Value = serde_json::from_str(
        &b.store
            .read("Observation", &format!("{id}-age"))
            .await
            .unwrap()
            .content
            .unwrap(),
    )
    .unwrap();
    age["effectiveDateTime"] = json!("1988-05-17");
    put(&b.store, age).await;
    let key = PseudonymKey::from_bytes([9; 32]);
    let table = heart_table(&b.store, &key).await;
    let row = table
        .rows
        .iter()
        .find(|r| r.pseudonym == key.pseudonym(id))
        .unwrap();
    let expected = datetime::shift_days("1988-05-17", key.date_shift_days(id)).unwrap();
    assert_eq!(row.index_date.as_deref(), Some(expected.as_str()));
    assert_ne!(expected, "1988-05-17");
}
