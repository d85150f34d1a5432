//! Logins against a small identity provider on loopback: discovery, JWKS,
//! an authorization endpoint that remembers each code's PKCE challenge and
//! nonce, and a token endpoint that checks the verifier and signs an RS256
//! ID token with `test-idp-key.pem` (a key made for these tests only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::html;
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AdditionalClaims, Audience, EndUserUsername, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use super::*;
use crate::auth::{Auth, Viewer};
use crate::layout::Frame;
use crate::testing::{get as get_with, send};
use crate::{Users, auth};

const CLIENT_ID: &str = "cohort-console";
const REDIRECT: &str = "https://node.test/login/oidc/callback";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Groups {
    groups: Vec<String>,
}
impl AdditionalClaims for Groups {}

struct Grant {
    challenge: String,
    nonce: String,
}

struct Idp {
    issuer: String,
    key: CoreRsaPrivateSigningKey,
    /// The groups of whoever logs in next.
    groups: Mutex<Vec<String>>,
    codes: Mutex<HashMap<String, Grant>>,
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Json<serde_json::Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<Arc<Idp>>) -> Json<CoreJsonWebKeySet> {
    Json(CoreJsonWebKeySet::new(vec![idp.key.as_verification_key()]))
}

async fn authorize(
    State(idp): State<Arc<Idp>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("scope")
            .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    let (Some(challenge), Some(nonce), Some(state), Some(redirect), true) = (
        q.get("code_challenge"),
        q.get("nonce"),
        q.get("state"),
        q.get("redirect_uri"),
        ok,
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "not an OIDC code flow request with PKCE",
        )
            .into_response();
    };
    let code = crate::auth::random_token::<16>();
    idp.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: challenge.clone(),
            nonce: nonce.clone(),
        },
    );
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

