//! The node's web console in a running federation: a node configured with
//! `review = "dpo"` holds a plan offer until its data protection officer,
//! logged in to the node's console over HTTP, approves it; the node then takes
//! part, and the console's disclosures log shows what left the hospital.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fed::plan::TrainingPlan;
use fed::plan_run::Phase;
use harness::{self as demo, Credentials};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status, `Set-Cookie` name=value pairs, body.
struct Response {
    status: u16,
    cookies: BTreeMap<String, String>,
    body: String,
}

/// One HTTP/1.1 request over a fresh TCP connection.
async fn http(address: SocketAddr, method: &str, path: &str, cookie: &str, form: &str) -> Response {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let cookies = head
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Response {
        status,
        cookies,
        body: body.to_string(),
    }
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// Log in as `user`: the session cookie.
async fn login(console: SocketAddr, user: &str, password: &str) -> String {
    let page = http(console, "GET", "/login?next=/approvals", "", "").await;
    let login_cookie = format!("cohort_login={}", page.cookies["cohort_login"]);
    let form = format!(
        "user={user}&password={password}&next=%2Fapprovals&csrf={}",
        csrf(&page.body)
    );
    let done = http(console, "POST", "/login", &login_cookie, &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    format!("cohort_session={}", done.cookies["cohort_session"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_protection_officer_approves_a_plan_in_the_node_console() {
    let mut plan = TrainingPlan::heart_disease_default();
    plan.rounds = 2;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo::write_heart_data(&data).unwrap();
    let creds = Credentials::prepare(&dir.path().join("pki"), &plan.hospitals).unwrap();
    let coordinator = coordinator::start(
        creds
            .coordinator_settings(&plan, "127.0.0.1:0".parse().unwrap(), &dir.path().join("c"))
            .unwrap(),
    )
    .await
    .unwrap();
    let password = "correct horse battery";
    let mut nodes = Vec::new();
    let mut console = None;
    for h in &creds.hospitals {
        let store_dir = dir.path().join(&h.party);
        let mut settings = creds
            .node_settings(h, &plan, coordinator.address(), &data, &store_dir)
            .unwrap();
        if h.party == "cleveland" {
            std::fs::create_dir_all(&store_dir).unwrap();
            let url = format!("sqlite:{}", store_dir.join("ehr.sqlite").display());
            settings.ehr = Some(ehr::Store::open(&url).await.unwrap());
            settings.console = Some(console::ConsoleSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                users: console::Users::one_per_role(password),
                secure_cookies: false,
                oidc: None,
            });
            settings.review = node::config::Review::Dpo;
            // The DPO, not the configured list, approves this plan's code.
            settings.approved_code_hashes.clear();
        }
        let running = node::start(settings).await.unwrap();
        if h.party == "cleveland" {
            console = running.console_address;
        }
        nodes.push(running);
    }
    let console = console.expect("cleveland's console listens");

    // The officer sees the plan waiting, with its code hash, then approves it.
    let session = login(console, "dpo", password).await;
    let plan_id = plan.plan_id();
    let mut page = String::new();
    for _ in 0..200 {
        page = http(console, "GET", "/approvals", &session, "").await.body;
        if page.contains(&plan_id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(page.contains(&plan_id), "{page}");
    assert!(page.contains(&plan.code_hash()));
    // A clinician may not decide.
    let clinician = login(console, "clinician", password).await;
    let refused = http(console, "GET", "/approvals", &clinician, "").await;
    assert_eq!(refused.status, 403);
    let form = format!("decision=approve&reason=&csrf={}", csrf(&page));
    let decided = http(
        console,
        "POST",
        &format!("/approvals/{plan_id}"),
        &session,
        &form,
    )
    .await;
    assert_eq!(decided.status, 303, "{}", decided.body);

    let state = coordinator.wait_finished().await;
    let log = http(console, "GET", "/disclosures", &session, "").await;
    assert_eq!(log.status, 200);
    assert!(
        log.body.contains(&plan_id[..12]) && log.body.contains("update"),
        "{}",
        log.body
    );
    for node in nodes {
        node.wait().await.unwrap();
    }
    assert_eq!(state.phase, Phase::Completed);
    assert!(state.participants.contains(&"cleveland".to_string()));
    assert!(state.reviews["cleveland"].approved);
}
