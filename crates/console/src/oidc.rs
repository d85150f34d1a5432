//! Logins through the hospital's OpenID Connect provider: the authorization
//! code flow with PKCE (S256), a nonce and a state bound to the browser by a
//! cookie, the ID token's signature checked against the provider's JWKS, its
//! issuer, audience, expiry and nonce checked (crate `openidconnect`), and
//! one claim of the ID token mapped onto a console role.
//!
//! Configured in TOML (e.g. the node's `[console.oidc]` table):
//!
//! ```toml
//! issuer = "https://idp.hospital.example/realms/staff"
//! client_id = "cohort-console"
//! client_secret = "..."            # omit for a public client (PKCE only)
//! redirect_url = "https://node.hospital.example:8091/login/oidc/callback"
//! role_claim = "groups"            # a dotted path reaches nested claims: "realm_access.roles"
//! [roles]                          # claim value -> console role; the first match wins
//! "cardiology-clinicians" = "clinician"
//! "dpo" = "dpo"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::Deserialize;
use serde_json::Value;

use crate::roles::Role;

/// How long a login may take at the provider.
const LOGIN_LIFETIME: Duration = Duration::from_secs(600);

/// The provider's settings and the mapping of one claim onto roles.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The console's client id at the provider.
    pub client_id: String,
    /// The client secret of a confidential client; none for a public one.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: this console's
    /// `/login/oidc/callback`, as registered at the provider.
    pub redirect_url: String,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim holding the person's groups or roles (a string or
    /// a list of strings; dots reach into nested objects).
    pub role_claim: String,
    /// Claim values and the console role each gives; the first value (in
    /// the claim's order) with a role wins.
    pub roles: BTreeMap<String, Role>,
    /// The claim naming the person in the console and its audit records.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// The login button's text.
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into()]
}

fn default_name_claim() -> String {
    "preferred_username".into()
}

fn default_label() -> String {
    "Log in with the hospital's account".into()
}

/// Why an OpenID Connect login failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The settings are not usable.
    #[error("OpenID Connect settings: {0}")]
    Config(String),
    /// The provider's discovery document or keys could not be fetched.
    #[error("OpenID Connect discovery at {issuer}: {reason}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// The login was not started here, expired, or its state does not match.
    #[error("this login was not started here or has expired: please log in again")]
    UnknownLogin,
    /// The provider refused to exchange the code, or its answer is not valid.
    #[error("the identity provider's answer was refused: {0}")]
    Token(String),
    /// The person's claims give no console role.
    #[error("your account at the identity provider has no role in this console")]
    NoRole,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct PendingLogin {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    next: String,
    expires: Instant,
}

/// A discovered provider and the logins under way at it.
pub struct Provider {
    config: OidcConfig,
    client: Client,
    http: openidconnect::reqwest::Client,
    pending: Mutex<HashMap<String, PendingLogin>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// A successful login: who, in which role, and where to go next.
#[derive(Debug, PartialEq, Eq)]
pub struct LoggedIn {
    /// The person's name (the name claim, else the subject).
    pub name: String,
    /// Their console role.
    pub role: Role,
    /// The local path they asked for before logging in.
    pub next: String,
}

impl Provider {
    /// Fetch the provider's discovery document and keys.
    pub async fn discover(config: OidcConfig) -> Result<Self, OidcError> {
        let bad = |e: &dyn std::fmt::Display| OidcError::Config(e.to_string());
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| bad(&e))?;
        let redirect = RedirectUrl::new(config.redirect_url.clone()).map_err(|e| bad(&e))?;
        if config.roles.is_empty() {
            return Err(OidcError::Config(
                "no claim value is mapped to a role".into(),
            ));
        }
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would open the door to SSRF (openidconnect's advice).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| bad(&e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Discovery {
                issuer: config.issuer.clone(),
                reason: error_chain(&e),
            })?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        Ok(Provider {
            config,
            client,
            http,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The login button's text.
    pub fn label(&self) -> &str {
        &self.config.label
    }

    /// Start a login that returns to `next`: the provider's authorization
    /// URL to send the browser to, and the state to bind to the browser.
    pub fn start(&self, next: &str) -> (String, String) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let now = Instant::now();
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|_, p| p.expires > now);
            pending.insert(
                state.secret().clone(),
                PendingLogin {
                    verifier,
                    nonce,
                    next: next.to_string(),
                    expires: now + LOGIN_LIFETIME,
                },
            );
        }
        (url.to_string(), state.secret().clone())
    }

    /// Finish the login of `state` with the provider's `code`: exchange it
    /// (with the PKCE verifier), check the ID token and map its claim to a role.
    pub async fn finish(&self, state: &str, code: &str) -> Result<LoggedIn, OidcError> {
        let login = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(state))
            .filter(|p| p.expires > Instant::now())
            .ok_or(OidcError::UnknownLogin)?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Token(e.to_string()))?
            .set_pkce_verifier(login.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Token(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Token("no ID token in the answer".into()))?;
        let verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &login.nonce)
            .map_err(|e| OidcError::Token(error_chain(&e)))?;
        // The token's signature, issuer, audience, expiry and nonce are
        // checked: read the mapped claims from its (verified) payload.
        let payload = payload(&id_token.to_string())
            .ok_or_else(|| OidcError::Token("the ID token's payload is not JSON".into()))?;
        let role = role_of(&payload, &self.config).ok_or(OidcError::NoRole)?;
        let name = claim(&payload, &self.config.name_claim)
            .and_then(Value::as_str)
            .map_or_else(|| claims.subject().to_string(), str::to_string);
        Ok(LoggedIn {
            name,
            role,
            next: login.next,
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The JSON payload of a compact JWT.
fn payload(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The claim at a dotted `path`.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

/// The role the configured claim gives: its first value (a string, or each
/// string of a list, in order) that the mapping names.
fn role_of(claims: &Value, config: &OidcConfig) -> Option<Role> {
    let values: Vec<&str> = match claim(claims, &config.role_claim)? {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    values.iter().find_map(|v| config.roles.get(*v).copied())
}

#[cfg(test)]
mod tests;
