//! The training gate: the only way federated training reads the EHR. A [`DatasetDefinition`]
//! is turned into a local table of numbers; patients whose active Consent denies research use
//! are left out (only their count is reported); rows are keyed by HMAC pseudonyms and their
//! dates shifted per patient, so no identifier, name or real date enters the table.

mod consent;
mod definition;
mod pseudonym;
mod text;

use std::collections::{HashMap, HashSet};

use serde_json::Value as Json;

pub use consent::{Purpose, default_research_purposes, denying_patient};
pub use definition::{Code, DatasetDefinition, Feature, Label, Source, Split, Value};
pub use pseudonym::{MAX_SHIFT_DAYS, PseudonymKey};
pub use text::{
    TaggerRows, TextCounts, TextDataset, TextDocument, TextKind, build_tagger_rows,
    build_text_dataset, build_text_dataset_with,
};

/// The languages the text gate de-identifies (its rules: `deid::text`).
pub use deid::text::Lang as TextLang;

use crate::datetime;
use crate::error::{Error, Result};
use crate::search::SearchRequest;
use crate::search::request::Total;
use crate::store::{Store, Version};

/// Which part of the split a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Training rows.
    Train,
    /// Test rows.
    Test,
}

/// One row of the training table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The patient's keyed pseudonym.
    pub pseudonym: String,
    /// Train or test.
    pub part: Part,
    /// Feature values, in the definition's order.
    pub features: Vec<f32>,
    /// The label, 0 or 1.
    pub label: f32,
    /// The latest date among the row's source resources, shifted by the patient's offset.
    pub index_date: Option<String>,
}

/// The training table of one node. Rows are in the order the patients were first registered
/// in the EHR.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingTable {
    /// Column names.
    pub feature_names: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
    /// Patients of the dataset left out because their Consent denies research use.
    pub excluded: usize,
    /// Patients of the dataset left out because a feature or the label is missing.
    pub incomplete: usize,
}

impl TrainingTable {
    /// The train and test rows as `learn` datasets.
    pub fn datasets(&self) -> Result<(learn::Dataset, learn::Dataset)> {
        let part = |which: Part| {
            let rows = self.rows.iter().filter(|r| r.part == which);
            let x: Vec<f32> = rows
                .clone()
                .flat_map(|r| r.features.iter().copied())
                .collect();
            let y: Vec<f32> = rows.map(|r| r.label).collect();
            learn::Dataset::new(self.feature_names.len(), x, y)
                .map_err(|e| Error::Dataset(e.to_string()))
        };
        Ok((part(Part::Train)?, part(Part::Test)?))
    }
}

/// The table and datasets a node trains on.
#[derive(Clone, Debug, PartialEq)]
pub struct GatedDataset {
    /// Training rows.
    pub train: learn::Dataset,
    /// Test rows.
    pub test: learn::Dataset,
    /// Patients excluded by consent (a count, never who).
    pub excluded: usize,
    /// Patients left out for missing data.
    pub incomplete: usize,
}

/// A feature or label value with the date it was observed.
#[derive(Clone, Copy)]
struct Observed {
    value: f32,
    date: Option<i64>,
}

/// Builds the training table of `definition` from `store`, at time `now` (for consent periods).
pub async fn build_table(
    store: &Store,
    definition: &DatasetDefinition,
    key: &PseudonymKey,
    now: i64,
) -> Result<TrainingTable> {
    let denied = denied_patients(store, &definition.research_purposes, now).await?;
    let mut columns: Vec<HashMap<String, Observed>> = Vec::new();
    for feature in &definition.features {
        columns.push(match &feature.source {
            Source::Observation { code, value } => observation_values(store, code, value).await?,
            Source::Gender { .. } => HashMap::new(),
        });
    }
    let labels = condition_labels(store, &definition.label.condition).await?;
    let mut table = TrainingTable {
        feature_names: definition.feature_names(),
        rows: Vec::new(),
        excluded: 0,
        incomplete: 0,
    };
    let mut used = Vec::new();
    for patient in store.patients_in_registration_order().await? {
        let resource: Json = parse(&patient)?;
        let Some(part) = split_of(&resource, &definition.split) else {
            continue;
        };
        if denied.contains(&patient.id) {
            table.excluded += 1;
            continue;
        }
        let mut features = Vec::with_capacity(definition.features.len());
        let mut latest: Option<i64> = None;
        for (feature, column) in definition.features.iter().zip(&columns) {
            let observed = match &feature.source {
                Source::Gender { male, female } => {
                    match resource.get("gender").and_then(Json::as_str) {
                        Some("male") => Some(Observed {
                            value: *male,
                            date: None,
                        }),
                        Some("female") => Some(Observed {
                            value: *female,
                            date: None,
                        }),
                        _ => None,
                    }
                }
                Source::Observation { .. } => column.get(&patient.id).copied(),
            };
            let Some(observed) = observed else { break };
            latest = latest.max(observed.date);
            features.push(observed.value);
        }
        let label = labels.get(&patient.id).copied();
        let (Some(label), true) = (label, features.len() == definition.features.len()) else {
            table.incomplete += 1;
            continue;
        };
        latest = latest.max(label.date);
        let index_date = latest
            .map(|micros| {
                datetime::shift_days(
                    &datetime::format_instant(micros)[..10],
                    key.date_shift_days(&patient.id),
                )
            })
            .transpose()?;
        used.push(patient.id.clone());
        table.rows.push(Row {
            pseudonym: key.pseudonym(&patient.id),
            part,
            features,
            label: label.value,
            index_date,
        });
    }
    record_use(store, definition, used, &table, now).await?;
    Ok(table)
}

