//! Every resource of the Synthea fixtures comes back out exactly as it went in (server-assigned
//! id, version and lastUpdated aside; urn:uuid references resolved to the stored resources).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use ehr::bundle::{self, EntryOutcome};
use ehr::import::{self, ImportOptions};
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/synthea");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn rewrite(value: &mut Value, aliases: &HashMap<String, String>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, aliases)),
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), &*child) {
                    ("reference", Value::String(r)) if aliases.contains_key(r) => {
                        *child = Value::String(aliases[r].clone())
                    }
                    _ => rewrite(child, aliases),
                }
            }
        }
        _ => {}
    }
}

fn without_server_meta(mut resource: Value) -> Value {
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            resource.as_object_mut().unwrap().remove("meta");
        }
    }
    resource
}

#[tokio::test]
async fn every_synthea_resource_round_trips_unchanged() {
    for b in common::backends().await {
        let mut checked = 0;
        let mut types = BTreeSet::new();
        for file in fixtures() {
            let bundle: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let mut tx = b.store.begin().await.unwrap();
            // the transaction takes the resources out of what it is given
            let outcomes = bundle::transaction(&mut tx, &mut bundle.clone())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let entries = bundle["entry"].as_array().unwrap();
            let mut aliases = HashMap::new();
            for (entry, outcome) in entries.iter().zip(&outcomes) {
                let EntryOutcome::Written(w) = outcome else {
                    panic!("{outcome:?}")
                };
                aliases.insert(
                    entry["fullUrl"].as_str().unwrap().to_string(),
                    format!("{}/{}", w.resource_type, w.id),
                );
            }
            for (entry, outcome) in entries.iter().zip(&outcomes) {
                let EntryOutcome::Written(w) = outcome else {
                    unreachable!()
                };
                let mut expected = entry["resource"].clone();
                rewrite(&mut expected, &aliases);
                expected["id"] = Value::String(w.id.clone());
                let stored = b.store.read(w.resource_type, &w.id).await.unwrap();
                let actual: Value =
                    serde_json::from_str(stored.content.as_deref().unwrap()).unwrap();
                assert_eq!(actual["meta"]["versionId"], "1");
                assert_eq!(
                    without_server_meta(actual),
                    expected,
                    "{}: {} in {}",
                    b.name,
                    w.resource_type,
                    file.display()
                );
                types.insert(w.resource_type);
                checked += 1;
            }
        }
        assert!(checked > 150, "{checked}");
        assert_eq!(types.len(), 25, "{types:?}");
    }
}

#[tokio::test]
async fn import_counts_by_type_and_does_not_duplicate_reference_data() {
    for b in common::backends().await {
        let report = import::import_paths(&b.store, &fixtures(), ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(report.files, 5);
        assert_eq!(report.written["Patient"], 4, "{}", b.name);
        let counts: HashMap<String, i64> = b.store.counts().await.unwrap().into_iter().collect();
        // Organizations: one per distinct identifier across the files.
        let mut identifiers = BTreeSet::new();
        for file in fixtures() {
            let bundle: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            for e in bundle["entry"].as_array().unwrap() {
                if e["resource"]["resourceType"] == "Organization" {
                    identifiers.insert(
                        e["resource"]["identifier"][0]["value"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
            }
        }
        assert_eq!(
            counts["Organization"] as usize,
            identifiers.len(),
            "{}",
            b.name
        );
        assert_eq!(
            report.written.values().sum::<usize>() as i64,
            counts.values().sum::<i64>()
        );
        // With the generator's ids, a second import changes nothing.
        let fresh = common::sqlite().await;
        let first =
            import::import_paths(&fresh.store, &fixtures(), ImportOptions { keep_ids: true })
                .await
                .unwrap();
        let again =
            import::import_paths(&fresh.store, &fixtures(), ImportOptions { keep_ids: true })
                .await
                .unwrap();
        assert!(first.total() > 150);
        assert_eq!(again.total(), 0, "{:?}", again.written);
    }
}

/// Issue 10, item 10: importing the same files again (server-assigned ids) writes nothing.
#[tokio::test]
async fn reimporting_the_same_files_writes_nothing() {
    for b in common::backends().await {
        let first = import::import_paths(&b.store, &fixtures(), ImportOptions::default())
            .await
            .unwrap();
        let counts = b.store.counts().await.unwrap();
        let again = import::import_paths(&b.store, &fixtures(), ImportOptions::default())
            .await
            .unwrap();
        assert!(first.total() > 150, "{}", b.name);
        assert_eq!(again.total(), 0, "{}: {:?}", b.name, again.written);
        assert_eq!(
            again.existing.values().sum::<usize>(),
            first.total() + first.existing.values().sum::<usize>(),
            "{}",
            b.name
        );
        assert_eq!(b.store.counts().await.unwrap(), counts, "{}", b.name);
    }
}
