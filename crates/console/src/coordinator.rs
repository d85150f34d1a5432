//! The coordinator's console: the federation's plan and each hospital's
//! approval, live rounds (server-sent events and a chart), epsilon spent per
//! hospital against its budget, and the ledger explorer.

mod ledger;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Query, State};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use fed::plan_run::{Phase, PlanEvent, PlanState, RoundRecord};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use maud::{Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::auth::{self, Auth, Refused, Viewer};
use crate::layout::{self, Frame, NavItem};
use crate::roles::{self, Role};
use crate::{ConsoleSettings, assets, plan_view};

/// What the console reads from a running coordinator.
pub trait FederationSource: Send + Sync + 'static {
    /// A copy of the plan's current state (finished rounds included).
    fn state(&self) -> BoxFuture<'_, PlanState>;
    /// The plan's events from now on.
    fn events(&self) -> broadcast::Receiver<PlanEvent>;
}

/// The coordinator a console shows.
pub struct CoordinatorConsole {
    /// The federation's name.
    pub federation: String,
    /// The ledger's directory (checkpoint and tiles).
    pub log_dir: PathBuf,
    /// The policy an auditor verifies the ledger with.
    pub policy: ::ledger::policy::Policy,
    /// The plan and its events.
    pub source: Arc<dyn FederationSource>,
    /// Logins through the organisation's OpenID Connect provider, besides local accounts.
    pub oidc: Option<Arc<crate::oidc::Provider>>,
}

#[derive(Clone)]
struct Coord {
    frame: Arc<Frame>,
    console: Arc<CoordinatorConsole>,
}

impl FromRef<Coord> for Arc<Frame> {
    fn from_ref(state: &Coord) -> Self {
        state.frame.clone()
    }
}

const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: "Overview",
        roles: &Role::ALL,
    },
    NavItem {
        href: "/plans",
        label: "Plans",
        roles: roles::FEDERATION,
    },
    NavItem {
        href: "/rounds",
        label: "Rounds",
        roles: roles::FEDERATION,
    },
    NavItem {
        href: "/privacy",
        label: "Privacy budgets",
        roles: roles::FEDERATION,
    },
    NavItem {
        href: "/ledger",
        label: "Ledger",
        roles: roles::FEDERATION,
    },
];

/// The coordinator console's routes.
pub fn router(console: CoordinatorConsole, settings: &ConsoleSettings) -> Router {
    let state = Coord {
        frame: Arc::new(Frame {
            site: format!("coordinator {}", console.federation),
            nav: NAV,
            auth: Auth::new(settings.users.clone(), settings.secure_cookies)
                .with_oidc(console.oidc.clone()),
        }),
        console: Arc::new(console),
    };
    Router::new()
        .route("/", get(overview))
        .route("/plans", get(plans))
        .route("/rounds", get(rounds))
        .route("/rounds/events", get(round_events))
        .route("/privacy", get(privacy))
        .merge(ledger::routes())
        .merge(auth::routes())
        .fallback(layout::not_found)
        .with_state(state)
        .merge(assets::routes())
        .layer(axum::middleware::from_fn(layout::security_headers))
}

type Page = Result<Response, Refused>;

fn phase_text(state: &PlanState) -> String {
    match &state.phase {
        Phase::Review => "Waiting for the hospitals' approvals".into(),
        Phase::Statistics => "Computing the federated standardisation".into(),
        Phase::Training => format!("Training: round {} of {}", state.round, state.plan.rounds),
        Phase::Evaluation => "Evaluating the final model".into(),
        Phase::Completed => "Completed".into(),
        Phase::Failed { reason } => format!("Failed: {reason}"),
    }
}

async fn overview(State(s): State<Coord>, viewer: Viewer) -> Response {
    let state = s.console.source.state().await;
    let body = html! {
        @if viewer.allow(roles::FEDERATION).is_ok() {
            dl.facts {
                dt { "Plan" } dd { (state.plan.name) }
                dt { "Status" } dd #phase { (phase_text(&state)) }
                dt { "Rounds done" } dd { (state.history.len()) " of " (state.plan.rounds) }
                dt { "Hospitals" } dd { (state.plan.hospitals.join(", ")) }
            }
        } @else {
            p { "The coordinator's pages are for data protection officers, data scientists and \
                 auditors. Patients, notes and codes are on your hospital's node console." }
        }
    };
    viewer.page("Overview", body)
}