/// Writes the AuditEvent of a dataset build: which patients' records were read (in the EHR's
/// own log; the table itself never names them), for what, and how many were left out.
async fn record_use(
    store: &Store,
    definition: &DatasetDefinition,
    used: Vec<String>,
    table: &TrainingTable,
    now: i64,
) -> Result<()> {
    let description = format!(
        "training table {}: {} rows, {} patients excluded by consent, {} incomplete",
        definition.name,
        table.rows.len(),
        table.excluded,
        table.incomplete
    );
    record_read(store, used, description, now).await
}

/// Writes the AuditEvent of a read by the gate: whose records were read and what came out.
async fn record_read(
    store: &Store,
    used: Vec<String>,
    description: String,
    now: i64,
) -> Result<()> {
    let principal = crate::auth::Principal {
        name: "training-gate".to_string(),
        scopes: Vec::new(),
        patient: None,
    };
    let access = crate::audit::Access {
        principal: &principal,
        address: None,
        action: crate::audit::Action::Read,
        interaction: "operation",
        resources: Vec::new(),
        patients: used,
        query: None,
        success: true,
        description: Some(description),
    };
    let mut tx = store.begin().await?;
    tx.create(crate::audit::audit_event(
        &access,
        "cohort-ehr training gate",
        now,
    ))
    .await?;
    tx.commit().await
}

/// Builds the table and returns it as `learn` datasets with the counts.
pub async fn build_dataset(
    store: &Store,
    definition: &DatasetDefinition,
    key: &PseudonymKey,
    now: i64,
) -> Result<GatedDataset> {
    let table = build_table(store, definition, key, now).await?;
    let (train, test) = table.datasets()?;
    Ok(GatedDataset {
        train,
        test,
        excluded: table.excluded,
        incomplete: table.incomplete,
    })
}

fn parse(version: &Version) -> Result<Json> {
    let text = version.content.as_deref().unwrap_or("null");
    serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("{}/{}: {e}", version.resource_type, version.id)))
}

fn split_of(patient: &Json, split: &Split) -> Option<Part> {
    let tags = patient.get("meta")?.get("tag")?.as_array()?;
    tags.iter().find_map(|tag| {
        if tag.get("system").and_then(Json::as_str) != Some(split.system.as_str()) {
            return None;
        }
        match tag.get("code").and_then(Json::as_str) {
            Some(c) if c == split.train => Some(Part::Train),
            Some(c) if c == split.test => Some(Part::Test),
            _ => None,
        }
    })
}

/// Every live resource of `resource_type`, parsed, in write order: for the node's own joins
/// over its record (e.g. a note's encounter), never for anything that leaves it.
///
/// # Errors
/// The store's, or a stored resource that is not JSON.
pub async fn all_resources(store: &Store, resource_type: &str) -> Result<Vec<Json>> {
    all_matching(store, resource_type, &[])
        .await?
        .iter()
        .map(parse)
        .collect()
}

/// Every live resource of `resource_type` matching `criteria`, in write order.
async fn all_matching(
    store: &Store,
    resource_type: &str,
    criteria: &[(String, String)],
) -> Result<Vec<Version>> {
    let mut request = SearchRequest::parse(resource_type, criteria)?;
    request.count = usize::MAX / 2;
    request.total = Total::None;
    Ok(store.search(&request, None).await?.matches)
}

/// The patients whose active Consent denies `purposes` at time `now`.
async fn denied_patients(store: &Store, purposes: &[Purpose], now: i64) -> Result<HashSet<String>> {
    let consents = all_matching(store, "Consent", &[("status".into(), "active".into())]).await?;
    let mut denied = HashSet::new();
    for consent in &consents {
        if let Some(patient) = denying_patient(&parse(consent)?, purposes, now) {
            denied.insert(patient);
        }
    }
    Ok(denied)
}

