//! Who is looking: local accounts (argon2id password hashes in a TOML users
//! file), sessions in HttpOnly SameSite=Strict cookies, a CSRF token per
//! session checked on every form, and the role checks of the pages.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::layout::{self, Frame};
use crate::oidc::Provider;
use crate::roles::Role;

/// How long a session lasts after login.
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Cookie of the session.
const SESSION_COOKIE: &str = "cohort_session";
/// Cookie of the login form's CSRF token (double submit: no session yet).
const LOGIN_COOKIE: &str = "cohort_login";
/// Cookie binding an OpenID Connect login's state to the browser that
/// started it (`SameSite=Lax`: it must come back on the provider's redirect).
const OIDC_COOKIE: &str = "cohort_oidc";

/// Why the users file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a users file.
    #[error("users file: {0}")]
    Invalid(String),
}

/// A local account as the users file holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// What the person does.
    pub role: Role,
    /// Argon2 hash in PHC string form (`$argon2id$v=19$...`).
    pub password_hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(rename = "user", default)]
    users: Vec<Account>,
}

/// The console's local accounts.
#[derive(Clone, Debug, Default)]
pub struct Users {
    accounts: BTreeMap<String, Account>,
}

impl Users {
    /// Accounts from their list (names unique, hashes in PHC form).
    pub fn new(accounts: Vec<Account>) -> Result<Self, UsersError> {
        let mut map = BTreeMap::new();
        for account in accounts {
            PasswordHash::new(&account.password_hash).map_err(|e| {
                UsersError::Invalid(format!("password hash of {}: {e}", account.name))
            })?;
            let name = account.name.clone();
            if map.insert(name.clone(), account).is_some() {
                return Err(UsersError::Invalid(format!("user {name} appears twice")));
            }
        }
        Ok(Users { accounts: map })
    }

    /// Parse a users file: `[[user]]` tables with `name`, `role` and `password_hash`.
    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let file: UsersFile =
            toml::from_str(text).map_err(|e| UsersError::Invalid(e.to_string()))?;
        Self::new(file.users)
    }

    /// Read a users file.
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| UsersError::Invalid(format!("{}: {e}", path.display())))
    }

    /// One account per role, named after it, all with `password` (the demo's).
    pub fn one_per_role(password: &str) -> Self {
        let accounts = Role::ALL
            .iter()
            .map(|role| Account {
                name: role.name().to_string(),
                role: *role,
                password_hash: hash_password(password),
            })
            .collect();
        Self::new(accounts).expect("fresh hashes parse")
    }

    /// The users file's text.
    pub fn to_toml(&self) -> String {
        let file = UsersFile {
            users: self.accounts.values().cloned().collect(),
        };
        toml::to_string(&file).unwrap_or_default()
    }

    /// The role of `name` when `password` is theirs. Unknown names cost a
    /// hash check too, so timing does not tell which names exist.
    pub fn check(&self, name: &str, password: &str) -> Option<Role> {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let (hash, role) = match self.accounts.get(name) {
            Some(a) => (a.password_hash.as_str(), Some(a.role)),
            None => (DUMMY.get_or_init(|| hash_password("")).as_str(), None),
        };
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        role.filter(|_| ok)
    }
}

/// An argon2id hash (default parameters, random salt) of `password`.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16-byte salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// A random token (hex of `N` random bytes), for sessions, CSRF and the
/// demo's password.
pub fn random_token<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}

#[derive(Clone)]
struct Session {
    name: String,
    role: Role,
    csrf: String,
    expires: Instant,
}

/// Accounts, open sessions and how cookies are set.
pub struct Auth {
    users: Users,
    sessions: Mutex<HashMap<String, Session>>,
    secure_cookies: bool,
    oidc: Option<Arc<Provider>>,
}

impl Auth {
    /// Sessions over `users`; `secure_cookies` adds `Secure` (leave it on
    /// unless the console is served over plain HTTP beyond loopback).
    pub fn new(users: Users, secure_cookies: bool) -> Self {
        Auth {
            users,
            sessions: Mutex::new(HashMap::new()),
            secure_cookies,
            oidc: None,
        }
    }

    /// Also let people log in through an OpenID Connect provider.
    pub fn with_oidc(mut self, provider: Option<Arc<Provider>>) -> Self {
        self.oidc = provider;
        self
    }

