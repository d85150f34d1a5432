//! The web console: server-rendered pages for the people of a federation —
//! clinicians, billing officers, hospitals' data protection officers, the
//! federation's data scientists and external auditors — mounted by the
//! coordinator (plans, live rounds, privacy budgets, the ledger explorer).
//!
//! Pages are HTML from maud templates (checked at compile time) and work
//! without JavaScript; htmx and uPlot, vendored from npm, are embedded in the
//! binary and add live rounds, a chart and in-page actions. People log in
//! with local accounts ([`auth::Users`], argon2id hashes in a TOML file);
//! each account has a [`Role`], and each page says which roles it is for.

mod assets;
pub mod auth;
pub mod coordinator;
pub mod layout;
pub mod node;
pub mod oidc;
mod plan_view;
pub mod roles;
#[cfg(test)]
mod testing;
// The node console's fixtures (shared with its example server) name the crate.
#[cfg(test)]
extern crate self as console;

use std::net::SocketAddr;

pub use auth::{Users, UsersError};
pub use roles::Role;

/// How a service serves its console.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// Address of the console's HTTP listener (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Who may log in.
    pub users: Users,
    /// Mark cookies `Secure` (browsers keep them on https and on loopback).
    pub secure_cookies: bool,
    /// Logins through the organisation's OpenID Connect provider, besides local accounts
    /// (discovered when the console starts).
    pub oidc: Option<oidc::OidcConfig>,
}

impl ConsoleSettings {
    /// A console on `listen` for the accounts of `users_file` (`[[user]]` name, role, argon2
    /// `password_hash`), with `Secure` cookies: what a service's TOML configuration names.
    ///
    /// # Errors
    /// The users file's.
    pub fn from_users_file(
        listen: SocketAddr,
        users_file: &std::path::Path,
    ) -> Result<Self, auth::UsersError> {
        Ok(ConsoleSettings {
            listen,
            users: Users::load(users_file)?,
            secure_cookies: true,
            oidc: None,
        })
    }
}

/// The provider of `settings`' OpenID Connect configuration, discovered; `None` without one.
///
/// # Errors
/// Discovery at the provider failed.
pub async fn oidc_provider(
    settings: &ConsoleSettings,
) -> Result<Option<std::sync::Arc<oidc::Provider>>, oidc::OidcError> {
    match &settings.oidc {
        Some(config) => Ok(Some(std::sync::Arc::new(
            oidc::Provider::discover(config.clone()).await?,
        ))),
        None => Ok(None),
    }
}

/// Serve `router` on `listener` until the task is dropped or aborted.
pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router) {
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the console stopped");
    }
}
