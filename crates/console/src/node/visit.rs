//! A visit's note, from transcript to signature: the clinician opens an
//! encounter, has the consultation note drafted from its transcript (`notes`:
//! section classifier, rewriting and the fact checker, on this machine), reads
//! the draft with what the checker removed, and signs it — the draft becomes
//! `final` and a Provenance records who signed which version. Every step is a
//! person's action, and every view and change an AuditEvent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use ehr::audit::Action;
use ehr::auth::Interaction;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{self, ClientAddress, View, require};
use super::patients::{concept, read_patient};
use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};

/// Whether a DocumentReference is a transcript (its type or title says so).
fn is_transcript(document: &Value) -> bool {
    let label = format!(
        "{} {}",
        concept(&document["type"]),
        document["content"][0]["attachment"]["title"]
            .as_str()
            .unwrap_or_default()
    )
    .to_lowercase();
    ["transcript", "transcription", "dictation"]
        .iter()
        .any(|w| label.contains(w))
}

/// The encounter, its patient's id and its documents; the 404 page for an unknown encounter.
pub(super) async fn visit(
    s: &NodeState,
    viewer: &Viewer,
    id: &str,
) -> Result<(Value, String, Vec<Value>), Refused> {
    let not_found = || -> Refused {
        let page = viewer.page("Not found", html! { p { "No encounter with this id." } });
        (StatusCode::NOT_FOUND, page).into_response().into()
    };
    if !ehr::types::is_valid_id(id) {
        return Err(not_found());
    }
    let found = access::search(s, viewer, "Encounter", &[("_id", id)]).await?;
    let encounter = found.into_iter().next().ok_or_else(not_found)?;
    let patient = access::patient_id(encounter.get("subject"))
        .ok_or_else(not_found)?
        .to_string();
    let reference = format!("Encounter/{id}");
    let documents = access::search(
        s,
        viewer,
        "DocumentReference",
        &[("encounter", reference.as_str()), ("_count", "100")],
    )
    .await?;
    Ok((encounter, patient, documents))
}

fn document_card(document: &Value, viewer: &Viewer, encounter: &str) -> Markup {
    let id = document["id"].as_str().unwrap_or_default();
    let status = document["docStatus"].as_str().unwrap_or_default();
    html! {
        article.document id={ "doc-" (id) } {
            h3 { (concept(&document["type"])) @if !status.is_empty() { " " span.muted { "(" (status) ")" } } }
            @if let Some(note) = document["description"].as_str() { p.flags { (note) } }
            @if let Some(text) = ehr::types::document_text(document) { pre.note { (text) } }
            @if status == "preliminary" {
                form method="post" action={ "/encounters/" (encounter) "/sign" } {
                    (viewer.csrf_field())
                    input type="hidden" name="document" value=(id);
                    button type="submit" { "Sign this note" }
                }
            }
        }
    }
}

/// The visit page: transcripts, drafts and signed notes of an encounter.
pub(super) async fn page(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path(id): Path<String>,
) -> Page {
    require(&viewer, "DocumentReference", Interaction::Read)?;
    let (encounter, patient_id, documents) = visit(&s, &viewer, &id).await?;
    let patient = read_patient(&s, &viewer, &patient_id).await?;
    let mut resources = vec![format!("Encounter/{id}"), format!("Patient/{patient_id}")];
    resources.extend(
        documents
            .iter()
            .map(|d| format!("DocumentReference/{}", d["id"].as_str().unwrap_or_default())),
    );
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "read",
            resources,
            patients: vec![patient_id.clone()],
            query: None,
            page: "visit",
        },
    )
    .await?;
    let (transcripts, notes): (Vec<&Value>, Vec<&Value>) =
        documents.iter().partition(|d| is_transcript(d));
    let may_write = access::may(&viewer, "DocumentReference", Interaction::Create);
    let body = html! {
        p { "Patient: " a href={ "/patients/" (patient_id) } { (super::patients::name(&patient)) }
            " · " (encounter["period"]["start"].as_str().unwrap_or_default()) }
        @if access::may(&viewer, "Claim", Interaction::Create) {
            p { a href={ "/encounters/" (id) "/coding" } { "Code this visit and write its claim" } }
        }
        section aria-labelledby="h-transcripts" {
            h2 #h-transcripts { "Transcript" }
            @if transcripts.is_empty() { p { "No transcript of this visit." } }
            @for t in &transcripts { (document_card(t, &viewer, &id)) }
            @if may_write && s.console.dictation.is_some() { (super::dictation::form(&viewer, &id)) }
            @if may_write && !transcripts.is_empty() {
                form method="post" action={ "/encounters/" (id) "/draft" } {
                    (viewer.csrf_field())
                    button type="submit" { "Draft the note from the transcript" }
                }
            }
        }
        section aria-labelledby="h-notes" {
            h2 #h-notes { "Notes" }
            @if notes.is_empty() { p { "No note yet." } }
            @for n in &notes { (document_card(n, &viewer, &id)) }
        }
    };
    Ok(viewer.page("Visit", body))
}

#[derive(Deserialize)]
pub(super) struct DraftForm {
    csrf: String,
}

