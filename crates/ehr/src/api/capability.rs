//! `GET /metadata`: the CapabilityStatement (public: clients read it before they authenticate).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::EhrState;
use super::caller::base_url;
use super::response::{ApiResult, Fhir};
use crate::search::parameters;
use crate::types;

/// The CapabilityStatement of this server at `base`.
pub fn capability_statement(base: &str) -> Value {
    let resources: Vec<Value> = types::RESOURCE_TYPES
        .iter()
        .map(|t| {
            let mut params: Vec<Value> = vec![
                json!({"name": "_id", "type": "token"}),
                json!({"name": "_lastUpdated", "type": "date"}),
            ];
            params.extend(parameters::of_type(t).map(|p| json!({"name": p.name, "type": p.kind.fhir_name()})));
            let writable = *t != "AuditEvent";
            let mut interactions = vec!["read", "vread", "search-type", "history-instance", "history-type", "create"];
            if writable {
                interactions.extend(["update", "delete"]);
            }
            let includes: Vec<String> = parameters::of_type(t)
                .filter(|p| p.kind == parameters::Kind::Reference)
                .map(|p| format!("{t}:{}", p.name))
                .collect();
            let mut resource = json!({
                "type": t,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": writable,
                "conditionalCreate": true,
                "conditionalUpdate": writable,
                "conditionalDelete": if writable { "single" } else { "not-supported" },
                "referencePolicy": ["literal", "local", "enforced"],
                "interaction": interactions.iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
                "searchParam": params,
            });
            if !includes.is_empty() {
                resource["searchInclude"] = json!(includes);
            }
            if *t == "Patient" {
                resource["operation"] = json!([
                    {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                    {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"},
                ]);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-28",
        "kind": "instance",
        "software": {"name": "cohort ehr", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "cohort hospital node EHR", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
                "description": "Bearer tokens issued with `cohort ehr token create`, carrying SMART scopes (patient/, user/, system/; v1 .read/.write or v2 .cruds). Every access to patient data is recorded as an AuditEvent.",
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "operation": [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}],
        }],
    })
}

/// `GET /metadata`
pub async fn metadata(State(state): State<EhrState>, parts: Parts) -> ApiResult {
    Ok(Fhir::json(
        StatusCode::OK,
        &capability_statement(&base_url(&parts, &state)),
    ))
}
