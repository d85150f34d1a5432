//! The access-control walk: every route a router's source declares is sent an anonymous
//! request, and none may answer with a page or data (issue 17's route review; the consoles'
//! and the node API's tests use it).

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Every path declared with `.route("...")` in a router's source text, its `{parameters}`
/// filled with `1` (a valid FHIR id, DICOM UID and frame number).
pub fn declared_routes(source: &str) -> Vec<String> {
    let mut routes = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + 7..];
        let Some(open) = rest.find('"') else { break };
        if !rest[..open].trim().is_empty() {
            continue;
        }
        let path = rest[open + 1..].split('"').next().unwrap_or_default();
        let mut filled = String::new();
        let mut inside = false;
        for c in path.chars() {
            match c {
                '{' => inside = true,
                '}' => {
                    inside = false;
                    filled.push('1');
                }
                _ if !inside => filled.push(c),
                _ => {}
            }
        }
        routes.push(filled);
    }
    routes
}

/// Sends an anonymous GET and POST to each of `routes` but `public`: every answer must be a
/// redirect to the login page, a refusal (401, 403) or a wrong-method answer (405) — never a
/// page or data. Returns how many routes were checked.
pub async fn assert_login_required(app: &Router, routes: &[String], public: &[&str]) -> usize {
    let mut checked = 0;
    for route in routes.iter().filter(|r| !public.contains(&r.as_str())) {
        for method in ["GET", "POST"] {
            let request = Request::builder()
                .method(method)
                .uri(route)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("csrf=x"))
                .unwrap();
            let response = app
                .clone()
                .oneshot(request)
                .await
                .expect("the router answers");
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
            let to_login = status.is_redirection()
                && headers
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .is_some_and(|l| l.starts_with("/login"));
            let refused = [401, 403, 405].contains(&status.as_u16());
            assert!(
                to_login || refused,
                "{method} {route} answered {status} to a visitor who is not logged in: {body}"
            );
        }
        checked += 1;
    }
    checked
}
