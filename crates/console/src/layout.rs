//! One look for every console: the frame (header, navigation by role, main
//! landmark), the security headers of every response and small formatting
//! helpers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::auth::{Auth, Viewer};
use crate::roles::Role;

/// A link of the navigation bar and the roles it is shown to.
pub struct NavItem {
    /// Target path.
    pub href: &'static str,
    /// Link text.
    pub label: &'static str,
    /// Who may open it.
    pub roles: &'static [Role],
}

/// What every page of one console shares: its name, navigation and logins.
pub struct Frame {
    /// Shown in the header and every title (e.g. "coordinator cohort-demo").
    pub site: String,
    /// The console's pages.
    pub nav: &'static [NavItem],
    /// Accounts and sessions.
    pub auth: Auth,
}

/// A whole HTML page.
pub fn page(frame: &Frame, title: &str, viewer: Option<&Viewer>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                title { (title) " · " (frame.site) }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/htmx.min.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.site { "cohort · " (frame.site) }
                    @if let Some(v) = viewer {
                        nav aria-label="Console" {
                            ul {
                                @for item in frame.nav.iter().filter(|i| i.roles.contains(&v.role)) {
                                    li { a href=(item.href) { (item.label) } }
                                }
                            }
                        }
                        form.who method="post" action="/logout" {
                            (v.csrf_field())
                            span { (v.name) " (" (v.role.label()) ")" }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// The page of paths that lead nowhere.
pub async fn not_found(State(frame): State<Arc<Frame>>) -> Response {
    let body = html! { p { "Nothing here. " a href="/" { "Back to the overview" } } };
    (StatusCode::NOT_FOUND, page(&frame, "Not found", None, body)).into_response()
}

/// Add the console's security headers to every response: a strict content
/// security policy (scripts and styles only from the console itself), no
/// framing, no sniffing, no referrer, and no caching of pages.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !is_asset {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_civil_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
