//! The ledger explorer: the published checkpoint and its witnesses'
//! cosignatures, the entries decoded by type, each entry's inclusion proof
//! and the consistency of the log as of that entry with the checkpoint,
//! checked by the server as the page is drawn, and the whole-log audit.

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ledger::checkpoint::SignedCheckpoint;
use ledger::entry::SignedEntry;
use ledger::merkle::{consistency_proof, range_root, verify_consistency};
use ledger::receipt::Receipt;
use ledger::tiles::{LogDir, LogSource, TileReader};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Coord, Page, verdict};
use crate::auth::{CsrfForm, Refused, Viewer};
use crate::layout::utc;
use crate::roles;

/// Entries per page of the list.
const PAGE: u64 = 100;

pub(super) fn routes() -> Router<Coord> {
    Router::new()
        .route("/ledger", get(index))
        .route("/ledger/entries/{index}", get(entry))
        .route("/ledger/entries/{index}/receipt.json", get(receipt))
        .route("/ledger/verify", post(verify))
}

fn unavailable(viewer: &Viewer, why: String) -> Refused {
    let body = html! { p.error role="alert" { "The ledger cannot be read: " (why) } };
    (StatusCode::SERVICE_UNAVAILABLE, viewer.page("Ledger", body))
        .into_response()
        .into()
}

/// The published checkpoint, its log signature checked.
fn published(s: &Coord) -> Result<(LogDir, SignedCheckpoint), String> {
    let dir = LogDir::new(&s.console.log_dir);
    let policy = &s.console.policy;
    let bytes = dir.read_checkpoint().map_err(|e| e.to_string())?;
    let checkpoint = SignedCheckpoint::open(&bytes, &policy.origin, &policy.log_key)
        .map_err(|e| e.to_string())?;
    Ok((dir, checkpoint))
}

fn cosignatures(s: &Coord, checkpoint: &SignedCheckpoint) -> Markup {
    let policy = &s.console.policy;
    let witnesses = &policy.genesis.witnesses;
    let tally = checkpoint.tally(&policy.log_key, witnesses);
    let quorum = usize::from(witnesses.quorum());
    html! {
        (verdict(tally.valid.len() >= quorum && tally.invalid.is_empty() && tally.unknown.is_empty(),
            html! { (tally.valid.len()) " valid witness cosignatures; the policy requires " (quorum) }))
        table #cosignatures {
            caption { "Witness cosignatures" }
            thead { tr { th scope="col" { "Witness" } th scope="col" { "Cosignature" } th scope="col" { "Cosigned at" } } }
            tbody {
                @for w in witnesses.witnesses() {
                    @let valid = tally.valid.iter().find(|(p, _)| p == &w.party);
                    tr {
                        th scope="row" { (w.party) }
                        @if let Some((_, at)) = valid {
                            td.good { "valid" } td { (utc(*at as i64 * 1000)) }
                        } @else if tally.invalid.contains(&w.party) {
                            td.bad { "does not verify" } td {}
                        } @else {
                            td { "none" } td {}
                        }
                    }
                }
            }
        }
        @for name in &tally.unknown { p.bad { "Signature by an unknown key: " (name) } }
    }
}

#[derive(Deserialize)]
struct From {
    from: Option<u64>,
}

