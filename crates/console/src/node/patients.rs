//! Patients: search, the chart, and the ultrasound frame viewer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ehr::audit::Action;
use ehr::auth::Interaction;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::access::{self, ClientAddress, View, require};
use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};

/// The text of a CodeableConcept: its text, else its codings' displays or codes.
pub(super) fn concept(cc: &Value) -> String {
    if let Some(text) = cc["text"].as_str() {
        return text.to_string();
    }
    cc["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["display"].as_str().or_else(|| c["code"].as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A patient's name as people read it.
pub(super) fn name(patient: &Value) -> String {
    let Some(n) = patient["name"].get(0) else {
        return "(no name)".into();
    };
    if let Some(text) = n["text"].as_str() {
        return text.to_string();
    }
    let given: Vec<&str> = n["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let family = n["family"].as_str().unwrap_or_default();
    format!("{} {family}", given.join(" ")).trim().to_string()
}

fn identifiers(patient: &Value) -> String {
    patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["value"].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

/// Search patients by name or identifier.
pub(super) async fn search(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Query(query): Query<SearchQuery>,
) -> Page {
    require(&viewer, "Patient", Interaction::Search)?;
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    let mut found: Vec<Value> = Vec::new();
    if !q.is_empty() {
        for param in ["name", "identifier"] {
            for patient in
                access::search(&s, &viewer, "Patient", &[(param, q), ("_count", "50")]).await?
            {
                if !found.iter().any(|p| p["id"] == patient["id"]) {
                    found.push(patient);
                }
            }
        }
        let ids: Vec<String> = found.iter().map(|p| str_of(p, "id").to_string()).collect();
        let search = format!("name={q} or identifier={q}");
        access::record(
            &s,
            &viewer,
            &address,
            View {
                action: Action::Read,
                interaction: "search-type",
                resources: vec!["Patient".into()],
                patients: ids,
                query: Some(&search),
                page: "patient search",
            },
        )
        .await?;
    }
    let body = html! {
        form.search method="get" action="/patients" role="search" {
            label for="q" { "Name or identifier" }
            input #q type="search" name="q" value=(q) required;
            button type="submit" { "Search" }
        }
        @if !q.is_empty() {
            @if found.is_empty() {
                p #no-match { "No patient's name or identifier matches “" (q) "”." }
            } @else {
                table #patients {
                    caption { (found.len()) " patient" @if found.len() > 1 { "s" } " matching “" (q) "”" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Born" }
                        th scope="col" { "Sex" } th scope="col" { "Identifiers" } } }
                    tbody {
                        @for p in &found {
                            tr {
                                th scope="row" { a href={ "/patients/" (str_of(p, "id")) } { (name(p)) } }
                                td { (str_of(p, "birthDate")) }
                                td { (str_of(p, "gender")) }
                                td { (identifiers(p)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(viewer.page("Patients", body))
}

/// One section of the chart: a resource type, read only when the viewer's
/// scopes cover it.
struct Section {
    resource_type: &'static str,
    title: &'static str,
    columns: &'static [&'static str],
    row: fn(&Value, &str) -> Markup,
}

fn condition_row(c: &Value, _: &str) -> Markup {
    html! {
        td { (concept(&c["code"])) }
        td { (concept(&c["clinicalStatus"])) }
        td { (c["onsetDateTime"].as_str().or(c["recordedDate"].as_str()).unwrap_or_default()) }
    }
}

fn medication_row(m: &Value, _: &str) -> Markup {
    html! {
        td { (concept(&m["medicationCodeableConcept"])) }
        td { (str_of(m, "status")) }
        td { (m["dosageInstruction"][0]["text"].as_str().unwrap_or_default()) }
        td { (str_of(m, "authoredOn")) }
    }
}

fn allergy_row(a: &Value, _: &str) -> Markup {
    let reactions: Vec<String> = a["reaction"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["manifestation"].as_array().into_iter().flatten())
        .map(concept)
        .collect();
    html! {
        td { (concept(&a["code"])) }
        td { (str_of(a, "criticality")) }
        td { (reactions.join(", ")) }
        td { (concept(&a["clinicalStatus"])) }
    }
}

fn document_row(d: &Value, _: &str) -> Markup {
    let attachment = &d["content"][0]["attachment"];
    let text = (attachment["contentType"]
        .as_str()
        .is_some_and(|t| t.starts_with("text/plain")))
    .then(|| attachment["data"].as_str())
    .flatten()
    .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    html! {
        td { (concept(&d["type"])) }
        td { (str_of(d, "date")) }
        td { (str_of(d, "docStatus")) " " (str_of(d, "status")) }
        td {
            @if let Some(desc) = d["description"].as_str() { p { (desc) } }
            @if let Some(text) = text { pre.note { (text) } }
            @else if let Some(title) = attachment["title"].as_str() { (title) }
        }
    }
}

fn encounter_row(e: &Value, _: &str) -> Markup {
    let types: Vec<String> = e["type"]
        .as_array()
        .into_iter()
        .flatten()
        .map(concept)
        .collect();
    html! {
        td { (e["class"]["display"].as_str().or(e["class"]["code"].as_str()).unwrap_or_default()) }
        td { (types.join(", ")) }
        td { (e["period"]["start"].as_str().unwrap_or_default())
            @if let Some(end) = e["period"]["end"].as_str() { " – " (end) } }
        td { (str_of(e, "status")) }
        td { a href={ "/encounters/" (str_of(e, "id")) } { "Visit and notes" } }
    }
}

fn study_row(study: &Value, patient: &str) -> Markup {
    let study_id = str_of(study, "id");
    html! {
        td { (str_of(study, "started")) }
        td { (study["description"].as_str().unwrap_or("(no description)")) }
        td { (study["modality"].as_array().into_iter().flatten().filter_map(|m| m["code"].as_str()).collect::<Vec<_>>().join(", ")) }
        td {
            ul.frames {
                @for series in study["series"].as_array().into_iter().flatten() {
                    @for instance in series["instance"].as_array().into_iter().flatten() {
                        li { a href={ "/patients/" (patient) "/imaging/" (study_id) "/" (str_of(series, "uid")) "/" (str_of(instance, "uid")) } {
                            "View series " (series["number"].as_i64().map(|n| n.to_string()).unwrap_or_default())
                            " image " (instance["number"].as_i64().map(|n| n.to_string()).unwrap_or_else(|| str_of(instance, "uid").to_string()))
                        } }
                    }
                }
            }
        }
    }
}

fn consent_row(c: &Value, _: &str) -> Markup {
    html! {
        td { (str_of(c, "status")) }
        td { (concept(&c["scope"])) }
        td { (super::consent::decision(c)) }
        td { (str_of(c, "dateTime")) }
    }
}

const SECTIONS: &[Section] = &[
    Section {
        resource_type: "Condition",
        title: "Conditions",
        columns: &["Condition", "Status", "Since"],
        row: condition_row,
    },
    Section {
        resource_type: "MedicationRequest",
        title: "Medications",
        columns: &["Medication", "Status", "Dosage", "Prescribed"],
        row: medication_row,
    },
    Section {
        resource_type: "AllergyIntolerance",
        title: "Allergies and intolerances",
        columns: &["Substance", "Criticality", "Reactions", "Status"],
        row: allergy_row,
    },
    Section {
        resource_type: "DocumentReference",
        title: "Notes and documents",
        columns: &["Type", "Date", "Status", "Content"],
        row: document_row,
    },
    Section {
        resource_type: "Encounter",
        title: "Encounters",
        columns: &["Class", "Type", "When", "Status", "Visit"],
        row: encounter_row,
    },
    Section {
        resource_type: "ImagingStudy",
        title: "Ultrasound studies",
        columns: &["Started", "Description", "Modality", "Images"],
        row: study_row,
    },
    Section {
        resource_type: "Consent",
        title: "Consents",
        columns: &["Status", "Scope", "Decision", "Recorded"],
        row: consent_row,
    },
];

/// The Patient `id`, or the 404 page.
pub(super) async fn read_patient(
    s: &NodeState,
    viewer: &Viewer,
    id: &str,
) -> Result<Value, Refused> {
    let not_found = || -> Refused {
        let page = viewer.page("Not found", html! { p { "No patient with this id." } p { a href="/patients" { "Search patients" } } });
        (StatusCode::NOT_FOUND, page).into_response().into()
    };
    if !ehr::types::is_valid_id(id) {
        return Err(not_found());
    }
    match s.console.ehr.read("Patient", id).await {
        Ok(version) => version
            .content
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .ok_or_else(not_found),
        Err(ehr::Error::NotFound(_) | ehr::Error::Gone(_)) => Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "console: patient read failed");
            Err(access::unavailable(viewer, "the EHR could not be read"))
        }
    }
}

/// A patient's chart: the sections the viewer's scopes cover.
pub(super) async fn chart(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path(id): Path<String>,
) -> Page {
    require(&viewer, "Patient", Interaction::Read)?;
    let patient = read_patient(&s, &viewer, &id).await?;
    let mut shown = Vec::new();
    let mut resources = vec![format!("Patient/{id}")];
    for section in SECTIONS {
        if !access::may(&viewer, section.resource_type, Interaction::Search) {
            continue;
        }
        let found = access::search(
            &s,
            &viewer,
            section.resource_type,
            &[("patient", id.as_str()), ("_count", "100")],
        )
        .await?;
        resources.extend(
            found
                .iter()
                .map(|r| format!("{}/{}", section.resource_type, str_of(r, "id"))),
        );
        shown.push((section, found));
    }
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "read",
            resources,
            patients: vec![id.clone()],
            query: None,
            page: "patient chart",
        },
    )
    .await?;
    let body = html! {
        dl.facts #demographics {
            dt { "Born" } dd { (str_of(&patient, "birthDate")) }
            dt { "Sex" } dd { (str_of(&patient, "gender")) }
            dt { "Identifiers" } dd { (identifiers(&patient)) }
            @if let Some(city) = patient["address"][0]["city"].as_str() { dt { "City" } dd { (city) } }
            @if let Some(phone) = patient["telecom"][0]["value"].as_str() { dt { "Contact" } dd { (phone) } }
        }
        @for (section, found) in &shown {
            section aria-labelledby={ "h-" (section.resource_type) } {
                h2 id={ "h-" (section.resource_type) } { (section.title) }
                @if found.is_empty() { p { "None recorded." } }
                @else {
                    table id=(section.resource_type) {
                        thead { tr { @for c in section.columns { th scope="col" { (c) } } } }
                        tbody { @for r in found { tr { ((section.row)(r, &id)) } } }
                    }
                }
            }
        }
        @if shown.len() < SECTIONS.len() {
            p.muted { "Parts of the record your role's scopes do not read are not shown." }
        }
    };
    Ok(viewer.page(&name(&patient), body))
}

#[derive(Deserialize)]
pub(super) struct FrameQuery {
    frame: Option<u32>,
}

/// The imaging service and the instance's frame count, when `study` is this
/// patient's; the 404 page otherwise (another patient's study looks absent).
async fn instance_frames(
    s: &NodeState,
    viewer: &Viewer,
    (id, study, series, instance): (&str, &str, &str, &str),
) -> Result<(std::sync::Arc<imaging::Imaging>, Value, u32), Refused> {
    let not_found = || -> Refused {
        let page = viewer.page(
            "Not found",
            html! { p { "This patient has no such image." } },
        );
        (StatusCode::NOT_FOUND, page).into_response().into()
    };
    let images = s
        .console
        .images
        .clone()
        .ok_or_else(|| access::unavailable(viewer, "this node keeps no images"))?;
    let record = images.study(study).await.ok_or_else(not_found)?;
    if record.linked.as_deref() != Some(id) {
        return Err(not_found());
    }
    let frames = record
        .series
        .get(series)
        .and_then(|s| s.instances.get(instance))
        .map(|i| i.frames.max(1))
        .ok_or_else(not_found)?;
    let described = serde_json::json!({
        "description": record.description,
        "date": record.date,
        "series": record.series.get(series).and_then(|s| s.description.clone()),
    });
    Ok((images, described, frames))
}

/// The frame viewer: one frame of an ultrasound instance, with the others a
/// link away.
pub(super) async fn viewer(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path((id, study, series, instance)): Path<(String, String, String, String)>,
    Query(q): Query<FrameQuery>,
) -> Page {
    require(&viewer, "ImagingStudy", Interaction::Read)?;
    let patient = read_patient(&s, &viewer, &id).await?;
    let (_, described, frames) =
        instance_frames(&s, &viewer, (&id, &study, &series, &instance)).await?;
    let frame = q.frame.unwrap_or(1).clamp(1, frames);
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "read",
            resources: vec![format!("ImagingStudy/{study}")],
            patients: vec![id.clone()],
            query: None,
            page: "ultrasound frame viewer",
        },
    )
    .await?;
    let base = format!("/patients/{id}/imaging/{study}/{series}/{instance}");
    let body = html! {
        p { a href={ "/patients/" (id) } { "Back to " (name(&patient)) "'s chart" } }
        dl.facts {
            dt { "Study" } dd { (described["description"].as_str().unwrap_or("(no description)")) }
            dt { "Date" } dd { (described["date"].as_str().unwrap_or_default()) }
            @if let Some(d) = described["series"].as_str() { dt { "Series" } dd { (d) } }
            dt { "Frame" } dd #frame-number { (frame) " of " (frames) }
        }
        figure.frame {
            img #frame src={ (base) "/frames/" (frame) "/rendered" }
                alt={ "Ultrasound frame " (frame) " of " (frames) ", " (described["description"].as_str().unwrap_or("study")) };
            figcaption { "Rendered by the node's imaging service as WADO-RS rendered serves it (PNG)." }
        }
        nav.pager aria-label="Frames" {
            @if frame > 1 { a href={ (base) "?frame=" (frame - 1) } { "Previous frame" } }
            @if frame < frames { a href={ (base) "?frame=" (frame + 1) } { "Next frame" } }
        }
    };
    Ok(viewer.page("Ultrasound image", body))
}

/// A frame rendered as PNG (the WADO-RS `rendered` resource of the imaging
/// service), recorded like every read of a patient's images.
pub(super) async fn rendered(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path((id, study, series, instance, frame)): Path<(String, String, String, String, u32)>,
) -> Result<Response, Refused> {
    require(&viewer, "ImagingStudy", Interaction::Read)?;
    let (images, _, frames) =
        instance_frames(&s, &viewer, (&id, &study, &series, &instance)).await?;
    if frame == 0 || frame > frames {
        let page = viewer.page(
            "Not found",
            html! { p { "This image has " (frames) " frames." } },
        );
        return Err((StatusCode::NOT_FOUND, page).into_response().into());
    }
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "WADO-RS rendered",
            resources: vec![format!("ImagingStudy/{study}")],
            patients: vec![id.clone()],
            query: None,
            page: "rendered ultrasound frame",
        },
    )
    .await?;
    let png = images
        .render(&study, &series, &instance, frame)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "console: frame not rendered");
            access::unavailable(&viewer, "the frame could not be rendered")
        })?;
    Ok((
        [(CONTENT_TYPE, "image/png"), (CACHE_CONTROL, "no-store")],
        png,
    )
        .into_response())
}
