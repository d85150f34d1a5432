//! Consent management: the patients' Consent resources, which of them keep a
//! patient out of training (as the training gate reads them), recording a
//! research refusal or permission, and withdrawing or restoring one.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use ehr::audit::Action;
use ehr::auth::Interaction;
use ehr::gate::{default_research_purposes, denying_patient};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{self, ClientAddress, View, require};
use super::patients::{concept, name, read_patient};
use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};

const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// What a Consent decides: its provision's type and purposes.
pub(super) fn decision(consent: &Value) -> Markup {
    let provision = &consent["provision"];
    let purposes: Vec<&str> = provision["purpose"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["display"].as_str().or_else(|| p["code"].as_str()))
        .collect();
    html! {
        (provision["type"].as_str().unwrap_or("(no provision)"))
        @if !purposes.is_empty() { " for " (purposes.join(", ")) }
    }
}

/// Every Consent, with its patient and whether it keeps them out of training.
pub(super) async fn list(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
) -> Page {
    require(&viewer, "Consent", Interaction::Search)?;
    let consents = access::search(
        &s,
        &viewer,
        "Consent",
        &[("_count", "200"), ("_sort", "-date")],
    )
    .await?;
    let mut patients: Vec<String> = consents
        .iter()
        .filter_map(|c| access::patient_id(c.get("patient")))
        .map(str::to_string)
        .collect();
    patients.sort();
    patients.dedup();
    let names: Vec<Value> = if patients.is_empty() {
        Vec::new()
    } else {
        let ids = patients.join(",");
        access::search(
            &s,
            &viewer,
            "Patient",
            &[("_id", ids.as_str()), ("_count", "200")],
        )
        .await?
    };
    let name_of = |id: &str| {
        names
            .iter()
            .find(|p| p["id"] == id)
            .map_or_else(|| format!("Patient/{id}"), name)
    };
    let mut resources = vec!["Consent".to_string()];
    resources.extend(
        consents
            .iter()
            .filter_map(|c| c["id"].as_str())
            .map(|id| format!("Consent/{id}")),
    );
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "search-type",
            resources,
            patients,
            query: Some("_sort=-date"),
            page: "consent management",
        },
    )
    .await?;
    let purposes = default_research_purposes();
    let now = ehr::datetime::now_micros();
    let can_write = access::may(&viewer, "Consent", Interaction::Update);
    let body = html! {
        p { "A patient with an active Consent that denies research use is left out of every \
             training table this node builds (the training gate reads these resources)." }
        table #consents {
            thead { tr {
                th scope="col" { "Patient" } th scope="col" { "Status" } th scope="col" { "Scope" }
                th scope="col" { "Decision" } th scope="col" { "Recorded" }
                th scope="col" { "Left out of training" }
                @if can_write { th scope="col" { "Change" } }
            } }
            tbody {
                @for c in &consents {
                    @let id = c["id"].as_str().unwrap_or_default();
                    @let patient = access::patient_id(c.get("patient")).unwrap_or_default();
                    @let excluded = denying_patient(c, &purposes, now).is_some();
                    @let active = c["status"] == "active";
                    tr {
                        th scope="row" { a href={ "/patients/" (patient) } { (name_of(patient)) } }
                        td { (c["status"].as_str().unwrap_or_default()) }
                        td { (concept(&c["scope"])) }
                        td { (decision(c)) }
                        td { (c["dateTime"].as_str().unwrap_or_default()) }
                        td { @if excluded { strong { "yes" } } @else { "no" } }
                        @if can_write {
                            td { form method="post" action={ "/consent/" (id) "/status" } {
                                (viewer.csrf_field())
                                input type="hidden" name="status" value=(if active { "inactive" } else { "active" });
                                button type="submit" { @if active { "Withdraw" } @else { "Make active" } }
                            } }
                        }
                    }
                }
            }
        }
        @if can_write {
            h2 { "Record a patient's decision on research use" }
            form.stack method="post" action="/consent" {
                (viewer.csrf_field())
                label for="patient" { "Patient id" }
                input #patient type="text" name="patient" required pattern="[A-Za-z0-9.\\-]{1,64}";
                fieldset {
                    legend { "Research use of their data, model training included" }
                    label { input type="radio" name="decision" value="deny" checked; " refused" }
                    label { input type="radio" name="decision" value="permit"; " permitted" }
                }
                button type="submit" { "Record" }
            }
        }
    };
    Ok(viewer.page("Consent", body))
}

