//! The node's memory budget, checked on a `cohort node` process: while it trains from its EHR
//! through the gate (consent, pseudonyms), clients post large transaction Bundles to its FHIR
//! API faster than it can take them in. With `[memory] budget_mib` set, the process's peak
//! resident memory stays under the budget; every Bundle is either stored whole (`200`) or
//! refused with `503` and `Retry-After` (never lost half-way); training completes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};

use common::{
    Coordinator, Hospital, cohort, free_port, load_ehr, node_log, set_up, start_node, test_plan,
    workdir,
};

/// Clients posting at once, and Bundles each posts.
const CLIENTS: usize = 8;
const BUNDLES_EACH: usize = 3;
/// Observations in each Bundle (about 1.75 MB of JSON).
const OBSERVATIONS: usize = 4_000;
const MARK: &str = "urn:cohort:memory-test";

/// A transaction of one new Patient and `OBSERVATIONS` observations of it, all marked.
fn bundle(marker: &str) -> String {
    let identifier = serde_json::json!([{"system": MARK, "value": marker}]);
    let mut entries = vec![serde_json::json!({
        "fullUrl": "urn:uuid:patient",
        "resource": {"resourceType": "Patient", "identifier": identifier,
                     "name": [{"family": "Memory", "given": ["Test"]}]},
        "request": {"method": "POST", "url": "Patient"},
    })];
    for i in 0..OBSERVATIONS {
        entries.push(serde_json::json!({
            "resource": {
                "resourceType": "Observation", "status": "final", "identifier": identifier,
                "code": {"coding": [{"system": MARK, "code": "reading"}]},
                "subject": {"reference": "urn:uuid:patient"},
                "effectiveDateTime": "2026-12-07T08:00:00Z",
                "valueQuantity": {"value": i, "unit": "1"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }));
    }
    serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        .to_string()
}

/// POST `body` to `http://{address}/fhir`; the response's status and whole text.
fn post(address: &str, token: &str, body: &str) -> (u16, String) {
    request(address, token, "POST /fhir", body)
}

/// How many `kind` resources carry the test's mark (a search with `_summary=count`).
fn count_marked(address: &str, token: &str, kind: &str) -> usize {
    let target = format!("GET /fhir/{kind}?identifier={MARK}|&_summary=count");
    let (status, response) = request(address, token, &target, "");
    assert_eq!(status, 200, "{response}");
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let bundle: serde_json::Value = serde_json::from_str(body).unwrap();
    bundle["total"].as_u64().unwrap() as usize
}

/// One HTTP/1.1 exchange: `method_and_target` with `body`; the status and the whole response.
fn request(address: &str, token: &str, method_and_target: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method_and_target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "not an HTTP response: {}",
                &response[..response.len().min(300)]
            )
        });
    (status, response)
}

/// A node process, stopped when dropped: a failing test leaves none behind (`va` does not
/// exit by itself).
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident memory of a running process, MiB (`VmHWM`).
fn peak_mib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

/// What one loaded run gave: the node's peak, the Bundles stored and refused.
struct Loaded {
    peak_mib: u64,
    stored: Vec<String>,
    refused: usize,
}

/// A federation whose `va` node (API on loopback, EHR-backed training, `budget_mib`) is sent
/// `CLIENTS` x `BUNDLES_EACH` Bundles while it trains.
fn run_loaded(budget_mib: u64) -> Loaded {
    let plan = test_plan(20, 30);
    let mut hospitals = Hospital::uci();
    hospitals[3].ehr = true;
    let (_guard, dir) = workdir();
    set_up(
        &dir,
        &plan,
        &hospitals,
        &common::Addresses::loopback(free_port()),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { load_ehr(&dir, &hospitals[3]).await.close().await });
    let token = cohort(
        &[
            "ehr",
            "token",
            "create",
            "--db",
            &hospitals[3].ehr_url(),
            "--name",
            "loader",
            "--scope",
            "system/*.write system/*.read",
        ],
        &dir,
    );
    let token = token.trim().to_string();
    let address = format!("127.0.0.1:{}", free_port());
    configure_va(&dir, &address, budget_mib);

    let coordinator = Coordinator::start(&dir);
    let mut nodes: Vec<NodeProcess> = hospitals
        .iter()
        .map(|h| NodeProcess(start_node(&dir, &h.name)))
        .collect();
    wait_for_api(&address, &dir);

    let stored = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (address, token) = (address.clone(), token.clone());
            let (stored, refused) = (stored.clone(), refused.clone());
            std::thread::spawn(move || {
                for b in 0..BUNDLES_EACH {
                    let marker = format!("client{c}-bundle{b}");
                    let (status, response) = post(&address, &token, &bundle(&marker));
                    match status {
                        200 => stored.lock().unwrap().push(marker),
                        503 => {
                            assert!(
                                response.to_lowercase().contains("retry-after: 5"),
                                "{response}"
                            );
                            assert!(response.contains("memory budget"), "{response}");
                            *refused.lock().unwrap() += 1;
                        }
                        _ => panic!("{marker}: {}", &response[..response.len().min(500)]),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let output = coordinator.finish();
    assert!(output.contains("ended: Completed"), "{output}");
    let stored = stored.lock().unwrap().clone();
    // What was acknowledged is there whole; nothing of a refused Bundle is.
    assert_eq!(count_marked(&address, &token, "Patient"), stored.len());
    assert_eq!(
        count_marked(&address, &token, "Observation"),
        stored.len() * OBSERVATIONS
    );
    let va = nodes.pop().unwrap();
    let peak_mib = peak_mib(&va.0);
    drop(va);
    for mut n in nodes {
        assert!(n.0.wait().unwrap().success());
    }
    let refused = *refused.lock().unwrap();
    Loaded {
        peak_mib,
        stored,
        refused,
    }
}

/// Give `va` its API address and its memory budget, and keep it up after the plan (to be
/// asked what it stored).
fn configure_va(dir: &Path, address: &str, budget_mib: u64) {
    let path = dir.join("va.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("exit_when_done = true", "exit_when_done = false");
    let text = format!("listen = \"{address}\"\n{text}\n[memory]\nbudget_mib = {budget_mib}\n");
    std::fs::write(&path, text).unwrap();
}

/// Wait until the node's API answers.
fn wait_for_api(address: &str, dir: &Path) {
    for _ in 0..600 {
        if TcpStream::connect(address).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "the node's API never listened; it said:\n{}",
        node_log(dir, "va")
    );
}

#[test]
fn a_node_ingesting_and_training_stays_under_its_memory_budget() {
    const BUDGET_MIB: u64 = 192;
    let budgeted = run_loaded(BUDGET_MIB);
    assert!(
        budgeted.peak_mib <= BUDGET_MIB,
        "peak {} MiB over the {BUDGET_MIB} MiB budget",
        budgeted.peak_mib
    );
    assert!(!budgeted.stored.is_empty(), "nothing was taken in");
    // The same load under the default budget goes past the small one: the budget, not a light
    // load, kept the node under it.
    let unbounded = run_loaded(1024);
    assert!(
        unbounded.peak_mib > BUDGET_MIB,
        "the load peaked at {} MiB without a budget: too light to test one",
        unbounded.peak_mib
    );
    eprintln!(
        "peak {} MiB under a {BUDGET_MIB} MiB budget ({} Bundles stored, {} refused); {} MiB \
         under the default budget",
        budgeted.peak_mib,
        budgeted.stored.len(),
        budgeted.refused,
        unbounded.peak_mib
    );
}
