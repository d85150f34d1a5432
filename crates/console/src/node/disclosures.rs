//! The disclosures log: every message carrying data derived from patients
//! that left the hospital, as the node recorded it before sending.

use axum::extract::State;
use futures::future::BoxFuture;
use maud::html;

use super::{NodeState, Page};
use crate::auth::Viewer;
use crate::layout;
use crate::roles;

/// One message that left the node.
#[derive(Clone, Debug, PartialEq)]
pub struct Disclosure {
    /// The plan it served.
    pub plan_id: String,
    /// The round (0 for statistics).
    pub round: u32,
    /// `statistics`, `update` or `evaluation`.
    pub kind: String,
    /// SHA-256 of the model sent, when one was.
    pub sha256: String,
    /// How many patient records are behind it.
    pub records: u64,
    /// When it was sent (Unix milliseconds), when known.
    pub unix_ms: Option<i64>,
}

/// Where the node keeps its disclosures log.
pub trait DisclosureLog: Send + Sync + 'static {
    /// Every disclosure, oldest first.
    fn disclosures(&self) -> BoxFuture<'_, Result<Vec<Disclosure>, String>>;
}

/// The disclosures log page.
pub(super) async fn page(State(s): State<NodeState>, viewer: Viewer) -> Page {
    viewer.allow(roles::DISCLOSURES)?;
    let log = s.console.disclosures.disclosures().await.map_err(|e| {
        tracing::error!(error = %e, "console: disclosures log not read");
        super::access::unavailable(&viewer, "the disclosures log could not be read")
    })?;
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for d in &log {
        match kinds.iter_mut().find(|(k, _)| *k == d.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((d.kind.as_str(), 1)),
        }
    }
    let body = html! {
        p { "Everything derived from this hospital's patients that the node sent out, recorded \
             before it was sent: " (log.len()) " message" @if log.len() != 1 { "s" }
            @for (i, (kind, n)) in kinds.iter().enumerate() { @if i == 0 { " (" } @else { ", " } (n) " " (kind) @if i + 1 == kinds.len() { ")" } }
            ". Individual records never leave; these are aggregates and model parameters." }
        @if !log.is_empty() {
            table #disclosures {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Sent" } th scope="col" { "Plan" }
                    th scope="col" { "Round" } th scope="col" { "Kind" } th scope="col" { "Records behind it" }
                    th scope="col" { "Model SHA-256" }
                } }
                tbody {
                    @for (i, d) in log.iter().enumerate().rev() {
                        tr {
                            th scope="row" { (i + 1) }
                            td { @if let Some(ms) = d.unix_ms { (layout::utc(ms)) } }
                            td.hash { (d.plan_id.get(..16).unwrap_or(&d.plan_id)) "…" }
                            td.num { (d.round) }
                            td { (d.kind) }
                            td.num { (d.records) }
                            td.hash { (d.sha256) }
                        }
                    }
                }
            }
        }
    };
    Ok(viewer.page("Disclosures", body))
}
