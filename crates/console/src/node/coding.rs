//! Coding a visit and writing its claim: the billing officer opens an
//! encounter, reads its latest note with the codes the node's code model
//! suggests (`billing`: each with its score and the words of the note that
//! support it), ticks the codes to bill, and the claim is written — a FHIR
//! `Claim`, a `ChargeItem` per procedure and a `Provenance` per decision,
//! accepted or rejected. The model is the newest in the node's coding models
//! folder: the final model of a coding plan the hospital took part in, or one
//! trained with `cohort billing train`. Accepted codes become the hospital's
//! training labels for the next coding plan.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use billing::claim::{Decision, Encounter, FeeSchedule};
use billing::corpus::CodeSystem;
use billing::encounter::{CodeDecision, find_coverage, read_encounter_note, review, suggest_note};
use billing::{Coder, Suggestion};
use ehr::audit::Action;
use ehr::auth::Interaction;
use maud::{Markup, html};
use serde::Deserialize;

use super::access::{self, ClientAddress, View, require};
use super::visit::practitioner;
use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};

/// Codes suggested per system.
const SUGGESTED: usize = 5;

/// The code model of the newest model folder (by name) under the node's coding models folder,
/// read once per folder: a page loads a model only when a newer folder has appeared (a folder
/// is written whole, under a new name, when a coding plan ends).
#[derive(Default)]
pub(super) struct CoderCache(Mutex<Option<(PathBuf, Arc<Coder>)>>);

impl CoderCache {
    pub(super) fn newest(&self, dir: &Path) -> Option<Arc<Coder>> {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        let mut cached = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for folder in folders.iter().rev() {
            if let Some((path, coder)) = cached.as_ref()
                && path == folder
            {
                return Some(coder.clone());
            }
            if let Ok(coder) = Coder::load(folder) {
                let coder = Arc::new(coder);
                *cached = Some((folder.clone(), coder.clone()));
                return Some(coder);
            }
        }
        None
    }
}

fn system_name(system: Option<CodeSystem>) -> &'static str {
    match system {
        Some(CodeSystem::Procedure) => "procedure",
        _ => "diagnosis",
    }
}

/// The words of `text` a suggestion's evidence spans cover.
fn evidence(text: &str, s: &Suggestion) -> String {
    s.evidence
        .iter()
        .map(|span| {
            text.chars()
                .skip(span.start)
                .take(span.end.saturating_sub(span.start))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn failed(viewer: &Viewer, what: &str, e: impl std::fmt::Display) -> Refused {
    viewer.refuse(html! { (what) ": " (e.to_string()) })
}

/// The note and the model's suggestions for encounter `id`.
async fn suggestions(
    s: &NodeState,
    viewer: &Viewer,
    id: &str,
) -> Result<(billing::encounter::EncounterNote, Vec<Suggestion>), Refused> {
    if !ehr::types::is_valid_id(id) {
        return Err(viewer.refuse(html! { "No encounter with this id." }));
    }
    let newest = |dir: &Path| s.coders.newest(dir);
    let Some(coder) = s.console.coding_models.as_deref().and_then(newest) else {
        return Err(viewer.refuse(html! {
            "No code model on this node yet: the final model of a coding plan, or one trained \
             with cohort billing train, in the node's coding models folder."
        }));
    };
    let note = read_encounter_note(&s.console.ehr, id)
        .await
        .map_err(|e| failed(viewer, "The visit's note could not be read", e))?;
    let suggested = suggest_note(&coder, &note, SUGGESTED)
        .map_err(|e| failed(viewer, "The note could not be coded", e))?;
    Ok((note, suggested))
}

#[derive(Deserialize)]
pub(super) struct Written {
    claim: Option<String>,
}

fn suggestion_row(text: &str, s: &Suggestion) -> Markup {
    let field = bill_field(s);
    html! {
        tr {
            td { input type="checkbox" name=(field) value="on" id=(field) aria-label={ "bill " (s.code) }; }
            th scope="row" { label for=(field) { (s.code) } }
            td { (system_name(s.system)) }
            td { (format!("{:.2}", s.score)) }
            td { (evidence(text, s)) }
        }
    }
}

/// The coding page: the note, the suggested codes with their evidence, the claim form.
pub(super) async fn page(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    UrlPath(id): UrlPath<String>,
    Query(written): Query<Written>,
) -> Page {
    require(&viewer, "Claim", Interaction::Create)?;
    let (note, suggested) = suggestions(&s, &viewer, &id).await?;
    let patient = note.patient.trim_start_matches("Patient/").to_string();
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Read,
            interaction: "read",
            resources: vec![note.encounter.clone(), note.document.clone()],
            patients: vec![patient],
            query: None,
            page: "visit coding",
        },
    )
    .await?;
    let body = html! {
        @if let Some(claim) = &written.claim { p.done role="status" { "Claim/" (claim) " written with the codes ticked." } }
        section aria-labelledby="h-note" {
            h2 #h-note { "Note" }
            pre.note { (note.text) }
        }
        section aria-labelledby="h-codes" {
            h2 #h-codes { "Suggested codes" }
            form method="post" action={ "/encounters/" (id) "/claim" } {
                (viewer.csrf_field())
                table #codes {
                    thead { tr { th scope="col" { "Bill" } th scope="col" { "Code" } th scope="col" { "System" }
                                 th scope="col" { "Score" } th scope="col" { "Evidence in the note" } } }
                    tbody { @for sug in &suggested { (suggestion_row(&note.text, sug)) } }
                }
                button type="submit" { "Write the claim" }
            }
        }
    };
    Ok(viewer.page("Coding", body))
}