#[derive(Deserialize)]
pub(super) struct NewConsent {
    csrf: String,
    patient: String,
    decision: String,
}

/// A research-use Consent of `patient`: `deny` or `permit`, active, now.
fn research_consent(patient: &str, permit: bool, recorded: &str, by: &str) -> Value {
    let purposes: Vec<Value> = ["HRESCH", "MLTRAINING"]
        .iter()
        .map(|code| json!({"system": ACT_REASON, "code": code}))
        .collect();
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research", "display": "Research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8", "display": "Privacy policy acknowledgement Document"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": recorded,
        "policyRule": {"text": "the hospital's policy on research use of health data"},
        "organization": [{"display": by}],
        "provision": {"type": if permit { "permit" } else { "deny" }, "purpose": purposes},
    })
}

fn back_to_list() -> axum::response::Response {
    (StatusCode::SEE_OTHER, [(LOCATION, "/consent")]).into_response()
}

fn refuse_form(viewer: &Viewer, why: &str) -> Refused {
    let page = viewer.page(
        "Not recorded",
        html! { p.error role="alert" { (why) } p { a href="/consent" { "Back to consents" } } },
    );
    (StatusCode::BAD_REQUEST, page).into_response().into()
}

/// Record a new research-use decision.
pub(super) async fn record(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Form(form): Form<NewConsent>,
) -> Page {
    require(&viewer, "Consent", Interaction::Create)?;
    viewer.check_csrf(&form.csrf)?;
    let permit = match form.decision.as_str() {
        "permit" => true,
        "deny" => false,
        _ => {
            return Err(refuse_form(
                &viewer,
                "The decision must be refused or permitted.",
            ));
        }
    };
    let patient = form.patient.trim();
    read_patient(&s, &viewer, patient).await?;
    let hospital = s.console.hospital.clone();
    let created = async {
        let mut tx = s.console.ehr.begin().await?;
        let recorded = ehr::datetime::format_instant(tx.now());
        let written = tx
            .create(research_consent(patient, permit, &recorded, &hospital))
            .await?;
        tx.commit().await.map(|_| written.id)
    }
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "console: consent not recorded");
        access::unavailable(&viewer, "the Consent could not be written to the EHR")
    })?;
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Create,
            interaction: "create",
            resources: vec![format!("Consent/{created}")],
            patients: vec![patient.to_string()],
            query: None,
            page: "consent recorded",
        },
    )
    .await?;
    Ok(back_to_list())
}

#[derive(Deserialize)]
pub(super) struct NewStatus {
    csrf: String,
    status: String,
}

/// Withdraw (`inactive`) or restore (`active`) a Consent.
pub(super) async fn set_status(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path(id): Path<String>,
    Form(form): Form<NewStatus>,
) -> Page {
    require(&viewer, "Consent", Interaction::Update)?;
    viewer.check_csrf(&form.csrf)?;
    if !matches!(form.status.as_str(), "active" | "inactive") || !ehr::types::is_valid_id(&id) {
        return Err(refuse_form(
            &viewer,
            "A Consent can be made active or inactive.",
        ));
    }
    let updated = async {
        let mut tx = s.console.ehr.begin().await?;
        let Some(current) = tx.current("Consent", &id).await? else {
            return Ok(None);
        };
        let Some(mut consent) = current
            .content
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
        else {
            return Ok(None);
        };
        consent["status"] = json!(form.status);
        tx.update("Consent", &id, consent.clone(), Some(current.version))
            .await?;
        tx.commit().await.map(|_| Some(consent))
    }
    .await
    .map_err(|e: ehr::Error| {
        tracing::error!(error = %e, "console: consent not updated");
        access::unavailable(&viewer, "the Consent could not be updated in the EHR")
    })?;
    let Some(consent) = updated else {
        return Err(refuse_form(&viewer, "No such Consent."));
    };
    let patient = access::patient_id(consent.get("patient"))
        .unwrap_or_default()
        .to_string();
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Update,
            interaction: "update",
            resources: vec![format!("Consent/{id}")],
            patients: vec![patient],
            query: None,
            page: "consent status changed",
        },
    )
    .await?;
    Ok(back_to_list())
}