    fn open(&self, name: String, role: Role) -> String {
        let token = random_token::<32>();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("sessions lock");
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            token.clone(),
            Session {
                name,
                role,
                csrf: random_token::<16>(),
                expires: now + SESSION_LIFETIME,
            },
        );
        token
    }

    fn session(&self, token: &str) -> Option<Session> {
        let sessions = self.sessions.lock().expect("sessions lock");
        sessions
            .get(token)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    fn close(&self, token: &str) {
        self.sessions.lock().expect("sessions lock").remove(token);
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
        self.cookie_with(name, value, path, max_age, "Strict")
    }

    fn cookie_with(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: u64,
        same_site: &str,
    ) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
        ))
        .expect("cookie is ASCII")
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The logged-in person of a request, with the console's frame to draw pages.
pub struct Viewer {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    csrf: String,
    pub(crate) frame: Arc<Frame>,
}

impl Viewer {
    /// Refuse (403 page) unless the viewer's role is one of `roles`.
    pub fn allow(&self, roles: &[Role]) -> Result<(), Refused> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        Err(self.refuse(
            html! { "This page is not open to the role " strong { (self.role.label()) } "." },
        ))
    }

    /// The 403 page saying why the viewer is refused.
    pub fn refuse(&self, why: Markup) -> Refused {
        let body = html! {
            p { (why) }
            p { a href="/" { "Back to the overview" } }
        };
        let page = self.page("Not allowed", body);
        (StatusCode::FORBIDDEN, page).into_response().into()
    }

    /// Refuse (403) a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), Refused> {
        if constant_time_eq(token.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(
                (StatusCode::FORBIDDEN, "the form's CSRF token is not valid")
                    .into_response()
                    .into(),
            )
        }
    }

    /// The hidden CSRF field every form of the viewer's pages carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// A whole page in the console's layout.
    pub fn page(&self, title: &str, body: Markup) -> Response {
        layout::page(&self.frame, title, Some(self), body)
    }
}

/// A response that ends a handler early: a refusal or an error page.
pub struct Refused(Box<Response>);

impl From<Response> for Refused {
    fn from(response: Response) -> Self {
        Refused(Box::new(response))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Not logged in: to the login page, coming back here afterwards.
pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        let target = format!("/login?next={}", encode_component(&self.0));
        (StatusCode::SEE_OTHER, [(LOCATION, target)]).into_response()
    }
}

fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl<S> FromRequestParts<S> for Viewer
where
    Arc<Frame>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = LoginRedirect;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let frame = Arc::<Frame>::from_ref(state);
        let session = cookie(&parts.headers, SESSION_COOKIE).and_then(|t| frame.auth.session(t));
        match session {
            Some(s) => Ok(Viewer {
                name: s.name,
                role: s.role,
                csrf: s.csrf,
                frame,
            }),
            None => Err(LoginRedirect(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/".into(), |p| p.to_string()),
            )),
        }
    }
}

/// Login and logout routes.
pub fn routes<S>() -> Router<S>
where
    Arc<Frame>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/login/oidc", get(oidc_start))
        .route("/login/oidc/callback", get(oidc_callback))
        .route("/logout", post(logout))
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only paths of this site: no scheme, no `//host`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn login_page(frame: &Frame, next: &str, error: Option<&str>) -> Response {
    let token = random_token::<16>();
    let body = html! {
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label for="user" { "User name" }
            input #user type="text" name="user" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
        @if let Some(provider) = &frame.auth.oidc {
            p.sso { a.button href={ "/login/oidc?next=" (encode_component(next)) } { (provider.label()) } }
        }
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut response = (status, layout::page(frame, "Log in", None, body)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        frame.auth.cookie(LOGIN_COOKIE, &token, "/login", 3600),
    );
    response
}

async fn login_form(State(frame): State<Arc<Frame>>, Query(q): Query<Next>) -> Response {
    login_page(&frame, safe_next(q.next.as_deref()), None)
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

async fn login(
    State(frame): State<Arc<Frame>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return login_page(
            &frame,
            &next,
            Some("The form expired: please log in again."),
        );
    }
    let checker = frame.clone();
    let user = form.user.clone();
    let role = tokio::task::spawn_blocking(move || checker.auth.users.check(&user, &form.password))
        .await
        .ok()
        .flatten();
    let Some(role) = role else {
        tracing::info!(user = %form.user, "console login refused");
        return login_page(&frame, &next, Some("Unknown user or wrong password."));
    };
    tracing::info!(user = %form.user, role = role.name(), "console login");
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, next)]).into_response();
    start_session(&frame, &mut response, form.user, role);
    response
}