async fn token(State(idp): State<Arc<Idp>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let refuse = |e: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    let Some(grant) = f
        .get("code")
        .and_then(|c| idp.codes.lock().unwrap().remove(c))
    else {
        return refuse("invalid_grant");
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    if computed != grant.challenge || f.get("redirect_uri").map(String::as_str) != Some(REDIRECT) {
        return refuse("invalid_grant");
    }
    let now = chrono::Utc::now();
    let claims = IdTokenClaims::new(
        IssuerUrl::new(idp.issuer.clone()).unwrap(),
        vec![Audience::new(CLIENT_ID.into())],
        now + chrono::Duration::minutes(5),
        now,
        StandardClaims::<CoreGenderClaim>::new(SubjectIdentifier::new("u-17".into()))
            .set_preferred_username(Some(EndUserUsername::new("dr-martin".into()))),
        Groups {
            groups: idp.groups.lock().unwrap().clone(),
        },
    )
    .set_nonce(Some(Nonce::new(grant.nonce)));
    let id_token = IdToken::<
        Groups,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >::new(
        claims,
        &idp.key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .unwrap();
    Json(
        json!({"access_token": "opaque", "token_type": "Bearer", "expires_in": 300,
        "id_token": id_token.to_string()}),
    )
    .into_response()
}

async fn start_idp() -> Arc<Idp> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let idp = Arc::new(Idp {
        issuer,
        key: CoreRsaPrivateSigningKey::from_pem(
            include_str!("test-idp-key.pem"),
            Some(JsonWebKeyId::new("k1".into())),
        )
        .unwrap(),
        groups: Mutex::new(Vec::new()),
        codes: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    idp
}

fn config(issuer: &str) -> OidcConfig {
    let text = format!(
        r#"issuer = "{issuer}"
client_id = "{CLIENT_ID}"
redirect_url = "{REDIRECT}"
role_claim = "groups"
[roles]
"cardiology-clinicians" = "clinician"
"privacy-office" = "dpo"
"#
    );
    toml::from_str(&text).unwrap()
}

/// A console of one page, `/`, that names who is logged in.
async fn console(idp: &Idp) -> Router {
    let provider = Provider::discover(config(&idp.issuer)).await.unwrap();
    let frame = Arc::new(Frame {
        site: "test".into(),
        nav: &[],
        auth: Auth::new(Users::default(), true).with_oidc(Some(Arc::new(provider))),
    });
    Router::new()
        .route(
            "/",
            get(|v: Viewer| async move {
                let body = html! { p #who { (v.name) " " (v.role.name()) } };
                v.page("Home", body)
            }),
        )
        .merge(auth::routes())
        .with_state(frame)
}

fn header(response: &axum::http::HeaderMap, name: &str) -> String {
    response[name].to_str().unwrap().to_string()
}

/// `/login/oidc`: the provider's URL and the state cookie.
async fn start(app: &Router) -> (String, String) {
    let (status, headers, _) = send(app, get_with("/login/oidc?next=/", "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = crate::testing::set_cookie(&headers, "cohort_oidc");
    let line = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("cohort_oidc="))
        .unwrap()
        .to_string();
    assert!(line.contains("SameSite=Lax") && line.contains("HttpOnly"));
    (header(&headers, "location"), cookie)
}

/// The browser at the provider: the redirect back to the console's callback
/// (path and query).
async fn at_provider(url: &str) -> String {
    let client = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    location
        .strip_prefix("https://node.test")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_provider_login_maps_the_group_claim_to_a_role() {
    let idp = start_idp().await;
    *idp.groups.lock().unwrap() = vec!["staff".into(), "cardiology-clinicians".into()];
    let app = console(&idp).await;
    let (_, _, page) = send(&app, get_with("/login", "")).await;
    assert!(page.contains("/login/oidc?next=/") && page.contains("hospital's account"));

    let (url, cookie) = start(&app).await;
    assert!(url.contains("code_challenge_method=S256") && url.contains("nonce="));
    let callback = at_provider(&url).await;
    let (status, headers, page) = send(&app, get_with(&callback, &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("http-equiv=\"refresh\" content=\"0;url=/\""));
    let session = crate::testing::set_cookie(&headers, "cohort_session");
    let (status, _, page) = send(&app, get_with("/", &session)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("dr-martin clinician"));

    // The code and the state serve once.
    let (status, headers, _) = send(&app, get_with(&callback, &cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cohort_session="))
    );
}

#[tokio::test]
async fn state_pkce_and_roles_are_enforced() {
    let idp = start_idp().await;
    *idp.groups.lock().unwrap() = vec!["privacy-office".into()];
    let app = console(&idp).await;

    // The state must be this browser's.
    let (url, _) = start(&app).await;
    let (_, other_cookie) = start(&app).await;
    let callback = at_provider(&url).await;
    let (status, _, page) = send(&app, get_with(&callback, &other_cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("not started in this browser"));

    // A code issued for one login's PKCE challenge, redeemed by another
    // login (another verifier), is refused by the provider.
    let (url_a, _) = start(&app).await;
    let (url_b, cookie_b) = start(&app).await;
    let code_a = at_provider(&url_a).await;
    let state_b = url_b
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let code = code_a
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = format!("/login/oidc/callback?code={code}&state={state_b}");
    let (status, _, page) = send(&app, get_with(&forged, &cookie_b)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("answer was refused"), "{page}");

    // No mapped group, no session.
    *idp.groups.lock().unwrap() = vec!["visitors".into()];
    let (url, cookie) = start(&app).await;
    let callback = at_provider(&url).await;
    let (status, headers, page) = send(&app, get_with(&callback, &cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("no role in this console"));
    assert!(
        headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cohort_session="))
    );

    // The provider's own refusal is shown.
    let (status, _, page) = send(
        &app,
        get_with("/login/oidc/callback?error=access_denied&state=x", &cookie),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("access_denied"));
}

#[test]
fn claims_map_to_roles_in_order_and_through_nested_paths() {
    let mut config = config("https://idp.test");
    let claims = json!({"groups": ["privacy-office", "cardiology-clinicians"],
        "realm_access": {"roles": ["cardiology-clinicians"]}, "single": "privacy-office"});
    assert_eq!(role_of(&claims, &config), Some(Role::Dpo));
    config.role_claim = "realm_access.roles".into();
    assert_eq!(role_of(&claims, &config), Some(Role::Clinician));
    config.role_claim = "single".into();
    assert_eq!(role_of(&claims, &config), Some(Role::Dpo));
    config.role_claim = "missing".into();
    assert_eq!(role_of(&claims, &config), None);
    assert!(toml::from_str::<OidcConfig>("issuer = 'x'\nclient_id = 'y'\nredirect_url = 'z'\nrole_claim = 'g'\nroles = {}\ntypo = 1").is_err());
}

#[tokio::test]
async fn an_unreachable_provider_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = Provider::discover(config(&issuer)).await.unwrap_err();
    assert!(matches!(error, OidcError::Discovery { .. }), "{error}");
    let mut no_roles = config(&issuer);
    no_roles.roles.clear();
    assert!(matches!(
        Provider::discover(no_roles).await,
        Err(OidcError::Config(_))
    ));
}
