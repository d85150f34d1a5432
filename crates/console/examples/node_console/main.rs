//! A node console over fixture data, for the browser tests and for trying
//! the pages (until `cohort demo --serve` mounts the node consoles): a
//! temporary EHR with three invented patients, an imaging service holding
//! one ultrasound study, a plan waiting for the data protection officer and
//! a short disclosures log. One login per role, with a password for this run.
//!
//!     cargo run -p console --example node_console [-- 127.0.0.1:8091]
//!
//! Prints `node console: http://ADDRESS/` and the logins, then serves until
//! Ctrl-C.

// Shared with the unit tests, which use all of it.
#[allow(dead_code)]
mod fixtures;

use std::net::SocketAddr;

use console::node::{NodeConsole, PlanApprovals, router};
use console::{ConsoleSettings, Users};

const HOSPITAL: &str = "hospital-lyon";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()?;
    let dir = tempfile::tempdir()?;
    let ehr = ehr::Store::open(&format!(
        "sqlite:{}",
        dir.path().join("ehr.sqlite").display()
    ))
    .await?;
    fixtures::seed(&ehr).await?;
    let images = fixtures::images(&dir.path().join("images"), &ehr).await?;
    let approvals = fixtures::approvals(HOSPITAL);
    let pending = approvals.pending().await?;
    let plan_id = pending.first().ok_or("no plan offered")?.plan_id.clone();
    let password = console::auth::random_token::<8>();
    let settings = ConsoleSettings {
        listen,
        users: Users::one_per_role(&password),
        secure_cookies: true,
        oidc: None,
    };
    let app = router(
        NodeConsole {
            hospital: HOSPITAL.into(),
            ehr,
            images: Some(images),
            disclosures: fixtures::disclosures(&plan_id),
            approvals: approvals.clone(),
            oidc: None,
            coding_models: None,
            dictation: None,
        },
        &settings,
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    println!("node console: http://{address}/");
    println!("logins: clinician, billing, dpo, data-scientist, auditor; password: {password}");
    tokio::spawn(async move {
        let decided = approvals.wait(&plan_id).await;
        println!("plan decided by {}: {:?}", decided.by, decided.decision);
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    );
    tokio::select! {
        outcome = server => outcome?,
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(dir);
    Ok(())
}
