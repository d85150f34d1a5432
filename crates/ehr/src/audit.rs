//! The access log: an AuditEvent (FHIR R4, after the IHE BALP pattern) for every read or write
//! of patient data: who (the token's name), what (the patients and resources), when, from where
//! (the client's address), and how it ended.

use base64::Engine;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::datetime;

/// The kind of access, as an AuditEvent action code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create.
    Create,
    /// Read, vread, search, history, export.
    Read,
    /// Update.
    Update,
    /// Delete.
    Delete,
    /// An operation or a transaction that does several things.
    Execute,
}

impl Action {
    fn code(self) -> &'static str {
        match self {
            Action::Create => "C",
            Action::Read => "R",
            Action::Update => "U",
            Action::Delete => "D",
            Action::Execute => "E",
        }
    }
}

/// One access to record.
#[derive(Clone, Debug)]
pub struct Access<'a> {
    /// Who.
    pub principal: &'a Principal,
    /// From where (the client's IP address), if known.
    pub address: Option<&'a str>,
    /// The kind of access.
    pub action: Action,
    /// The FHIR interaction (`read`, `search-type`, `create`, `transaction`, `operation`, …).
    pub interaction: &'a str,
    /// The resources touched (`Type/id` or `Type/id/_history/v`), or whole types (`Type`).
    pub resources: Vec<String>,
    /// The patients whose data was touched (ids).
    pub patients: Vec<String>,
    /// The query, for searches.
    pub query: Option<&'a str>,
    /// False when the access was refused.
    pub success: bool,
    /// Why it was refused, or what was done.
    pub description: Option<String>,
}

/// The AuditEvent recording `access`, observed by the server named `observer`.
pub fn audit_event(access: &Access<'_>, observer: &str, now: i64) -> Value {
    let mut entities: Vec<Value> = Vec::new();
    let mut patients = access.patients.clone();
    patients.sort();
    patients.dedup();
    for patient in &patients {
        entities.push(json!({
            "what": {"reference": format!("Patient/{patient}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
        }));
    }
    for resource in &access.resources {
        let object = json!({"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"});
        if !resource.contains('/') {
            // A whole type (searches, history, export).
            entities.push(json!({"type": object, "name": resource}));
        } else if !resource.starts_with("Patient/") || resource.contains("/_history/") {
            entities.push(json!({"what": {"reference": resource}, "type": object}));
        }
    }
    if let Some(query) = access.query.filter(|q| !q.is_empty()) {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
            "query": base64::engine::general_purpose::STANDARD.encode(query),
        }));
    }
    let mut agent = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
        "who": {"identifier": {"system": "urn:cohort:ehr:token", "value": access.principal.name}, "display": access.principal.name},
        "requestor": true,
    });
    if let Some(address) = access.address {
        agent["network"] = json!({"address": address, "type": "2"});
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": access.interaction}],
        "action": access.action.code(),
        "recorded": datetime::format_instant(now),
        "outcome": if access.success { "0" } else { "4" },
        "agent": [agent],
        "source": {
            "observer": {"display": observer},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
    });
    if let Some(description) = &access.description {
        event["outcomeDesc"] = json!(description);
    }
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_who_what_when_and_where_and_validates() {
        let principal = Principal {
            name: "dr-house".into(),
            scopes: vec![],
            patient: None,
        };
        let access = Access {
            principal: &principal,
            address: Some("10.1.2.3"),
            action: Action::Read,
            interaction: "search-type",
            resources: vec!["Observation/o1".into()],
            patients: vec!["p2".into(), "p1".into(), "p2".into()],
            query: Some("code=8480-6"),
            success: true,
            description: None,
        };
        let event = audit_event(&access, "cohort-ehr", 0);
        assert_eq!(event["agent"][0]["who"]["display"], "dr-house");
        assert_eq!(event["agent"][0]["network"]["address"], "10.1.2.3");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(event["entity"][1]["what"]["reference"], "Patient/p2");
        assert_eq!(event["entity"][2]["what"]["reference"], "Observation/o1");
        assert_eq!(event["recorded"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            crate::validate::validate(&event, None).unwrap(),
            "AuditEvent"
        );
    }
}
