//! Plans waiting for the data protection officer: what each will read and
//! disclose, approve or decline; the allow-list of code hashes; past
//! decisions. The node implements [`PlanApprovals`] over its own store and
//! waits for a person's decision before it answers a plan offer;
//! [`MemoryApprovals`] keeps it all in memory.

use std::collections::BTreeSet;
use std::sync::Mutex;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use fed::plan::TrainingPlan;
use futures::future::BoxFuture;
use maud::{Markup, html};
use serde::Deserialize;
use tokio::sync::watch;

use super::{NodeState, Page};
use crate::auth::{Refused, Viewer};
use crate::{layout, plan_view, roles};

/// A plan offered to the hospital, waiting for a person's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingPlan {
    /// The plan's id (SHA-256 of its canonical JSON).
    pub plan_id: String,
    /// The plan as offered (canonical JSON).
    pub plan_json: String,
    /// When it arrived (Unix milliseconds).
    pub received_unix_ms: i64,
}

/// A person's decision on a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Take part.
    Approve,
    /// Do not take part, for this reason.
    Decline(String),
}

/// A plan decided on.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// The plan's id.
    pub plan_id: String,
    /// The plan (canonical JSON).
    pub plan_json: String,
    /// What was decided.
    pub decision: Decision,
    /// Who decided (the console login).
    pub by: String,
    /// When (Unix milliseconds).
    pub unix_ms: i64,
}

/// Why an approval could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The plan is not waiting for a decision (unknown, or decided already).
    #[error("plan {0} is not waiting for a decision")]
    NotPending(String),
    /// The request is not valid (e.g. a code hash that is not 64 hex digits).
    #[error("{0}")]
    Invalid(String),
    /// The node's store failed.
    #[error("the node's store: {0}")]
    Store(String),
}

/// The node's plans awaiting approval, its decisions and its allow-list.
pub trait PlanApprovals: Send + Sync + 'static {
    /// Plans waiting for a decision, oldest first.
    fn pending(&self) -> BoxFuture<'_, Result<Vec<PendingPlan>, ApprovalError>>;
    /// Past decisions, newest first.
    fn decided(&self) -> BoxFuture<'_, Result<Vec<Decided>, ApprovalError>>;
    /// Record `by`'s decision on a pending plan; the node then answers the
    /// coordinator's offer with it.
    fn decide<'a>(
        &'a self,
        plan_id: &'a str,
        by: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<(), ApprovalError>>;
    /// The code hashes this hospital runs (lowercase hex SHA-256).
    fn allow_list(&self) -> BoxFuture<'_, Result<Vec<String>, ApprovalError>>;
    /// Add (`allowed`) or remove a code hash, on `by`'s authority.
    fn set_allowed<'a>(
        &'a self,
        code_hash: &'a str,
        allowed: bool,
        by: &'a str,
    ) -> BoxFuture<'a, Result<(), ApprovalError>>;
}

/// Approvals held in memory: plans are offered with [`MemoryApprovals::offer`]
/// and the node waits for a person with [`MemoryApprovals::wait`].
pub struct MemoryApprovals {
    state: Mutex<Memory>,
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Memory {
    pending: Vec<PendingPlan>,
    decided: Vec<Decided>,
    allowed: BTreeSet<String>,
}

/// `text` when it is a SHA-256 in lowercase hex.
fn check_hash(text: &str) -> Result<&str, ApprovalError> {
    if text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(text)
    } else {
        Err(ApprovalError::Invalid(format!(
            "{text:?} is not a code hash (64 lowercase hex digits)"
        )))
    }
}

