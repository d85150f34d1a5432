use ::ledger::entry::Epsilon;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::Users;
use crate::testing::{csrf_in, get, login, post, send, set_cookie};

struct Fixed {
    state: PlanState,
    events: broadcast::Sender<PlanEvent>,
}

impl FederationSource for Fixed {
    fn state(&self) -> BoxFuture<'_, PlanState> {
        Box::pin(async move { self.state.clone() })
    }
    fn events(&self) -> broadcast::Receiver<PlanEvent> {
        self.events.subscribe()
    }
}

fn metrics(accuracy: f64) -> learn::Metrics {
    learn::Metrics {
        loss: 0.5,
        accuracy,
        samples: 10,
    }
}

/// A plan two rounds in, with one approval and one decline.
fn plan_state() -> PlanState {
    let plan = fed::plan::TrainingPlan::heart_disease_default();
    let mut state = fed::plan_run::PlanRun::new(plan, 0)
        .unwrap()
        .state()
        .clone();
    state.plan.privacy_budget = Some(fed::plan::PrivacyBudget {
        epsilon: 8.0,
        delta: 1e-5,
    });
    state.phase = Phase::Training;
    state.round = 3;
    let first = state.plan.hospitals[0].clone();
    state.epsilon_spent_micro.insert(first.clone(), 1_500_000);
    for round in 1..=2 {
        let contribution = fed::contribution::Contribution {
            round,
            update_sha256: "ef".repeat(32),
            num_samples: 10,
            train: metrics(0.7),
            global_test: metrics(0.6 + f64::from(round) / 10.0),
            code_hash: state.plan.code_hash(),
            epsilon_round_micro: 0,
            epsilon_total_micro: 0,
        };
        let entry = fed::record::sign_contribution(
            &state.plan,
            &contribution,
            &::ledger::entry::LogOrigin::new("test/log").unwrap(),
            ::ledger::entry::PartyId::new(&first).unwrap(),
            &::ledger::synthetic::derived_key(&first),
        )
        .unwrap();
        let signed = fed::contribution::SignedContribution {
            contribution,
            entry,
        };
        state.history.push(RoundRecord {
            round,
            contributions: [(first.clone(), signed)].into(),
            missing: vec![state.plan.hospitals[1].clone()],
            input_sha256: String::new(),
            output_sha256: String::new(),
            opened_unix_ms: 1_000,
            closed_unix_ms: 2_250,
        });
    }
    state
}

/// A console over a synthetic federation's ledger (published with its
/// witnesses' cosignatures) and a fixed plan state.
fn app(dir: &std::path::Path) -> (Router, broadcast::Sender<PlanEvent>) {
    let federation = ::ledger::synthetic::Federation::new(3, 2).unwrap();
    let mut log = federation.create_log(&dir.join("log")).unwrap();
    let plan = federation
        .plan("heart", 2, Epsilon::from_micro(2_000_000))
        .unwrap();
    log.append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    log.append_batch(
        &federation
            .round_entries(&plan, 1, Epsilon::from_micro(500_000))
            .unwrap(),
    )
    .unwrap();
    let mut witnesses = federation.witnesses(&dir.join("witnesses")).unwrap();
    federation
        .publish(&mut log, &mut witnesses, 1_700_000_000)
        .unwrap();
    let (events, _) = broadcast::channel(16);
    let console = CoordinatorConsole {
        oidc: None,
        federation: "test".into(),
        log_dir: dir.join("log"),
        policy: federation.policy().unwrap(),
        source: Arc::new(Fixed {
            state: plan_state(),
            events: events.clone(),
        }),
    };
    let settings = ConsoleSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        users: Users::one_per_role("pw"),
        secure_cookies: true,
        oidc: None,
    };
    (router(console, &settings), events)
}

