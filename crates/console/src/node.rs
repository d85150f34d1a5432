//! The node console: each hospital's own pages, built from the handles the
//! node gives it ([`NodeConsole`]) so that the node only mounts [`router`].
//!
//! - Patients: search by name or identifier, the chart (demographics,
//!   conditions, medications, allergies, notes and documents, encounters,
//!   ultrasound studies, consents) and an ultrasound frame viewer that shows
//!   frames rendered as PNG by the imaging service (what WADO-RS `rendered`
//!   serves).
//! - A visit (`/encounters/{id}`): its transcript, the consultation note
//!   drafted from it on the node and signed by the clinician.
//! - Coding a visit (`/encounters/{id}/coding`): the note with the codes
//!   the node's code model suggests and their evidence; the ticked codes
//!   become the Claim.
//! - Consent: the patients' Consent resources, which of them keep a patient
//!   out of training, recording a refusal or a permission, withdrawing one.
//! - Plans awaiting the data protection officer's decision (what they read
//!   and disclose), the allow-list of code hashes, and past decisions, over a
//!   [`PlanApprovals`] store the node implements.
//! - The disclosures log: every message that left the hospital
//!   ([`DisclosureLog`]).
//! - The access log: the latest AuditEvents.
//!
//! Each role reaches what its FHIR scopes ([`Role::fhir_scopes`]) grant: a
//! page or a chart section needs the scope for its resource type, and a page
//! refused is a 403 page. Every page that shows patient data is recorded as
//! a FHIR AuditEvent in the EHR before it is sent, and is not sent when the
//! record fails.

mod access;
mod approvals;
mod coding;
mod consent;
mod dictation;
mod disclosures;
mod patients;
mod visit;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::{get, post};
use maud::html;

use crate::auth::{self, Auth, Refused, Viewer};
use crate::layout::{self, Frame, NavItem};
use crate::oidc::Provider;
use crate::roles::{self, Role};
use crate::{ConsoleSettings, assets};

pub use approvals::{
    ApprovalError, Decided, Decision, MemoryApprovals, PendingPlan, PlanApprovals,
};
pub use dictation::{Transcription, Upload};
pub use disclosures::{Disclosure, DisclosureLog};

/// What the node gives its console.
pub struct NodeConsole {
    /// The hospital's name (the node's name in the federation).
    pub hospital: String,
    /// The hospital's FHIR store: patients, consents, AuditEvents.
    pub ehr: ehr::Store,
    /// The imaging service, when the node receives ultrasound studies.
    pub images: Option<Arc<imaging::Imaging>>,
    /// The log of what left the hospital.
    pub disclosures: Arc<dyn DisclosureLog>,
    /// Plans waiting for the data protection officer, and the allow-list.
    pub approvals: Arc<dyn PlanApprovals>,
    /// Logins through the hospital's OpenID Connect provider, besides local
    /// accounts.
    pub oidc: Option<Arc<Provider>>,
    /// Folder of code model folders (`billing::Coder::save` form; the newest by name codes
    /// visits): the final models of coding plans, or `cohort billing train` output.
    pub coding_models: Option<std::path::PathBuf>,
    /// Speech-to-text into the record, when the node has a speech model: the visit page
    /// takes recordings.
    pub dictation: Option<Arc<dyn Transcription>>,
}

#[derive(Clone)]
struct NodeState {
    frame: Arc<Frame>,
    console: Arc<NodeConsole>,
    coders: Arc<coding::CoderCache>,
}

impl FromRef<NodeState> for Arc<Frame> {
    fn from_ref(state: &NodeState) -> Self {
        state.frame.clone()
    }
}

/// Roles whose scopes read patients (the patient pages).
const PATIENT_READERS: &[Role] = &[Role::Clinician, Role::Billing, Role::Dpo];
/// Roles whose scopes read Consent.
const CONSENT_READERS: &[Role] = &[Role::Dpo];
/// Roles whose scopes read AuditEvents.
const AUDIT_READERS: &[Role] = &[Role::Dpo, Role::Auditor];