async fn index(State(s): State<Coord>, viewer: Viewer, Query(q): Query<From>) -> Page {
    viewer.allow(roles::FEDERATION)?;
    let (dir, checkpoint) = published(&s).map_err(|e| unavailable(&viewer, e))?;
    let head = checkpoint.checkpoint();
    let from = q.from.unwrap_or(0).min(head.size.saturating_sub(1)) / PAGE * PAGE;
    let to = (from + PAGE).min(head.size);
    let entries = TileReader::new(&dir, head.size)
        .entries(from, to)
        .map_err(|e| unavailable(&viewer, e.to_string()))?;
    let body = html! {
        h2 { "Published checkpoint" }
        dl.facts {
            dt { "Log" } dd { (head.origin) }
            dt { "Entries" } dd #tree-size { (head.size) }
            dt { "Root" } dd.hash { (head.root) }
            dt { "Log signature" } dd.good { "valid (coordinator's key " span.hash { (s.console.policy.log_key) } ")" }
        }
        (cosignatures(&s, &checkpoint))
        details {
            summary { "The signed note" }
            pre { (String::from_utf8_lossy(&checkpoint.to_bytes())) }
        }
        @if viewer.allow(roles::AUDIT).is_ok() {
            h2 { "Audit" }
            form method="post" action="/ledger/verify" hx-post="/ledger/verify" hx-target="#audit" hx-swap="innerHTML" {
                (viewer.csrf_field())
                button type="submit" { "Verify the whole log" }
                " checks every signature, tile, round, budget and aggregate, as " code { "cohort ledger verify" } " does."
            }
            div #audit aria-live="polite" {}
        }
        h2 { "Entries " (from) "–" (to.saturating_sub(1)) }
        table #entries {
            thead { tr { th scope="col" { "Index" } th scope="col" { "Type" } th scope="col" { "Author" } } }
            tbody {
                @for (offset, bytes) in entries.iter().enumerate() {
                    @let index = from + offset as u64;
                    tr {
                        th scope="row" { a href={ "/ledger/entries/" (index) } { (index) } }
                        @match SignedEntry::from_bytes(bytes) {
                            Ok(e) => { td { (e.statement().kind_name()) } td { (e.author()) } }
                            Err(err) => { td.bad { "does not decode: " (err) } td {} }
                        }
                    }
                }
            }
        }
        nav aria-label="Entry pages" {
            @if from > 0 { a href={ "/ledger?from=" (from - PAGE) } { "← earlier entries" } " " }
            @if to < head.size { a href={ "/ledger?from=" (to) } { "later entries →" } }
        }
    };
    Ok(viewer.page("Ledger", body))
}

async fn entry(State(s): State<Coord>, viewer: Viewer, Path(index): Path<u64>) -> Page {
    viewer.allow(roles::FEDERATION)?;
    let (dir, checkpoint) = published(&s).map_err(|e| unavailable(&viewer, e))?;
    let head = checkpoint.checkpoint();
    if index >= head.size {
        let body = html! { p { "The published checkpoint covers entries 0 to " (head.size.saturating_sub(1)) "." } };
        return Err((StatusCode::NOT_FOUND, viewer.page("No such entry", body))
            .into_response()
            .into());
    }
    let receipt = Receipt::build(&dir, &checkpoint, index)
        .map_err(|e| unavailable(&viewer, e.to_string()))?;
    let policy = &s.console.policy;
    let inclusion = receipt.verify(&policy.origin, &policy.log_key);
    let consistency = consistency_of(&dir, index + 1, head.size, &head.root);
    let title = format!("Ledger entry {index}");
    let body = html! {
        @match &inclusion {
            Ok(e) => {
                dl.facts {
                    dt { "Type" } dd #kind { (e.statement().kind_name()) }
                    dt { "Author" } dd { (e.author()) }
                    dt { "Entry hash" } dd.hash { (e.entry_hash()) }
                    dt { "Author's signature" } dd.hash { (hex::encode(e.signature())) }
                }
                h2 { "Statement" }
                pre.statement { (format!("{:#?}", e.statement())) }
            }
            Err(_) => p { "The entry cannot be shown: its proof does not hold." }
        }
        h2 { "Inclusion proof" }
        #inclusion {
            (verdict(inclusion.is_ok(), match &inclusion {
                Ok(_) => html! { "Verified: entry " (index) " is in the log of " (head.size)
                    " entries whose root the coordinator signed and the witnesses cosigned." },
                Err(e) => html! { "Does not verify: " (e) },
            }))
            dl.facts {
                dt { "Leaf hash" } dd.hash { (receipt.leaf_hash) }
                dt { "Tree size" } dd { (receipt.tree_size) }
                dt { "Root" } dd.hash { (receipt.root) }
            }
            ol.proof aria-label="Audit path, leaf to root" {
                @for h in &receipt.proof { li.hash { (h) } }
            }
            p { a href={ "/ledger/entries/" (index) "/receipt.json" } { "Download the receipt" }
                " and check it offline: " code { "cohort ledger check-proof receipt.json --policy policy.toml" } }
        }
        h2 { "Consistency proof" }
        #consistency {
            @match &consistency {
                Some(Ok((root, proof))) => {
                    (verdict(true, html! { "Verified: the log as of this entry (" (index + 1)
                        " entries, root " span.hash { (root) } ") is a prefix of the published checkpoint." }))
                    ol.proof aria-label="Consistency path" { @for h in proof { li.hash { (h) } } }
                }
                Some(Err(e)) => (verdict(false, html! { "Does not verify: " (e) })),
                None => p { "This entry is the checkpoint's last: nothing to prove." }
            }
        }
        nav aria-label="Neighbouring entries" {
            @if index > 0 { a href={ "/ledger/entries/" (index - 1) } { "← entry " (index - 1) } " " }
            a href={ "/ledger?from=" (index) } { "all entries" }
            @if index + 1 < head.size { " " a href={ "/ledger/entries/" (index + 1) } { "entry " (index + 1) " →" } }
        }
    };
    Ok(viewer.page(&title, body))
}

