//! What a viewer may read on the node (the FHIR scopes of their role), the
//! AuditEvent of every page that shows patient data, and the access log.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use ehr::audit::{self, Action};
use ehr::auth::{Interaction, Principal, Scope};
use ehr::search::SearchRequest;
use maud::html;
use serde_json::Value;

use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};
use crate::roles::Role;

/// The client's IP address, when the console is served with connect info.
pub(super) struct ClientAddress(pub(super) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip().to_string()),
        ))
    }
}

/// The resource scopes of `role` (its FHIR API scopes, parsed).
pub(super) fn scopes(role: Role) -> Vec<Scope> {
    role.fhir_scopes()
        .split_whitespace()
        .filter_map(|s| Scope::parse(s).ok().flatten())
        .collect()
}

/// The viewer as the EHR's access rules see them: their name, their role's scopes.
pub(super) fn principal(viewer: &Viewer) -> Principal {
    Principal {
        name: viewer.name.clone(),
        scopes: scopes(viewer.role),
        patient: None,
    }
}

/// True when the viewer's role may do `interaction` on `resource_type`.
pub(super) fn may(viewer: &Viewer, resource_type: &str, interaction: Interaction) -> bool {
    principal(viewer).access(resource_type, interaction).is_ok()
}

/// Refuse (403 page) unless the viewer's role may do `interaction` on `resource_type`.
pub(super) fn require(
    viewer: &Viewer,
    resource_type: &str,
    interaction: Interaction,
) -> Result<(), Refused> {
    if may(viewer, resource_type, interaction) {
        return Ok(());
    }
    Err(viewer.refuse(html! {
        "The role " strong { (viewer.role.label()) } " has no FHIR scope that "
        (if matches!(interaction, Interaction::Read | Interaction::Search) { "reads " } else { "writes " })
        (resource_type) " resources, so this page is not open to it."
    }))
}

/// One page view (or change) of patient data to record.
pub(super) struct View<'a> {
    /// Create, read or update.
    pub action: Action,
    /// The FHIR interaction (`read`, `search-type`, `create`, `update`).
    pub interaction: &'a str,
    /// The resources shown (`Type/id`) or whole types searched (`Type`).
    pub resources: Vec<String>,
    /// The patients whose data the page shows.
    pub patients: Vec<String>,
    /// The search, for searches.
    pub query: Option<&'a str>,
    /// Which page.
    pub page: &'a str,
}

/// Record `view` by the viewer as an AuditEvent in the EHR; an error page
/// (and nothing shown) when it cannot be recorded.
pub(super) async fn record(
    s: &NodeState,
    viewer: &Viewer,
    address: &ClientAddress,
    view: View<'_>,
) -> Result<(), Refused> {
    let principal = principal(viewer);
    let access = audit::Access {
        principal: &principal,
        address: address.0.as_deref(),
        action: view.action,
        interaction: view.interaction,
        resources: view.resources,
        patients: view.patients,
        query: view.query,
        success: true,
        description: Some(format!("web console: {}", view.page)),
    };
    let written = async {
        let mut tx = s.console.ehr.begin_short().await?;
        let event = audit::audit_event(&access, &s.frame.site, tx.now());
        tx.create(event).await?;
        tx.commit().await
    }
    .await;
    written.map_err(|e| {
        tracing::error!(error = %e, "the console could not record a page view");
        unavailable(
            viewer,
            "the access could not be recorded in the EHR's audit log, so the page is not shown",
        )
    })
}

/// A 503 page: the EHR did not answer.
pub(super) fn unavailable(viewer: &Viewer, why: &str) -> Refused {
    let page = viewer.page(
        "Not available",
        html! { p.error role="alert" { "Not shown: " (why) "." } },
    );
    (StatusCode::SERVICE_UNAVAILABLE, page)
        .into_response()
        .into()
}

/// The resources of a search, parsed; a 503 page when the EHR fails.
pub(super) async fn search(
    s: &NodeState,
    viewer: &Viewer,
    resource_type: &str,
    criteria: &[(&str, &str)],
) -> Result<Vec<Value>, Refused> {
    let pairs: Vec<(String, String)> = criteria
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let found = async {
        let request = SearchRequest::parse(resource_type, &pairs)?;
        s.console.ehr.search(&request, None).await
    }
    .await
    .map_err(|e| {
        tracing::error!(error = %e, resource_type, "console search failed");
        unavailable(viewer, "the EHR could not be searched")
    })?;
    Ok(found
        .matches
        .iter()
        .filter_map(|v| v.content.as_deref())
        .filter_map(|c| serde_json::from_str(c).ok())
        .collect())
}

/// A `Patient/{id}` reference's id.
pub(super) fn patient_id(reference: Option<&Value>) -> Option<&str> {
    reference?
        .get("reference")?
        .as_str()?
        .strip_prefix("Patient/")
}

/// The latest AuditEvents: who reached which patients' data, how, when.
pub(super) async fn log_page(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
) -> Page {
    require(&viewer, "AuditEvent", Interaction::Search)?;
    let events = search(
        &s,
        &viewer,
        "AuditEvent",
        &[("_sort", "-date"), ("_count", "100")],
    )
    .await?;
    let mut patients: Vec<String> = events
        .iter()
        .flat_map(|e| e["entity"].as_array().into_iter().flatten())
        .filter_map(|entity| patient_id(entity.get("what")))
        .map(str::to_string)
        .collect();
    patients.sort();
    patients.dedup();
    record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "search-type",
            resources: vec!["AuditEvent".into()],
            patients,
            query: Some("_sort=-date&_count=100"),
            page: "access log",
        },
    )
    .await?;
    let body = html! {
        p { "The latest 100 accesses to patient data, newest first: through the FHIR and DICOMweb \
             APIs and through this console's pages (this view included)." }
        table #access-log {
            thead { tr {
                th scope="col" { "Recorded" } th scope="col" { "Who" } th scope="col" { "Action" }
                th scope="col" { "Interaction" } th scope="col" { "Patients" } th scope="col" { "Outcome" }
                th scope="col" { "Where" }
            } }
            tbody {
                @for e in &events {
                    tr {
                        td { (e["recorded"].as_str().unwrap_or_default()) }
                        td { (e["agent"][0]["who"]["display"].as_str().unwrap_or_default()) }
                        td { (e["action"].as_str().unwrap_or_default()) }
                        td { (e["subtype"][0]["code"].as_str().unwrap_or_default())
                            @if let Some(d) = e["outcomeDesc"].as_str() { " (" (d) ")" } }
                        td { @for (i, p) in e["entity"].as_array().into_iter().flatten()
                                .filter_map(|x| patient_id(x.get("what"))).enumerate() {
                                @if i > 0 { ", " } (p) } }
                        td { @if e["outcome"] == "0" { "success" } @else { span.bad { "refused or failed" } } }
                        td { (e["source"]["observer"]["display"].as_str().unwrap_or_default()) }
                    }
                }
            }
        }
    };
    Ok(viewer.page("Access log", body))
}