const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: "Overview",
        roles: &Role::ALL,
    },
    NavItem {
        href: "/patients",
        label: "Patients",
        roles: PATIENT_READERS,
    },
    NavItem {
        href: "/consent",
        label: "Consent",
        roles: CONSENT_READERS,
    },
    NavItem {
        href: "/approvals",
        label: "Plan approvals",
        roles: roles::APPROVALS,
    },
    NavItem {
        href: "/disclosures",
        label: "Disclosures",
        roles: roles::DISCLOSURES,
    },
    NavItem {
        href: "/access-log",
        label: "Access log",
        roles: AUDIT_READERS,
    },
];

/// The node console's routes (serve them on the node's console listener).
pub fn router(console: NodeConsole, settings: &ConsoleSettings) -> Router {
    let auth =
        Auth::new(settings.users.clone(), settings.secure_cookies).with_oidc(console.oidc.clone());
    // Recordings are larger than forms: the node's limit (2 MiB, axum's default, without one).
    let dictation_limit = console
        .dictation
        .as_ref()
        .map_or(2 << 20, |d| d.max_bytes());
    let state = NodeState {
        frame: Arc::new(Frame {
            site: format!("node {}", console.hospital),
            nav: NAV,
            auth,
        }),
        console: Arc::new(console),
        coders: Arc::default(),
    };
    Router::new()
        .route("/", get(overview))
        .route("/patients", get(patients::search))
        .route("/patients/{id}", get(patients::chart))
        .route(
            "/patients/{id}/imaging/{study}/{series}/{instance}",
            get(patients::viewer),
        )
        .route(
            "/patients/{id}/imaging/{study}/{series}/{instance}/frames/{frame}/rendered",
            get(patients::rendered),
        )
        .route("/consent", get(consent::list).post(consent::record))
        .route("/consent/{id}/status", post(consent::set_status))
        .route("/encounters/{id}", get(visit::page))
        .route("/encounters/{id}/draft", post(visit::draft))
        .route(
            "/encounters/{id}/dictation",
            post(dictation::upload).layer(axum::extract::DefaultBodyLimit::max(dictation_limit)),
        )
        .route("/encounters/{id}/sign", post(visit::sign))
        .route("/encounters/{id}/coding", get(coding::page))
        .route("/encounters/{id}/claim", post(coding::claim))
        .route("/approvals", get(approvals::page))
        .route("/approvals/{plan_id}", post(approvals::decide))
        .route("/allow-list", post(approvals::edit_allow_list))
        .route("/disclosures", get(disclosures::page))
        .route("/access-log", get(access::log_page))
        .merge(auth::routes())
        .fallback(layout::not_found)
        .with_state(state)
        .merge(assets::routes())
        .layer(axum::middleware::from_fn(layout::security_headers))
}

type Page = Result<Response, Refused>;

async fn overview(State(s): State<NodeState>, viewer: Viewer) -> Response {
    let pending = if viewer.allow(roles::APPROVALS).is_ok() {
        s.console.approvals.pending().await.ok().map(|p| p.len())
    } else {
        None
    };
    let body = html! {
        p { "The console of " strong { (s.console.hospital) } "'s node. You are logged in as "
            (viewer.role.label()) "; your pages are in the bar above." }
        @if let Some(n) = pending {
            p #pending { @if n == 0 { "No plan is waiting for your decision." }
                @else { a href="/approvals" { (n) " plan" @if n > 1 { "s" } " waiting for your decision" } } }
        }
        @if viewer.role == Role::DataScientist {
            p { "The node's pages show this hospital's patients and decisions; the federation's \
                 plans and rounds are on the coordinator's console." }
        }
    };
    viewer.page("Overview", body)
}

#[cfg(test)]
mod tests;
