//! A federation of `cohort` processes as hospitals run it: `cohort ca` credentials, one
//! `coordinator.toml` and one `NAME.toml` per hospital, the coordinator and nodes started as
//! child processes (optionally through a wrapper such as `ip netns exec NS`).
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fed::plan::TrainingPlan;

pub const BIN: &str = env!("CARGO_BIN_EXE_cohort");

/// Run `cohort args` in `dir`; its stdout, or a panic with its stderr.
pub fn cohort(args: &[&str], dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cohort {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A hospital of the federation and where its training data comes from.
pub struct Hospital {
    pub name: String,
    /// The UCI centre whose records it holds.
    pub centre: &'static str,
    /// Records in the node's own EHR (`store-NAME/ehr.sqlite`, loaded by the
    /// caller, read through the training gate); otherwise the UCI files.
    pub ehr: bool,
}

impl Hospital {
    /// The four UCI hospitals, reading their files.
    pub fn uci() -> Vec<Hospital> {
        learn::heart::CENTRES
            .iter()
            .map(|c| Hospital {
                name: c.to_string(),
                centre: c,
                ehr: false,
            })
            .collect()
    }

    /// The URL of its EHR database, relative to the federation's directory.
    pub fn ehr_url(&self) -> String {
        format!("sqlite:store-{}/ehr.sqlite", self.name)
    }
}

/// Open `h`'s EHR (its URL relative to `dir`).
pub async fn open_ehr(dir: &Path, h: &Hospital) -> ehr::Store {
    std::fs::create_dir_all(dir.join(format!("store-{}", h.name))).unwrap();
    let path = h.ehr_url().strip_prefix("sqlite:").unwrap().to_string();
    ehr::Store::open(&format!("sqlite:{}", dir.join(path).display()))
        .await
        .unwrap()
}

/// Load `h`'s EHR with its UCI centre's records (the data files `set_up` wrote).
pub async fn load_ehr(dir: &Path, h: &Hospital) -> ehr::Store {
    let store = open_ehr(dir, h).await;
    ehr::heart::load_centre_files(&store, h.centre, &dir.join("data"))
        .await
        .unwrap();
    store
}

/// Where the coordinator listens and where nodes dial it.
pub struct Addresses {
    pub listen: String,
    pub dial: String,
}

impl Addresses {
    pub fn loopback(port: u16) -> Self {
        Addresses {
            listen: format!("127.0.0.1:{port}"),
            dial: format!("https://127.0.0.1:{port}"),
        }
    }
}

/// CA, credentials, data and configuration files for a whole federation.
pub fn set_up(dir: &Path, plan: &TrainingPlan, hospitals: &[Hospital], at: &Addresses) {
    cohort(&["ca", "init", "--dir", "pki"], dir);
    let mut args = vec!["ca", "issue", "--dir", "pki", "coordinator"];
    args.extend(hospitals.iter().map(|h| h.name.as_str()));
    cohort(&args, dir);
    harness::write_heart_data(&dir.join("data")).unwrap();

    let mut config = toml::Table::new();
    config.insert("listen".into(), at.listen.clone().into());
    config.insert("data_dir".into(), "coordinator-store".into());
    config.insert("exit_when_done".into(), true.into());
    config.insert("tls".into(), tls_table("coordinator"));
    let entries: Vec<toml::Value> = hospitals
        .iter()
        .map(|h| {
            let mut t = toml::Table::new();
            t.insert("name".into(), h.name.clone().into());
            t.insert("certificate".into(), format!("pki/{}.crt", h.name).into());
            t.into()
        })
        .collect();
    config.insert("hospitals".into(), entries.into());
    config.insert("plan".into(), toml::Value::try_from(plan).unwrap());
    std::fs::write(
        dir.join("coordinator.toml"),
        toml::to_string(&config).unwrap(),
    )
    .unwrap();

    let code_hash = cohort(&["plan", "code-hash", "--config", "coordinator.toml"], dir);
    assert_eq!(code_hash.trim(), plan.code_hash());
    for h in hospitals {
        let name = &h.name;
        let dataset = if h.ehr {
            format!(
                "ehr_db = \"{}\"\n\n[dataset]\nkind = \"ehr-heart-disease\"\n",
                h.ehr_url()
            )
        } else {
            format!(
                "[dataset]\nkind = \"heart-disease\"\ndir = \"data\"\ncentre = \"{}\"\n",
                h.centre
            )
        };
        let toml = format!(
            "name = \"{name}\"\ncoordinator = \"{}\"\ndata_dir = \"store-{name}\"\n\
             approved_code_hashes = [\"{}\"]\nexit_when_done = true\n{dataset}\n\
             [tls]\ncertificate = \"pki/{name}.crt\"\nkey = \"pki/{name}.key\"\nca = \"pki/ca.crt\"\n",
            at.dial,
            code_hash.trim()
        );
        std::fs::write(dir.join(format!("{name}.toml")), toml).unwrap();
    }
}

fn tls_table(party: &str) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("certificate".into(), format!("pki/{party}.crt").into());
    t.insert("key".into(), format!("pki/{party}.key").into());
    t.insert("ca".into(), "pki/ca.crt".into());
    t.into()
}

/// `cohort ARGS` run in `dir` through `wrapper` (e.g. `ip netns exec NS`), if any.
fn command(wrapper: &[&str], args: &[&str], dir: &Path) -> Command {
    let mut c = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.args(args).current_dir(dir);
    c
}

/// A running coordinator whose log lines arrive on a channel.
pub struct Coordinator {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Coordinator {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(&[], dir)
    }

    /// Start it through `wrapper`.
    pub fn start_with(wrapper: &[&str], dir: &Path) -> Self {
        // Debug lines for the coordinator's own steps: one per acknowledged
        // message, secure-aggregation step and ledger append.
        let args = [
            "--log",
            "info,coordinator=debug",
            "coordinator",
            "--config",
            "coordinator.toml",
        ];
        let mut child = command(wrapper, &args, dir)
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
    pub fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_for_within(needles, Duration::from_secs(120))
    }

    /// [`Self::wait_for`], failing if no line came for `quiet`.
    pub fn wait_for_within(&self, needles: &[&str], quiet: Duration) -> String {
        let mut seen = Vec::new();
        loop {
            let Ok(line) = self.lines.recv_timeout(quiet) else {
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

    /// Wait for the `n`th log line for which `matches` holds; `None` when
    /// the coordinator exits first.
    pub fn nth_line(&self, n: usize, matches: impl Fn(&str) -> bool) -> Option<String> {
        let mut seen = 0;
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(120)).ok()?;
            if matches(&line) {
                seen += 1;
                if seen == n {
                    return Some(line);
                }
            }
        }
    }

    /// Every line until one contains all of `needles` (inclusive), each with
    /// the instant it arrived.
    pub fn lines_until(&self, needles: &[&str]) -> Vec<(Instant, String)> {
        let mut lines = Vec::new();
        loop {
            let Ok(line) = self.lines.recv_timeout(Duration::from_secs(300)) else {
                panic!("coordinator went quiet before {needles:?}");
            };
            let done = needles.iter().all(|n| line.contains(n));
            lines.push((Instant::now(), line));
            if done {
                return lines;
            }
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Wait for exit; returns all remaining output.
    pub fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.try_iter().collect();
        let rest = rest.join("\n");
        assert!(status.success(), "coordinator failed: {rest}");
        rest
    }
}

impl Drop for Coordinator {
    /// A test that fails leaves no coordinator behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_node(dir: &Path, hospital: &str) -> Child {
    start_node_with(&[], dir, hospital)
}

/// Start `hospital`'s node through `wrapper`, its log appended to `dir/HOSPITAL.log`.
pub fn start_node_with(wrapper: &[&str], dir: &Path, hospital: &str) -> Child {
    let config = format!("{hospital}.toml");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{hospital}.log")))
        .unwrap();
    command(
        wrapper,
        &["--log", "info", "node", "--config", &config],
        dir,
    )
    .stdout(Stdio::piped())
    .stderr(log)
    .spawn()
    .unwrap()
}

/// What `hospital`'s node logged.
pub fn node_log(dir: &Path, hospital: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{hospital}.log"))).unwrap_or_default()
}

/// The same plan run in one process without interruption.
pub fn reference_run(plan: &TrainingPlan) -> harness::Finished {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let f = harness::start_federation(plan, dir.path()).await.unwrap();
        f.finish(|_| {}).await.unwrap()
    })
}

pub fn test_plan(rounds: u32, deadline: u64) -> TrainingPlan {
    let mut plan = TrainingPlan::heart_disease_default();
    plan.rounds = rounds;
    plan.round_deadline_secs = deadline;
    plan
}

/// [`test_plan`] with the protection `cohort demo` applies by default:
/// DP-SGD under a budget and SecAgg+ secure aggregation.
pub fn protected_plan(rounds: u32, deadline: u64) -> TrainingPlan {
    let mut plan = test_plan(rounds, deadline);
    plan.training.dp = Some(learn::DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 1.0,
    });
    plan.privacy_budget = Some(fed::plan::PrivacyBudget {
        epsilon: 1000.0,
        delta: 1e-5,
    });
    plan.secure_aggregation = Some(fed::plan::SecureAggregation {
        range: fed::secure_round::weighted_mean_range(1000, 1.0).unwrap(),
        num_shares: None,
    });
    plan.validate().unwrap();
    plan
}