/// The form field of a suggestion's tick box: `bill.<system>.<code>`.
fn bill_field(s: &Suggestion) -> String {
    format!("bill.{}.{}", system_name(s.system), s.code)
}

/// Write the claim: ticked suggestions accepted, the others rejected, each decision recorded.
pub(super) async fn claim(
    State(s): State<NodeState>,
    viewer: Viewer,
    address: ClientAddress,
    UrlPath(id): UrlPath<String>,
    axum::Form(form): axum::Form<std::collections::BTreeMap<String, String>>,
) -> Page {
    require(&viewer, "Claim", Interaction::Create)?;
    viewer.check_csrf(form.get("csrf").map_or("", String::as_str))?;
    let (note, suggested) = suggestions(&s, &viewer, &id).await?;
    let decisions: Vec<CodeDecision> = suggested
        .iter()
        .map(|sug| CodeDecision {
            code: sug.code.clone(),
            decision: match form.contains_key(&bill_field(sug)) {
                true => Decision::Accepted,
                false => Decision::Rejected,
            },
            system: sug.system,
        })
        .collect();
    let reviewed = review(&suggested, &decisions).map_err(|e| failed(&viewer, "Not billed", e))?;
    let store = &s.console.ehr;
    let coverage = find_coverage(store, &note.patient)
        .await
        .map_err(|e| failed(&viewer, "Not billed", e))?
        .ok_or_else(|| viewer.refuse(html! { "Not billed: the patient has no Coverage." }))?;
    let provider = note.provider.clone().ok_or_else(|| {
        viewer.refuse(html! { "Not billed: the encounter names no service provider." })
    })?;
    let coder = async {
        let mut tx = store.begin().await?;
        let reference = practitioner(&mut tx, &viewer).await?;
        tx.commit().await.map(|_| reference)
    }
    .await
    .map_err(|e| failed(&viewer, "Not billed", e))?;
    let encounter = Encounter {
        patient: note.patient.clone(),
        encounter: note.encounter.clone(),
        provider,
        coverage,
        document: note.document.clone(),
        coder,
        date: ehr::datetime::format_instant(ehr::datetime::now_micros()),
    };
    let fees = FeeSchedule {
        currency: "EUR".into(),
        fees: Default::default(),
        default: 0.0,
    };
    let written = billing::encounter::write_claim(store, &encounter, &reviewed, &fees)
        .await
        .map_err(|e| failed(&viewer, "Not billed", e))?;
    let claim_id = written.claim.trim_start_matches("Claim/").to_string();
    let mut resources = vec![written.claim.clone()];
    resources.extend(written.charge_items.iter().cloned());
    resources.extend(written.provenances.iter().cloned());
    access::record(
        &s,
        &viewer,
        &address,
        View {
            action: Action::Create,
            interaction: "create",
            resources,
            patients: vec![note.patient.trim_start_matches("Patient/").to_string()],
            query: None,
            page: "claim written",
        },
    )
    .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            format!("/encounters/{id}/coding?claim={claim_id}"),
        )],
    )
        .into_response())
}
