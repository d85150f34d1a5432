//! The console's static files, embedded in the binary (the hospitals'
//! networks are closed: no CDN). htmx and uPlot are vendored from npm by
//! `scripts/vendor_console_assets.sh`, their licences beside them.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `/assets/...` routes.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let file = |kind: &'static str, bytes: &'static [u8]| {
        get(move || async move {
            (
                [
                    (CONTENT_TYPE, kind),
                    (CACHE_CONTROL, "public, max-age=86400"),
                ],
                bytes,
            )
        })
    };
    Router::new()
        .route(
            "/assets/htmx.min.js",
            file(JS, include_bytes!("../assets/htmx.min.js")),
        )
        .route(
            "/assets/uPlot.iife.min.js",
            file(JS, include_bytes!("../assets/uPlot.iife.min.js")),
        )
        .route(
            "/assets/uPlot.min.css",
            file(CSS, include_bytes!("../assets/uPlot.min.css")),
        )
        .route(
            "/assets/console.css",
            file(CSS, include_bytes!("../assets/console.css")),
        )
        .route(
            "/assets/rounds.js",
            file(JS, include_bytes!("../assets/rounds.js")),
        )
}