/// The root of the first `old` entries and the proof that they are a prefix
/// of the `size` entries with root `root`, checked; `None` when `old == size`.
fn consistency_of(
    dir: &LogDir,
    old: u64,
    size: u64,
    root: &ledger::hash::Hash,
) -> Option<Result<(ledger::hash::Hash, Vec<ledger::hash::Hash>), String>> {
    if old >= size {
        return None;
    }
    let reader = TileReader::new(dir, size);
    let checked = (|| {
        let old_root = range_root(&reader, 0, old).map_err(|e| e.to_string())?;
        let proof = consistency_proof(&reader, old, size).map_err(|e| e.to_string())?;
        verify_consistency(old, size, &proof, &old_root.0, &root.0).map_err(|e| e.to_string())?;
        Ok((old_root, proof))
    })();
    Some(checked)
}

async fn receipt(State(s): State<Coord>, viewer: Viewer, Path(index): Path<u64>) -> Page {
    viewer.allow(roles::FEDERATION)?;
    let (dir, checkpoint) = published(&s).map_err(|e| unavailable(&viewer, e))?;
    let receipt = Receipt::build(&dir, &checkpoint, index)
        .map_err(|e| Refused::from((StatusCode::NOT_FOUND, e.to_string()).into_response()))?;
    Ok(([(CONTENT_TYPE, "application/json")], receipt.to_json()).into_response())
}

/// Run the auditor over the whole log; htmx gets the report alone.
async fn verify(
    State(s): State<Coord>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    viewer.allow(roles::AUDIT)?;
    viewer.check_csrf(&form.csrf)?;
    let console = s.console.clone();
    let report = tokio::task::spawn_blocking(move || {
        ledger::audit::verify_log(&console.policy, &console.log_dir)
    })
    .await
    .map_err(|e| unavailable(&viewer, e.to_string()))?;
    let fragment = html! {
        (verdict(report.is_clean(), html! {
            @if report.is_clean() { "The whole log verifies: " } @else { "The log does not verify: " }
            (report.entries_checked) " entries checked, " (report.cosignatures) " cosignatures (quorum "
            (report.quorum) ")" }))
        @if let Some(root) = report.root { p { "Root " span.hash { (root) } " over " (report.tree_size) " entries." } }
        @if !report.violations.is_empty() {
            ul.violations { @for v in &report.violations { li { (v.to_string()) } } }
        }
    };
    if headers.contains_key("hx-request") {
        return Ok(axum::response::Html(fragment.into_string()).into_response());
    }
    Ok(viewer.page("Ledger audit", fragment))
}
