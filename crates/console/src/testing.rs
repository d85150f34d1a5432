//! Helpers of the console's router tests: requests, cookies, logins.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Send `request` to `app`: status, headers and the body as text.
pub async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The `name=value` part of the response's `name` cookie.
pub fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// The first CSRF field's token in a page.
pub fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// A GET with a cookie.
pub fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

/// A form POST with a cookie.
pub fn post(path: &str, cookie: &str, form: &str) -> Request<Body> {
    Request::post(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
}

/// Log in as `user` (password "pw"): the session cookie and its CSRF token.
pub async fn login(app: &Router, user: &str) -> (String, String) {
    let (status, headers, page) = send(app, get("/login?next=/plans", "")).await;
    assert_eq!(status, StatusCode::OK);
    let login_cookie = set_cookie(&headers, "cohort_login");
    let form = format!("user={user}&password=pw&next=%2F&csrf={}", csrf_in(&page));
    let (status, headers, _) = send(app, post("/login", &login_cookie, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = set_cookie(&headers, "cohort_session");
    let cookie_line = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("cohort_session="))
        .unwrap();
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"));
    assert!(cookie_line.contains("Secure"));
    let (_, _, home) = send(app, get("/", &session)).await;
    (session, csrf_in(&home))
}