fn subject_patient(resource: &Json) -> Option<String> {
    resource
        .get("subject")?
        .get("reference")?
        .as_str()?
        .strip_prefix("Patient/")
        .map(str::to_string)
}

fn effective(resource: &Json, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| {
        let v = resource.get(*k)?;
        let text = v
            .as_str()
            .or_else(|| v.get("start").and_then(Json::as_str))?;
        datetime::parse_range(text).ok().map(|r| r.start)
    })
}

/// Each patient's latest final Observation with `code`, turned into a number by `rule`.
async fn observation_values(
    store: &Store,
    code: &Code,
    rule: &Value,
) -> Result<HashMap<String, Observed>> {
    let criteria = vec![
        ("code".to_string(), format!("{}|{}", code.system, code.code)),
        ("status".to_string(), "final,amended,corrected".to_string()),
    ];
    let mut values: HashMap<String, Observed> = HashMap::new();
    for version in all_matching(store, "Observation", &criteria).await? {
        let resource = parse(&version)?;
        let Some(patient) = subject_patient(&resource) else {
            continue;
        };
        let Some(value) = observation_value(&resource, rule) else {
            continue;
        };
        let date = effective(
            &resource,
            &[
                "effectiveDateTime",
                "effectivePeriod",
                "effectiveInstant",
                "issued",
            ],
        );
        let newer = values.get(&patient).is_none_or(|old| old.date <= date);
        if newer {
            values.insert(patient, Observed { value, date });
        }
    }
    Ok(values)
}

fn observation_value(resource: &Json, rule: &Value) -> Option<f32> {
    let quantity = resource.get("valueQuantity");
    let number = quantity
        .and_then(|q| q.get("value"))
        .or_else(|| resource.get("valueInteger"))
        .and_then(Json::as_f64);
    let comparator = quantity
        .and_then(|q| q.get("comparator"))
        .and_then(Json::as_str);
    match rule {
        Value::Number => (comparator.is_none()).then_some(number?).map(|v| v as f32),
        Value::Boolean => resource
            .get("valueBoolean")
            .and_then(Json::as_bool)
            .map(|b| if b { 1.0 } else { 0.0 }),
        Value::Equals { system, code } => {
            let codings = resource
                .get("valueCodeableConcept")?
                .get("coding")?
                .as_array()?;
            let hit = codings.iter().any(|c| {
                c.get("system").and_then(Json::as_str) == Some(system.as_str())
                    && c.get("code").and_then(Json::as_str) == Some(code.as_str())
            });
            Some(if hit { 1.0 } else { 0.0 })
        }
        Value::Above { threshold } => {
            let v = number?;
            let above = match comparator {
                None => v > *threshold,
                Some(">") if v >= *threshold => true,
                Some(">=") if v > *threshold => true,
                Some("<=") if v <= *threshold => false,
                Some("<") if v <= *threshold => false,
                _ => return None,
            };
            Some(if above { 1.0 } else { 0.0 })
        }
    }
}

/// Each patient's label from their latest confirmed or refuted Condition with `code`.
async fn condition_labels(store: &Store, code: &Code) -> Result<HashMap<String, Observed>> {
    let criteria = vec![("code".to_string(), format!("{}|{}", code.system, code.code))];
    let mut labels: HashMap<String, Observed> = HashMap::new();
    for version in all_matching(store, "Condition", &criteria).await? {
        let resource = parse(&version)?;
        let Some(patient) = subject_patient(&resource) else {
            continue;
        };
        let status = resource
            .get("verificationStatus")
            .and_then(|s| s.get("coding"))
            .and_then(Json::as_array)
            .and_then(|c| c.iter().find_map(|c| c.get("code").and_then(Json::as_str)));
        let value = match status {
            Some("confirmed") => 1.0,
            Some("refuted") => 0.0,
            _ => continue,
        };
        let date = effective(&resource, &["onsetDateTime", "onsetPeriod", "recordedDate"]);
        if labels.get(&patient).is_none_or(|old| old.date <= date) {
            labels.insert(patient, Observed { value, date });
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn threshold_rule_understands_comparators() {
        let rule = Value::Above { threshold: 120.0 };
        let obs = |q: Json| json!({"valueQuantity": q});
        assert_eq!(
            observation_value(&obs(json!({"value": 120, "comparator": ">"})), &rule),
            Some(1.0)
        );
        assert_eq!(
            observation_value(&obs(json!({"value": 120, "comparator": "<="})), &rule),
            Some(0.0)
        );
        assert_eq!(
            observation_value(&obs(json!({"value": 130})), &rule),
            Some(1.0)
        );
        assert_eq!(
            observation_value(&obs(json!({"value": 100, "comparator": ">"})), &rule),
            None
        );
        assert_eq!(
            observation_value(&obs(json!({"value": 5, "comparator": "<"})), &Value::Number),
            None
        );
    }
}
