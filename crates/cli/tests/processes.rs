//! The federation as separate processes, as hospitals run it: one
//! `cohort coordinator` and one `cohort node` per hospital, configured by TOML
//! files, credentials from `cohort ca`. Covers a coordinator killed and
//! restarted mid-training and a node killed mid-round.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fed::plan::TrainingPlan;

const BIN: &str = env!("CARGO_BIN_EXE_cohort");
const HOSPITALS: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];

fn cohort(args: &[&str], dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cohort {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// CA, credentials, data and configuration files for a whole federation.
fn set_up(dir: &Path, plan: &TrainingPlan, port: u16) {
    cohort(&["ca", "init", "--dir", "pki"], dir);
    let mut parties = vec!["issue", "--dir", "pki", "coordinator"];
    parties.extend(HOSPITALS);
    let mut args = vec!["ca"];
    args.extend(parties);
    cohort(&args, dir);
    harness::write_heart_data(&dir.join("data")).unwrap();

    let mut config = toml::Table::new();
    config.insert("listen".into(), format!("127.0.0.1:{port}").into());
    config.insert("data_dir".into(), "coordinator-store".into());
    config.insert("exit_when_done".into(), true.into());
    config.insert("tls".into(), tls_table("coordinator"));
    let hospitals: Vec<toml::Value> = HOSPITALS
        .iter()
        .map(|h| {
            let mut t = toml::Table::new();
            t.insert("name".into(), (*h).into());
            t.insert("certificate".into(), format!("pki/{h}.crt").into());
            t.into()
        })
        .collect();
    config.insert("hospitals".into(), hospitals.into());
    config.insert("plan".into(), toml::Value::try_from(plan).unwrap());
    std::fs::write(
        dir.join("coordinator.toml"),
        toml::to_string(&config).unwrap(),
    )
    .unwrap();

    let code_hash = cohort(&["plan", "code-hash", "--config", "coordinator.toml"], dir);
    assert_eq!(code_hash.trim(), plan.code_hash());
    for h in HOSPITALS {
        let toml = format!(
            "name = \"{h}\"\ncoordinator = \"https://127.0.0.1:{port}\"\ndata_dir = \"store-{h}\"\n\
             approved_code_hashes = [\"{}\"]\nexit_when_done = true\n\n\
             [tls]\ncertificate = \"pki/{h}.crt\"\nkey = \"pki/{h}.key\"\nca = \"pki/ca.crt\"\n\n\
             [dataset]\nkind = \"heart-disease\"\ndir = \"data\"\ncentre = \"{h}\"\n",
            code_hash.trim()
        );
        std::fs::write(dir.join(format!("{h}.toml")), toml).unwrap();
    }
}

fn tls_table(party: &str) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("certificate".into(), format!("pki/{party}.crt").into());
    t.insert("key".into(), format!("pki/{party}.key").into());
    t.insert("ca".into(), "pki/ca.crt".into());
    t.into()
}

/// A running coordinator whose log lines arrive on a channel.
struct Coordinator {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Coordinator {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "--log",
                "info",
                "coordinator",
                "--config",
                "coordinator.toml",
            ])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Coordinator { child, lines }
    }

    /// Wait for a log line containing all of `needles`; returns it.
    fn wait_for(&self, needles: &[&str]) -> String {
        let mut seen = Vec::new();
        loop {
            let Ok(line) = self.lines.recv_timeout(Duration::from_secs(120)) else {
                panic!(
                    "coordinator went quiet before {needles:?}; it said:\n{}",
                    seen.join("\n")
                );
            };
            seen.push(line.clone());
            if needles.iter().all(|n| line.contains(n)) {
                return line;
            }
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Wait for exit; returns all remaining output.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.try_iter().collect();
        let rest = rest.join("\n");
        assert!(status.success(), "coordinator failed: {rest}");
        rest
    }
}

fn start_node(dir: &Path, hospital: &str) -> Child {
    Command::new(BIN)
        .args(["node", "--config", &format!("{hospital}.toml")])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn reference_model(plan: &TrainingPlan) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let f = harness::start_federation(plan, dir.path()).await.unwrap();
        f.finish(|_| {}).await.unwrap().state.global_sha256
    })
}

fn test_plan(rounds: u32, deadline: u64) -> TrainingPlan {
    let mut plan = TrainingPlan::heart_disease_default();
    plan.rounds = rounds;
    plan.round_deadline_secs = deadline;
    plan
}

fn final_model(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("final model "))
        .expect("final model line")
        .trim()
        .to_string()
}

fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[test]
fn coordinator_killed_mid_training_resumes_and_gives_the_uninterrupted_model() {
    let plan = test_plan(30, 30);
    let (_guard, dir) = workdir();
    let port = free_port();
    set_up(&dir, &plan, port);
    let coordinator = Coordinator::start(&dir);
    let nodes: Vec<Child> = HOSPITALS.iter().map(|h| start_node(&dir, h)).collect();
    coordinator.wait_for(&["round aggregated", "round=3"]);
    coordinator.kill();

    let restarted = Coordinator::start(&dir);
    restarted.wait_for(&["resuming stored plan"]);
    let output = restarted.finish();
    assert!(output.contains("ended: Completed"), "{output}");
    for mut n in nodes {
        assert!(n.wait().unwrap().success());
    }
    assert_eq!(final_model(&output), reference_model(&plan));
    // The ledger the restarted coordinator completed verifies offline.
    let audit = cohort(
        &[
            "ledger",
            "verify",
            "--policy",
            "coordinator-store/ledger/policy.toml",
            "coordinator-store/ledger/log",
        ],
        &dir,
    );
    assert!(audit.contains("no violation"), "{audit}");
}

#[test]
fn node_process_killed_mid_round_does_not_stop_training() {
    let plan = test_plan(8, 2);
    let (_guard, dir) = workdir();
    let port = free_port();
    set_up(&dir, &plan, port);
    let coordinator = Coordinator::start(&dir);
    let mut nodes: Vec<Child> = HOSPITALS.iter().map(|h| start_node(&dir, h)).collect();
    coordinator.wait_for(&["round aggregated", "round=2"]);
    let mut va = nodes.pop().unwrap();
    va.kill().unwrap();
    va.wait().unwrap();
    let line = coordinator.wait_for(&["round aggregated", "missing=[\"va\"]"]);
    assert!(line.contains("contributors=3"), "{line}");
    let output = coordinator.finish();
    assert!(output.contains("ended: Completed"), "{output}");
    for mut n in nodes {
        assert!(n.wait().unwrap().success());
    }
}

#[test]
fn ca_refuses_to_overwrite_its_key() {
    let (_guard, dir) = workdir();
    cohort(&["ca", "init", "--dir", "pki"], &dir);
    let out = Command::new(BIN)
        .args(["ca", "init", "--dir", "pki"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ca.key"));
}