impl MemoryApprovals {
    /// No plan, and these code hashes allowed.
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Result<Self, ApprovalError> {
        let allowed = allowed
            .into_iter()
            .map(|h| check_hash(&h).map(str::to_string))
            .collect::<Result<_, _>>()?;
        Ok(MemoryApprovals {
            state: Mutex::new(Memory {
                allowed,
                ..Memory::default()
            }),
            changed: watch::channel(0).0,
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Memory>, ApprovalError> {
        self.state
            .lock()
            .map_err(|_| ApprovalError::Store("approvals lock poisoned".into()))
    }

    /// A plan offered by the coordinator, now waiting for a decision
    /// (offering the same plan again changes nothing).
    pub fn offer(&self, plan_id: &str, plan_json: &str) -> Result<(), ApprovalError> {
        let mut state = self.lock()?;
        let known = state.pending.iter().any(|p| p.plan_id == plan_id)
            || state.decided.iter().any(|d| d.plan_id == plan_id);
        if !known {
            state.pending.push(PendingPlan {
                plan_id: plan_id.to_string(),
                plan_json: plan_json.to_string(),
                received_unix_ms: ehr::datetime::now_millis(),
            });
        }
        Ok(())
    }

    /// Wait until a person has decided on `plan_id` (at once when it was).
    pub async fn wait(&self, plan_id: &str) -> Decided {
        let mut changes = self.changed.subscribe();
        loop {
            if let Ok(state) = self.state.lock()
                && let Some(d) = state.decided.iter().find(|d| d.plan_id == plan_id)
            {
                return d.clone();
            }
            if changes.changed().await.is_err() {
                // The sender lives as long as `self`: not reached while borrowed.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl PlanApprovals for MemoryApprovals {
    fn pending(&self) -> BoxFuture<'_, Result<Vec<PendingPlan>, ApprovalError>> {
        let pending = self.lock().map(|s| s.pending.clone());
        Box::pin(async move { pending })
    }

    fn decided(&self) -> BoxFuture<'_, Result<Vec<Decided>, ApprovalError>> {
        let decided = self
            .lock()
            .map(|s| s.decided.iter().rev().cloned().collect());
        Box::pin(async move { decided })
    }

    fn decide<'a>(
        &'a self,
        plan_id: &'a str,
        by: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<(), ApprovalError>> {
        let outcome = self.lock().and_then(|mut state| {
            let at = state
                .pending
                .iter()
                .position(|p| p.plan_id == plan_id)
                .ok_or_else(|| ApprovalError::NotPending(plan_id.to_string()))?;
            let plan = state.pending.remove(at);
            state.decided.push(Decided {
                plan_id: plan.plan_id,
                plan_json: plan.plan_json,
                decision,
                by: by.to_string(),
                unix_ms: ehr::datetime::now_millis(),
            });
            Ok(())
        });
        if outcome.is_ok() {
            self.changed.send_modify(|n| *n += 1);
        }
        Box::pin(async move { outcome })
    }

    fn allow_list(&self) -> BoxFuture<'_, Result<Vec<String>, ApprovalError>> {
        let list = self.lock().map(|s| s.allowed.iter().cloned().collect());
        Box::pin(async move { list })
    }

    fn set_allowed<'a>(
        &'a self,
        code_hash: &'a str,
        allowed: bool,
        _by: &'a str,
    ) -> BoxFuture<'a, Result<(), ApprovalError>> {
        let outcome = check_hash(code_hash).and_then(|hash| {
            let mut state = self.lock()?;
            if allowed {
                state.allowed.insert(hash.to_string());
            } else {
                state.allowed.remove(hash);
            }
            Ok(())
        });
        Box::pin(async move { outcome })
    }
}

fn store_failed(viewer: &Viewer, e: ApprovalError) -> Refused {
    tracing::error!(error = %e, "console: approvals store failed");
    super::access::unavailable(viewer, "the node's approvals could not be read")
}

fn pending_plan(viewer: &Viewer, p: &PendingPlan, allowed: &[String]) -> Markup {
    let plan = TrainingPlan::from_json(&p.plan_json);
    html! {
        article.plan aria-labelledby={ "plan-" (p.plan_id) } {
            @match &plan {
                Ok(plan) => {
                    h2 id={ "plan-" (p.plan_id) } { (plan.name) }
                    p { "Offered " (layout::utc(p.received_unix_ms)) ". Plan id " span.hash { (p.plan_id) } }
                    @if allowed.contains(&plan.code_hash()) {
                        p.good { "Its code hash is on the allow-list." }
                    } @else {
                        p.bad { "Its code hash is not on the allow-list: approving it adds the hash." }
                    }
                    h3 { "What it reads" }
                    p { "The dataset " strong { (plan.dataset) } " of this hospital, through the training \
                         gate: consented patients only, pseudonymous keys, shifted dates." }
                    h3 { "What leaves the hospital" }
                    (plan_view::disclosed(plan))
                    (plan_view::facts(plan))
                }
                Err(e) => {
                    h2 id={ "plan-" (p.plan_id) } { "Plan " (p.plan_id) }
                    p.bad { "This plan cannot be read: " (e) ". Decline it." }
                }
            }
            form.decision method="post" action={ "/approvals/" (p.plan_id) } {
                (viewer.csrf_field())
                label for={ "reason-" (p.plan_id) } { "Reason (shown to the federation when declining)" }
                input id={ "reason-" (p.plan_id) } type="text" name="reason";
                @if plan.is_ok() { button type="submit" name="decision" value="approve" { "Approve" } }
                " "
                button.secondary type="submit" name="decision" value="decline" { "Decline" }
            }
        }
    }
}

/// Plans waiting, the allow-list, past decisions.
pub(super) async fn page(State(s): State<NodeState>, viewer: Viewer) -> Page {
    viewer.allow(roles::APPROVALS)?;
    let approvals = &s.console.approvals;
    let pending = approvals
        .pending()
        .await
        .map_err(|e| store_failed(&viewer, e))?;
    let decided = approvals
        .decided()
        .await
        .map_err(|e| store_failed(&viewer, e))?;
    let allowed = approvals
        .allow_list()
        .await
        .map_err(|e| store_failed(&viewer, e))?;
    let body = html! {
        section #pending-plans aria-labelledby="h-pending" {
            h2 #h-pending { "Waiting for your decision (" (pending.len()) ")" }
            @if pending.is_empty() { p { "No plan is waiting." } }
            @for p in &pending { (pending_plan(&viewer, p, &allowed)) }
        }
        section aria-labelledby="h-allow" {
            h2 #h-allow { "Allow-list of code hashes" }
            p { "The node answers a plan offer automatically only for code on this list; \
                 everything else waits here." }
            table #allow-list {
                thead { tr { th scope="col" { "Code hash" } th scope="col" { "Remove" } } }
                tbody { @for h in &allowed { tr {
                    td.hash { (h) }
                    td { form method="post" action="/allow-list" {
                        (viewer.csrf_field())
                        input type="hidden" name="code_hash" value=(h);
                        input type="hidden" name="allowed" value="false";
                        button.secondary type="submit" aria-label={ "Remove " (h) } { "Remove" }
                    } }
                } } }
            }
            form.inline method="post" action="/allow-list" {
                (viewer.csrf_field())
                input type="hidden" name="allowed" value="true";
                label for="new-code-hash" { "Add a code hash" }
                input #new-code-hash type="text" name="code_hash" required pattern="[0-9a-f]{64}" size="66";
                button type="submit" { "Add" }
            }
        }
        section aria-labelledby="h-decided" {
            h2 #h-decided { "Decisions" }
            table #decided {
                thead { tr { th scope="col" { "When" } th scope="col" { "Plan" } th scope="col" { "Decision" } th scope="col" { "By" } } }
                tbody { @for d in &decided { tr {
                    td { (layout::utc(d.unix_ms)) }
                    td { (TrainingPlan::from_json(&d.plan_json).map(|p| p.name).unwrap_or_else(|_| d.plan_id.clone())) }
                    td { @match &d.decision {
                        Decision::Approve => { span.good { "approved" } }
                        Decision::Decline(r) => { span.bad { "declined" } " (" (r) ")" }
                    } }
                    td { (d.by) }
                } } }
            }
        }
    };
    Ok(viewer.page("Plan approvals", body))
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
}