/// Open a session for `name` and set its cookie on `response` (the login
/// form's cookie goes).
fn start_session(frame: &Frame, response: &mut Response, name: String, role: Role) {
    let token = frame.auth.open(name, role);
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        frame
            .auth
            .cookie(SESSION_COOKIE, &token, "/", SESSION_LIFETIME.as_secs()),
    );
    headers.append(SET_COOKIE, frame.auth.cookie(LOGIN_COOKIE, "", "/login", 0));
}

/// Send the browser to the OpenID Connect provider (404 when none is configured).
async fn oidc_start(State(frame): State<Arc<Frame>>, Query(q): Query<Next>) -> Response {
    let Some(provider) = &frame.auth.oidc else {
        return layout::not_found(State(frame.clone())).await;
    };
    let (url, state) = provider.start(safe_next(q.next.as_deref()));
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        frame
            .auth
            .cookie_with(OIDC_COOKIE, &state, "/login/oidc", 600, "Lax"),
    );
    response
}

#[derive(Deserialize)]
struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// The provider's redirect back: check the state against the browser's
/// cookie, finish the login, open a session.
async fn oidc_callback(
    State(frame): State<Arc<Frame>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(provider) = frame.auth.oidc.clone() else {
        return layout::not_found(State(frame.clone())).await;
    };
    let bound = cookie(&headers, OIDC_COOKIE).unwrap_or_default();
    let outcome = match (q.state.as_deref(), q.code.as_deref(), q.error.as_deref()) {
        (_, _, Some(error)) => Err(format!(
            "The identity provider refused the login ({error})."
        )),
        (Some(state), Some(code), None)
            if !bound.is_empty() && constant_time_eq(bound.as_bytes(), state.as_bytes()) =>
        {
            provider.finish(state, code).await.map_err(|e| {
                tracing::info!(error = %e, "OpenID Connect login refused");
                format!("{e}.")
            })
        }
        _ => Err("This login was not started in this browser: please log in again.".into()),
    };
    let mut response = match outcome {
        Ok(done) => {
            tracing::info!(user = %done.name, role = done.role.name(), "console login (OpenID Connect)");
            let next = safe_next(Some(done.next.as_str())).to_string();
            // A page, not a redirect: the session cookie is SameSite=Strict, and
            // a redirect chain that began at the provider would not send it.
            let body = html! {
                (maud::DOCTYPE)
                html lang="en" { head {
                    meta charset="utf-8";
                    meta http-equiv="refresh" content={ "0;url=" (next) };
                    title { "Logged in" }
                } body { main { p { "Logged in. " a href=(next) { "Continue" } } } } }
            };
            let mut response = axum::response::Html(body.into_string()).into_response();
            start_session(&frame, &mut response, done.name, done.role);
            response
        }
        Err(message) => login_page(&frame, "/", Some(&message)),
    };
    response.headers_mut().append(
        SET_COOKIE,
        frame
            .auth
            .cookie_with(OIDC_COOKIE, "", "/login/oidc", 0, "Lax"),
    );
    response
}

/// A form that carries nothing but the session's CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    /// The token.
    pub(crate) csrf: String,
}

async fn logout(viewer: Viewer, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = viewer.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        viewer.frame.auth.close(token);
    }
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        viewer.frame.auth.cookie(SESSION_COOKIE, "", "/", 0),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_check_against_their_hash_only() {
        let users = Users::one_per_role("s3cret");
        assert_eq!(users.check("dpo", "s3cret"), Some(Role::Dpo));
        assert_eq!(users.check("dpo", "wrong"), None);
        assert_eq!(users.check("nobody", "s3cret"), None);
    }

    #[test]
    fn users_file_round_trips_and_rejects_bad_hashes() {
        let users = Users::one_per_role("pw");
        let again = Users::parse(&users.to_toml()).unwrap();
        assert_eq!(again.check("auditor", "pw"), Some(Role::Auditor));
        let bad = "[[user]]\nname = \"a\"\nrole = \"dpo\"\npassword_hash = \"plain\"\n";
        assert!(Users::parse(bad).is_err());
        let unknown_role = "[[user]]\nname = \"a\"\nrole = \"root\"\npassword_hash = \"x\"\n";
        assert!(Users::parse(unknown_role).is_err());
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/ledger?from=3")), "/ledger?from=3");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
