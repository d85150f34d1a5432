//! The caller of a request: authenticated principal, client address, the base URL to answer
//! with; and the authorization and audit steps every handler shares.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, header};
use serde_json::Value;

use super::EhrState;
use super::response::ApiError;
use crate::audit::{self, Action};
use crate::auth::{Access, Interaction, Principal};
use crate::error::{Error, Result};
use crate::search::extract;
use crate::store::Tx;
use crate::types;

/// An authenticated request's context.
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// The client's IP address, when the server was started with connect info.
    pub address: Option<String>,
    /// The base URL of this FHIR server as the client sees it (no trailing slash).
    pub base: String,
}

impl FromRequestParts<EhrState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &EhrState) -> Result<Self, ApiError> {
        check_format(parts)?;
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            Error::Unauthorized("this FHIR server needs an Authorization: Bearer token".into())
        })?;
        let principal = state.store().authenticate(token).await?;
        Ok(Caller {
            principal,
            address: client_address(&parts.extensions),
            base: base_url(parts, state),
        })
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The client's IP address, when the server was started with connect info.
pub fn client_address(extensions: &Extensions) -> Option<String> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// Refuses requests for formats other than JSON (`Accept`, `_format`).
fn check_format(parts: &Parts) -> Result<()> {
    let format = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "_format")
                .map(|(_, v)| v)
        });
    if let Some(format) = format
        && !format.contains("json")
    {
        return Err(Error::NotAcceptable(format!(
            "_format={format} is not supported; this server speaks JSON only"
        )));
    }
    // A Binary is also served as its own content (see `instance::read`).
    let binary =
        parts.method == axum::http::Method::GET && parts.uri.path().starts_with("/Binary/");
    if !binary && let Some(accept) = non_json_accept(&parts.headers) {
        return Err(Error::NotAcceptable(format!(
            "Accept: {accept} cannot be served; this server produces application/fhir+json"
        )));
    }
    Ok(())
}

/// The `Accept` header when it admits no JSON (and so no FHIR resource).
pub fn non_json_accept(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|accept| {
            !accept.is_empty()
                && !accept.contains("json")
                && !accept.contains("*/*")
                && !accept.contains("application/*")
        })
}

/// The configured base URL, or `scheme://host/prefix` where prefix is where the router is
/// mounted.
pub fn base_url(parts: &Parts, state: &EhrState) -> String {
    if let Some(base) = &state.config().base_url {
        return base.trim_end_matches('/').to_string();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    let inner = parts.uri.path();
    let prefix = parts
        .extensions
        .get::<OriginalUri>()
        .and_then(|OriginalUri(original)| original.path().strip_suffix(inner).map(str::to_string))
        .unwrap_or_default();
    format!("{scheme}://{host}{}", prefix.trim_end_matches('/'))
}

/// The ids of the patients whose compartment holds `resource`.
pub fn patients_of(resource_type: &str, id: &str, resource: &Value) -> Vec<String> {
    if !types::is_patient_data(resource_type) {
        return Vec::new();
    }
    extract::extract(resource_type, id, resource)
        .map(|e| e.compartments)
        .unwrap_or_default()
}

impl Caller {
    /// Checks `interaction` on an existing or new `resource`; with a patient scope it must be in
    /// the token's patient's compartment.
    pub fn authorize(
        &self,
        resource_type: &str,
        id: &str,
        interaction: Interaction,
        resource: &Value,
    ) -> Result<()> {
        match self.principal.access(resource_type, interaction)? {
            Access::All => Ok(()),
            Access::Compartment(patient) => {
                if patients_of(resource_type, id, resource).contains(&patient) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(format!(
                        "{resource_type}/{id} is outside the compartment of Patient/{patient}, the only patient this token reaches"
                    )))
                }
            }
        }
    }

    /// An audit record of this caller.
    pub fn access<'a>(&'a self, action: Action, interaction: &'a str) -> audit::Access<'a> {
        audit::Access {
            principal: &self.principal,
            address: self.address.as_deref(),
            action,
            interaction,
            resources: Vec::new(),
            patients: Vec::new(),
            query: None,
            success: true,
            description: None,
        }
    }

    /// Records `access` within the write transaction `tx` (all-or-nothing with the write).
    pub async fn audit_in(
        &self,
        state: &EhrState,
        tx: &mut Tx,
        access: &audit::Access<'_>,
    ) -> Result<()> {
        if access.patients.is_empty() && access.resources.iter().all(|r| !is_patient_reference(r)) {
            return Ok(());
        }
        let event = audit::audit_event(access, &state.config().observer, tx.now());
        tx.create(event).await.map(|_| ())
    }

    /// Records `access` (a read) in a short transaction of its own; the read fails if this
    /// fails.
    pub async fn audit(&self, state: &EhrState, access: &audit::Access<'_>) -> Result<()> {
        let mut tx = state.store().begin_short().await?;
        self.audit_in(state, &mut tx, access).await?;
        tx.commit().await
    }
}

fn is_patient_reference(reference: &str) -> bool {
    reference
        .split('/')
        .next()
        .is_some_and(types::is_patient_data)
}