#[tokio::test]
async fn pages_need_a_login_and_a_wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(dir.path());
    let (status, headers, _) = send(&app, get("/plans", "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/login?next=/plans");

    let (_, headers, page) = send(&app, get("/login", "")).await;
    let login_cookie = set_cookie(&headers, "cohort_login");
    let form = format!("user=dpo&password=nope&csrf={}", csrf_in(&page));
    let (status, headers, page) = send(&app, post("/login", &login_cookie, &form)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("wrong password"));
    assert!(
        headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cohort_session="))
    );

    // The login form's token must match its cookie.
    let form = "user=dpo&password=pw&csrf=forged";
    let (status, _, _) = send(&app, post("/login", &login_cookie, form)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn each_role_sees_its_pages_and_is_refused_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(dir.path());
    let (clinician, _) = login(&app, "clinician").await;
    for path in [
        "/plans",
        "/rounds",
        "/privacy",
        "/ledger",
        "/ledger/entries/1",
    ] {
        let (status, _, page) = send(&app, get(path, &clinician)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("not open to the role"), "{path}");
    }
    let (status, _, home) = send(&app, get("/", &clinician)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !home.contains("href=\"/ledger\""),
        "no link to refused pages"
    );

    let (scientist, _) = login(&app, "data-scientist").await;
    let (status, headers, page) = send(&app, get("/plans", &scientist)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let plan = fed::plan::TrainingPlan::heart_disease_default();
    assert!(page.contains(&plan.code_hash()));
    assert!(page.contains("waiting"), "{page}");

    let (_, _, page) = send(&app, get("/rounds", &scientist)).await;
    assert!(page.contains("<tr data-round=\"2\">"), "{page}");
    assert!(page.contains("0.800"), "round 2's input accuracy");

    let (_, _, page) = send(&app, get("/privacy", &scientist)).await;
    assert!(page.contains("1.500 of 8"), "{page}");
}

#[tokio::test]
async fn ledger_entries_come_with_verified_proofs_and_the_audit_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(dir.path());
    let (auditor, csrf) = login(&app, "auditor").await;
    let (status, _, page) = send(&app, get("/ledger", &auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("3 valid witness cosignatures"), "{page}");
    assert!(page.contains("RoundOpened") && page.contains("PlanRegistered"));

    let (status, _, page) = send(&app, get("/ledger/entries/5", &auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Verified: entry 5 is in the log"), "{page}");
    assert!(
        page.contains("is a prefix of the published checkpoint"),
        "{page}"
    );
    assert!(page.contains("RoundOpened"));

    let (status, _, receipt) = send(&app, get("/ledger/entries/5/receipt.json", &auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(::ledger::receipt::Receipt::from_json(&receipt).is_ok());

    let (status, _, _) = send(&app, get("/ledger/entries/999", &auditor)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, _) = send(&app, post("/ledger/verify", &auditor, "csrf=forged")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = format!("csrf={csrf}");
    let (status, _, page) = send(&app, post("/ledger/verify", &auditor, &form)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The whole log verifies"), "{page}");

    let (scientist, csrf) = login(&app, "data-scientist").await;
    let form = format!("csrf={csrf}");
    let (status, _, _) = send(&app, post("/ledger/verify", &scientist, &form)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn round_events_replay_missed_rounds_then_follow_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (app, events) = app(dir.path());
    let (dpo, _) = login(&app, "dpo").await;
    let response = app
        .clone()
        .oneshot(get("/rounds/events?after=1", &dpo))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut text = String::new();
    let mut next = async || {
        let frame = body.frame().await.unwrap().unwrap();
        String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned()
    };
    while !text.contains("event: phase") {
        text += &next().await;
    }
    assert!(
        text.contains("event: round") && text.contains("data-round=\\\"2\\\""),
        "{text}"
    );
    assert!(
        !text.contains("data-round=\\\"1\\\""),
        "round 1 was on the page"
    );
    events.send(PlanEvent::Completed).unwrap();
    let mut more = String::new();
    while !more.contains("Completed") {
        more += &next().await;
    }
}

#[tokio::test]
async fn assets_are_served_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(dir.path());
    for path in [
        "/assets/htmx.min.js",
        "/assets/uPlot.iife.min.js",
        "/assets/console.css",
    ] {
        let (status, headers, body) = send(&app, get(path, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        assert!(body.len() > 1000, "{path}");
    }
}

#[tokio::test]
async fn every_coordinator_console_route_but_the_login_and_assets_needs_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _events) = app(dir.path());
    let mut routes = harness::routes::declared_routes(include_str!("../coordinator.rs"));
    routes.extend(harness::routes::declared_routes(include_str!("ledger.rs")));
    assert!(routes.len() >= 8, "{routes:?}");
    let checked = harness::routes::assert_login_required(&app, &routes, &[]).await;
    assert_eq!(checked, routes.len());
}