async fn plans(State(s): State<Coord>, viewer: Viewer) -> Page {
    viewer.allow(roles::FEDERATION)?;
    let state = s.console.source.state().await;
    let plan = &state.plan;
    let body = html! {
        h2 { (plan.name) }
        dl.facts {
            dt { "Plan id" } dd.hash { (state.plan_id) }
            dt { "Status" } dd { (phase_text(&state)) }
        }
        (plan_view::facts(plan))
        h2 { "Approvals" }
        table #approvals {
            thead { tr { th scope="col" { "Hospital" } th scope="col" { "Decision" } th scope="col" { "Note" } } }
            tbody {
                @for h in &plan.hospitals {
                    tr {
                        th scope="row" { (h) }
                        @match (state.reviews.get(h), state.withdrawn.get(h)) {
                            (_, Some(reason)) => { td.bad { "withdrew" } td { (reason) } }
                            (Some(r), None) if r.approved => { td.good { "approved" } td { "signed PlanApproved on the ledger" } }
                            (Some(r), None) => { td.bad { "declined" } td { (r.reason) } }
                            (None, None) => { td { "waiting" } td {} }
                        }
                    }
                }
            }
        }
        details {
            summary { "The plan as the hospitals review it (canonical JSON)" }
            pre { (plan.to_json()) }
        }
    };
    Ok(viewer.page("Plans", body))
}

/// One finished round as the rounds page and its live updates show it.
#[derive(Serialize)]
struct RoundRow {
    round: u32,
    /// Pooled test accuracy of the round's input model at the contributors.
    accuracy: Option<f64>,
    /// Pooled training loss of the contributors.
    loss: Option<f64>,
    /// The table row, rendered by the server for the page and the live updates alike.
    row: String,
}

fn pooled(metrics: &std::collections::BTreeMap<String, learn::Metrics>) -> Option<learn::Metrics> {
    let all: Vec<learn::Metrics> = metrics.values().copied().collect();
    let m = learn::Metrics::pooled(&all);
    (m.samples > 0).then_some(m)
}

fn round_row(r: &RoundRecord) -> RoundRow {
    let test = pooled(&r.input_test());
    let train = pooled(&r.train());
    let seconds = (r.closed_unix_ms - r.opened_unix_ms) as f64 / 1000.0;
    let contributors: Vec<&str> = r.contributions.keys().map(String::as_str).collect();
    let row = html! {
        tr data-round=(r.round) {
            th scope="row" { (r.round) }
            td { (contributors.join(", ")) }
            td { @if r.missing.is_empty() { "none" } @else { (r.missing.join(", ")) } }
            td.num { (format!("{seconds:.2}")) }
            td.num { @if let Some(m) = test { (format!("{:.3}", m.accuracy)) } }
            td.num { @if let Some(m) = train { (format!("{:.4}", m.loss)) } }
        }
    };
    RoundRow {
        round: r.round,
        accuracy: test.map(|m| m.accuracy),
        loss: train.map(|m| m.loss),
        row: row.into_string(),
    }
}

async fn rounds(State(s): State<Coord>, viewer: Viewer) -> Page {
    viewer.allow(roles::FEDERATION)?;
    let state = s.console.source.state().await;
    let rows: Vec<RoundRow> = state.history.iter().map(round_row).collect();
    let done = rows.len();
    let chart_data: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::json!({"round": r.round, "accuracy": r.accuracy, "loss": r.loss}))
        .collect();
    let body = html! {
        link rel="stylesheet" href="/assets/uPlot.min.css";
        script src="/assets/uPlot.iife.min.js" defer {}
        script src="/assets/rounds.js" defer {}
        p { "Status: " strong #phase aria-live="polite" { (phase_text(&state)) }
            " · rounds done: " span #rounds-done { (done) } " of " (state.plan.rounds)
            " · " span #live { "reload the page for new rounds" } }
        figure {
            div #chart role="img" aria-label="Test accuracy and training loss by round" {}
            figcaption { span.key-acc { "■" } " test accuracy of each round's input model (left axis); "
                span.key-loss { "■" } " contributors' training loss (right axis)" }
        }
        script #rounds-data type="application/json" { (PreEscaped(serde_json::to_string(&chart_data).unwrap_or_default().replace('<', "\\u003c"))) }
        table #rounds {
            caption { "Finished rounds" }
            thead { tr {
                th scope="col" { "Round" } th scope="col" { "Contributors" } th scope="col" { "Missing" }
                th scope="col" { "Seconds" } th scope="col" { "Test accuracy" } th scope="col" { "Training loss" }
            } }
            tbody #rounds-body data-last=(state.history.last().map_or(0, |r| r.round)) {
                @for r in &rows { (PreEscaped(&r.row)) }
            }
        }
    };
    Ok(viewer.page("Rounds", body))
}