/// The Practitioner standing for the console login in the record (created on first use),
/// as a reference: drafts are authored, and notes signed, in its name.
pub(super) async fn practitioner(
    tx: &mut ehr::store::Tx,
    viewer: &Viewer,
) -> Result<String, ehr::Error> {
    let id: String = format!("console-{}", viewer.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if tx.current("Practitioner", &id).await?.is_none() {
        let resource = json!({
            "resourceType": "Practitioner", "id": id, "active": true,
            "identifier": [{"system": "https://cohort.dev/fhir/console-login", "value": viewer.name}],
            "name": [{"text": viewer.name}]
        });
        tx.update("Practitioner", &id, resource, None).await?;
    }
    Ok(format!("Practitioner/{id}"))
}

/// Record a change of the visit's documents as an AuditEvent.
pub(super) async fn record_change(
    s: &NodeState,
    viewer: &Viewer,
    address: &ClientAddress,
    (action, interaction, page): (Action, &str, &str),
    resources: Vec<String>,
    patient: &str,
) -> Result<(), Refused> {
    access::record(
        s,
        viewer,
        address,
        View {
            action,
            interaction,
            resources,
            patients: vec![patient.to_string()],
            query: None,
            page,
        },
    )
    .await
}

pub(super) fn back_to(encounter: &str) -> axum::response::Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/encounters/{encounter}"))],
    )
        .into_response()
}

/// Draft the consultation note from the visit's latest transcript and store it as a
/// `preliminary` DocumentReference (the fact checker's removals in its description).
pub(super) async fn draft(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DraftForm>,
) -> Page {
    require(&viewer, "DocumentReference", Interaction::Create)?;
    viewer.check_csrf(&form.csrf)?;
    let (_, patient, documents) = visit(&s, &viewer, &id).await?;
    let Some(transcript) = documents
        .iter()
        .rev()
        .filter(|d| is_transcript(d))
        .find_map(ehr::types::document_text)
    else {
        return Err(viewer.refuse(html! { "This visit has no transcript to draft from." }));
    };
    let drafted = notes::Summarizer::shipped()
        .and_then(|summarizer| summarizer.draft(&transcript))
        .map_err(|e| {
            viewer.refuse(html! { "The transcript could not be drafted: " (e.to_string()) })
        })?;
    let written = async {
        let mut tx = s.console.ehr.begin().await?;
        let context = notes::fhir::NoteContext {
            patient: format!("Patient/{patient}"),
            author: practitioner(&mut tx, &viewer).await?,
            date: ehr::datetime::format_instant(tx.now()),
            encounter: Some(format!("Encounter/{id}")),
        };
        let mut document = notes::fhir::document_reference(&drafted, &context);
        let removed: Vec<String> = drafted.flags.iter().map(|f| f.text.clone()).collect();
        document["description"] = json!(match removed.len() {
            0 => "Draft: every medication, dose, side, number and finding is supported by the transcript.".to_string(),
            n => format!("Draft: {n} sentence(s) removed by the fact checker (not supported by the transcript): {}", removed.join(" | ")),
        });
        let written = tx.create(document).await?;
        tx.commit().await.map(|_| written.id)
    }
    .await
    .map_err(|e: ehr::Error| {
        tracing::error!(error = %e, "console: draft not stored");
        access::unavailable(&viewer, &format!("the draft could not be written to the EHR ({e})"))
    })?;
    record_change(
        &s,
        &viewer,
        &address,
        (Action::Create, "create", "note drafted"),
        vec![format!("DocumentReference/{written}")],
        &patient,
    )
    .await?;
    Ok(back_to(&id))
}

#[derive(Deserialize)]
pub(super) struct SignForm {
    csrf: String,
    document: String,
}

/// Sign a draft of the visit: `final`, with a Provenance naming the signer and the version.
pub(super) async fn sign(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<SignForm>,
) -> Page {
    require(&viewer, "DocumentReference", Interaction::Update)?;
    viewer.check_csrf(&form.csrf)?;
    let (_, patient, documents) = visit(&s, &viewer, &id).await?;
    let Some(document) = documents
        .iter()
        .find(|d| d["id"].as_str() == Some(form.document.as_str()))
    else {
        return Err(viewer.refuse(html! { "That document is not a note of this visit." }));
    };
    let signed = async {
        let mut tx = s.console.ehr.begin().await?;
        let signer = practitioner(&mut tx, &viewer).await?;
        let current = tx
            .current("DocumentReference", &form.document)
            .await?
            .ok_or_else(|| ehr::Error::NotFound(form.document.clone()))?;
        let when = ehr::datetime::format_instant(tx.now());
        let signed = notes::fhir::sign(document, &signer, &when, current.version + 1)
            .map_err(|e| ehr::Error::invalid(e.to_string()))?;
        tx.update(
            "DocumentReference",
            &form.document,
            signed.document_reference,
            Some(current.version),
        )
        .await?;
        let provenance = tx.create(signed.provenance).await?;
        tx.commit().await.map(|_| provenance.id)
    }
    .await
    .map_err(|e: ehr::Error| {
        tracing::error!(error = %e, "console: note not signed");
        viewer.refuse(html! { "The note was not signed: " (e.to_string()) })
    })?;
    record_change(
        &s,
        &viewer,
        &address,
        (Action::Update, "update", "note signed"),
        vec![
            format!("DocumentReference/{}", form.document),
            format!("Provenance/{signed}"),
        ],
        &patient,
    )
    .await?;
    Ok(back_to(&id))
}