pub fn final_model(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("final model "))
        .expect("final model line")
        .trim()
        .to_string()
}

pub fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Give every hospital's node its store and secret now (as its first start would), so that
/// a copy of `dir` trains with the same secrets: DP-SGD noise is drawn from a node's secret
/// and the round, so two federations agree only when their nodes share secrets.
pub fn create_node_secrets(dir: &Path, hospitals: &[Hospital]) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        for h in hospitals {
            let store = node::store::NodeStore::open(&dir.join(format!("store-{}", h.name)))
                .await
                .unwrap();
            store.secret().await.unwrap();
            store.close().await;
        }
    });
}

/// Copy the directory tree `from` into `to` (created).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Run the federation set up in `dir` to its end without interruption; the coordinator's
/// output after it started.
pub fn run_uninterrupted(dir: &Path, hospitals: &[Hospital]) -> String {
    let coordinator = Coordinator::start(dir);
    let nodes: Vec<Child> = hospitals.iter().map(|h| start_node(dir, &h.name)).collect();
    let output = coordinator.finish();
    for mut n in nodes {
        assert!(n.wait().unwrap().success());
    }
    output
}

/// `cohort ledger verify` of the coordinator's log; its report.
pub fn verify_ledger(dir: &Path) -> String {
    let audit = cohort(
        &[
            "ledger",
            "verify",
            "--policy",
            "coordinator-store/ledger/policy.toml",
            "coordinator-store/ledger/log",
        ],
        dir,
    );
    assert!(audit.contains("no violation"), "{audit}");
    audit
}

/// The tree size in a `cohort ledger verify` report.
pub fn ledger_tree_size(audit: &str) -> u64 {
    audit
        .strip_prefix("tree size ")
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no tree size in {audit}"))
}

/// The round a coordinator's "round aggregated" log line reports; `None` for other lines.
pub fn aggregated_round(line: &str) -> Option<u32> {
    line.split(" round aggregated round=")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// The tree size of the ledger's published checkpoint (0 before the first).
pub fn published_ledger_size(dir: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(dir.join("coordinator-store/ledger/log/checkpoint")) else {
        return 0;
    };
    let note = ledger::note::Note::parse(&bytes).expect("the published checkpoint is a note");
    ledger::checkpoint::Checkpoint::from_text(note.text())
        .expect("the published checkpoint parses")
        .size
}