#[derive(Deserialize)]
struct After {
    after: Option<u32>,
}

/// Server-sent events: rounds finished after `after` (from the state, so no
/// round between the page and the subscription is lost), the status, then
/// each round, status change and secure-aggregation step as it happens.
async fn round_events(
    State(s): State<Coord>,
    viewer: Viewer,
    Query(q): Query<After>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Refused> {
    viewer.allow(roles::FEDERATION)?;
    let receiver = s.console.source.events();
    let state = s.console.source.state().await;
    let after = q.after.unwrap_or(0);
    let mut first: Vec<Event> = state
        .history
        .iter()
        .filter(|r| r.round > after)
        .map(round_event)
        .collect();
    first.push(Event::default().event("phase").data(phase_text(&state)));
    let live = tokio_stream::wrappers::BroadcastStream::new(receiver)
        .filter_map(|event| async move { event.ok().and_then(|e| plan_event(&e)) });
    let stream = futures::stream::iter(first).chain(live).map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn round_event(r: &RoundRecord) -> Event {
    Event::default()
        .event("round")
        .json_data(round_row(r))
        .unwrap_or_default()
}

fn plan_event(event: &PlanEvent) -> Option<Event> {
    let phase = |text: String| Some(Event::default().event("phase").data(text));
    match event {
        PlanEvent::RoundAggregated(r) => Some(round_event(r)),
        PlanEvent::Approved(p) => phase(format!("Approved by {}", p.join(", "))),
        PlanEvent::Standardized => phase("Training".into()),
        PlanEvent::Reopened { phase: p, attempt } => {
            phase(format!("{p} reopened (attempt {attempt})"))
        }
        PlanEvent::SecureStep { round, step, .. } => Some(
            Event::default()
                .event("step")
                .data(format!("round {round}: secure aggregation step {step}")),
        ),
        PlanEvent::Completed => phase("Completed".into()),
        PlanEvent::Failed(reason) => phase(format!("Failed: {reason}")),
    }
}

async fn privacy(State(s): State<Coord>, viewer: Viewer) -> Page {
    viewer.allow(roles::FEDERATION)?;
    let state = s.console.source.state().await;
    let budget = state.plan.privacy_budget;
    let body = html! {
        @match budget {
            None => p { "This plan has no differential-privacy budget." }
            Some(b) => {
                p { "Each hospital may spend at most epsilon " strong { (b.epsilon) } " at delta "
                    (b.delta) " on this plan. Its node enforces the budget itself and withdraws \
                    rather than exceed it; the ledger records what each hospital reported." }
                table #epsilon {
                    thead { tr { th scope="col" { "Hospital" } th scope="col" { "Epsilon spent" }
                        th scope="col" { "Share of the budget" } } }
                    tbody {
                        @for h in &state.plan.hospitals {
                            @let spent = state.epsilon_spent_micro.get(h).copied().unwrap_or(0) as f64 / 1e6;
                            tr {
                                th scope="row" { (h) }
                                td.num { (format!("{spent:.3}")) " of " (b.epsilon) }
                                td {
                                    meter min="0" max=(b.epsilon) value=(spent) high=(b.epsilon * 0.9)
                                        aria-label={ "epsilon spent by " (h) } {}
                                    " " (format!("{:.0} %", 100.0 * spent / b.epsilon))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(viewer.page("Privacy budgets", body))
}

/// A titled section of facts, for pages that show a result.
fn verdict(ok: bool, text: Markup) -> Markup {
    html! {
        p class=(if ok { "verdict good" } else { "verdict bad" }) role="status" {
            (if ok { "✔ " } else { "✘ " }) (text)
        }
    }
}

#[cfg(test)]
mod tests;
