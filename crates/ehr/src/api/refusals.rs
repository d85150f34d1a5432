//! Refused requests leave a trace: every answer 401, 403 or 405 is recorded as an AuditEvent
//! with a failure outcome, naming the token (when it is a known one), the client's address,
//! what was asked for and why it was refused.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::EhrState;
use super::caller::{bearer_token, client_address};
use super::response::Refusal;
use crate::audit::{self, Action};
use crate::auth::Principal;
use crate::error::Result;
use crate::types;

/// Middleware: passes the request on and records the answer if it is a refusal.
pub async fn audit_refusals(
    State(state): State<EhrState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let token = bearer_token(request.headers()).map(str::to_string);
    let address = client_address(request.extensions());
    let response = next.run(request).await;
    let status = response.status();
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED
    ) {
        let reason = response
            .extensions()
            .get::<Refusal>()
            .map_or_else(|| status.to_string(), |r| r.0.clone());
        let refused = Refused {
            method: &method,
            path: &path,
            token: token.as_deref(),
            address: address.as_deref(),
            reason,
        };
        if let Err(error) = refused.record(&state).await {
            tracing::error!(%error, "cannot record a refused FHIR request");
        }
    }
    response
}

/// One refused request.
struct Refused<'a> {
    method: &'a Method,
    path: &'a str,
    token: Option<&'a str>,
    address: Option<&'a str>,
    reason: String,
}

impl Refused<'_> {
    async fn record(self, state: &EhrState) -> Result<()> {
        let known = match self.token {
            Some(token) => state.store().authenticate(token).await.ok(),
            None => None,
        };
        let principal = known.unwrap_or_else(|| Principal {
            name: "unauthenticated".to_string(),
            scopes: Vec::new(),
            patient: None,
        });
        let segments: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        let target = segments.first().and_then(|t| types::resource_type(t).ok());
        let id = segments
            .get(1)
            .filter(|s| !s.starts_with(['_', '$']))
            .copied();
        let (action, interaction) = match (self.method, target, id) {
            (&Method::GET, _, Some(_)) => (Action::Read, "read"),
            (&Method::GET, _, None) => (Action::Read, "search-type"),
            (&Method::POST, Some(_), None) if segments.get(1) == Some(&"_search") => {
                (Action::Read, "search-type")
            }
            (&Method::POST, Some(_), _) => (Action::Create, "create"),
            (&Method::PUT, ..) => (Action::Update, "update"),
            (&Method::DELETE, ..) => (Action::Delete, "delete"),
            _ => (Action::Execute, "operation"),
        };
        let mut access = audit::Access {
            principal: &principal,
            address: self.address,
            action,
            interaction,
            resources: Vec::new(),
            patients: Vec::new(),
            query: None,
            success: false,
            description: Some(format!("refused: {}", self.reason)),
        };
        match (target, id) {
            (Some(t), Some(id)) => {
                access.resources.push(format!("{t}/{id}"));
                if t == "Patient" {
                    access.patients.push(id.to_string());
                }
            }
            (Some(t), None) => access.resources.push(t.to_string()),
            (None, _) => {}
        }
        let mut tx = state.store().begin_short().await?;
        let event = audit::audit_event(&access, &state.config().observer, tx.now());
        tx.create(event).await?;
        tx.commit().await
    }
}