fn refused_form(viewer: &Viewer, e: &ApprovalError) -> Refused {
    let page = viewer.page(
        "Not recorded",
        html! { p.error role="alert" { (e.to_string()) } p { a href="/approvals" { "Back to plan approvals" } } },
    );
    (StatusCode::BAD_REQUEST, page).into_response().into()
}

/// Approve or decline a pending plan; approving adds its code hash to the
/// allow-list.
pub(super) async fn decide(
    State(s): State<NodeState>,
    viewer: Viewer,
    Path(plan_id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Page {
    viewer.allow(roles::APPROVALS)?;
    viewer.check_csrf(&form.csrf)?;
    let approvals = &s.console.approvals;
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "decline" => {
            let reason = form.reason.trim();
            Decision::Decline(if reason.is_empty() {
                "declined by the data protection officer".into()
            } else {
                reason.to_string()
            })
        }
        _ => {
            return Err(refused_form(
                &viewer,
                &ApprovalError::Invalid("the decision is approve or decline".into()),
            ));
        }
    };
    if decision == Decision::Approve {
        let pending = approvals
            .pending()
            .await
            .map_err(|e| store_failed(&viewer, e))?;
        let plan = pending
            .iter()
            .find(|p| p.plan_id == plan_id)
            .ok_or_else(|| ApprovalError::NotPending(plan_id.clone()))
            .and_then(|p| {
                TrainingPlan::from_json(&p.plan_json)
                    .map_err(|e| ApprovalError::Invalid(e.to_string()))
            })
            .map_err(|e| refused_form(&viewer, &e))?;
        approvals
            .set_allowed(&plan.code_hash(), true, &viewer.name)
            .await
            .map_err(|e| refused_form(&viewer, &e))?;
    }
    approvals
        .decide(&plan_id, &viewer.name, decision)
        .await
        .map_err(|e| refused_form(&viewer, &e))?;
    tracing::info!(user = %viewer.name, plan = %plan_id, "plan decided in the console");
    Ok((StatusCode::SEE_OTHER, [(LOCATION, "/approvals")]).into_response())
}

#[derive(Deserialize)]
pub(super) struct AllowForm {
    csrf: String,
    code_hash: String,
    allowed: bool,
}

/// Add a code hash to the allow-list or remove one.
pub(super) async fn edit_allow_list(
    State(s): State<NodeState>,
    viewer: Viewer,
    Form(form): Form<AllowForm>,
) -> Page {
    viewer.allow(roles::APPROVALS)?;
    viewer.check_csrf(&form.csrf)?;
    s.console
        .approvals
        .set_allowed(form.code_hash.trim(), form.allowed, &viewer.name)
        .await
        .map_err(|e| refused_form(&viewer, &e))?;
    tracing::info!(user = %viewer.name, allowed = form.allowed, "allow-list edited in the console");
    Ok((StatusCode::SEE_OTHER, [(LOCATION, "/approvals")]).into_response())
}
