//! The federation as separate processes, as hospitals run it: one
//! `cohort coordinator` and one `cohort node` per hospital, configured by TOML
//! files, credentials from `cohort ca`. Covers a coordinator killed and
//! restarted mid-training (once, and at 50 seeded points of one protected
//! plan) and a node killed mid-round.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command};

use common::{
    Addresses, BIN, Coordinator, Hospital, aggregated_round, cohort, copy_tree,
    create_node_secrets, final_model, free_port, ledger_tree_size, load_ehr, node_log, open_ehr,
    protected_plan, published_ledger_size, reference_run, run_uninterrupted, set_up, start_node,
    test_plan, verify_ledger, workdir,
};
use rand::{Rng, SeedableRng};

fn start_uci_federation(plan: &fed::plan::TrainingPlan) -> (tempfile::TempDir, std::path::PathBuf) {
    set_up_uci(plan, &Hospital::uci())
}

fn set_up_uci(
    plan: &fed::plan::TrainingPlan,
    hospitals: &[Hospital],
) -> (tempfile::TempDir, std::path::PathBuf) {
    let (guard, dir) = workdir();
    set_up(&dir, plan, hospitals, &Addresses::loopback(free_port()));
    (guard, dir)
}

fn start_nodes(dir: &std::path::Path) -> Vec<Child> {
    Hospital::uci()
        .iter()
        .map(|h| start_node(dir, &h.name))
        .collect()
}

#[test]
fn coordinator_killed_mid_training_resumes_and_gives_the_uninterrupted_model() {
    let plan = test_plan(30, 30);
    let (_guard, dir) = start_uci_federation(&plan);
    let coordinator = Coordinator::start(&dir);
    let nodes = start_nodes(&dir);
    coordinator.wait_for(&["round aggregated", "round=3"]);
    coordinator.kill();

    let restarted = Coordinator::start(&dir);
    restarted.wait_for(&["resuming stored plan"]);
    let output = restarted.finish();
    assert!(output.contains("ended: Completed"), "{output}");
    for mut n in nodes {
        assert!(n.wait().unwrap().success());
    }
    assert_eq!(
        final_model(&output),
        reference_run(&plan).state.global_sha256
    );
    // The ledger the restarted coordinator completed verifies offline.
    verify_ledger(&dir);
}

/// Where a seeded kill of the coordinator lands: after the `n`th log line of
/// one kind, `n` drawn at random up to `most`.
struct KillPoint {
    kind: &'static str,
    most: usize,
    matches: fn(&str) -> bool,
}

const KILL_POINTS: [KillPoint; 3] = [
    KillPoint {
        kind: "between acknowledged messages",
        most: 24,
        matches: |l| l.contains(" recorded") || l.contains("update accepted"),
    },
    KillPoint {
        kind: "during a secure-aggregation round",
        most: 16,
        matches: |l| {
            l.contains("secure aggregation step") || l.contains("secure-aggregation message")
        },
    },
    KillPoint {
        kind: "during a ledger sync",
        most: 2,
        matches: |l| {
            l.contains("ledger entries appended")
                || l.contains("cosignature recorded")
                || l.contains("ledger checkpoint published")
        },
    },
];

#[test]
fn coordinator_killed_at_fifty_seeded_points_completes_with_the_uninterrupted_model() {
    const KILLS: usize = 50;
    let plan = protected_plan(40, 60);
    let hospitals = Hospital::uci();
    let (_guard, dir) = start_uci_federation(&plan);
    create_node_secrets(&dir, &hospitals);
    // The same federation, same secrets, run without interruption.
    let (_copy_guard, copy) = workdir();
    copy_tree(&dir, &copy);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut coordinator = Coordinator::start(&dir);
    let nodes = start_nodes(&dir);
    let mut landed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut published = 0;
    for kill in 0..KILLS {
        let point = &KILL_POINTS[kill % KILL_POINTS.len()];
        let n = rng.random_range(1..=point.most);
        let line = coordinator.nth_line(n, point.matches);
        assert!(
            line.is_some(),
            "the plan ended after {kill} kills; make it longer"
        );
        coordinator.kill();
        *landed.entry(point.kind).or_default() += 1;
        // What witnesses cosigned is never taken back.
        let size = published_ledger_size(&dir);
        assert!(
            size >= published,
            "published ledger shrank: {published} -> {size}"
        );
        published = size;
        coordinator = Coordinator::start(&dir);
    }
    let output = coordinator.finish();
    assert!(output.contains("ended: Completed"), "{output}");
    for mut n in nodes {
        assert!(n.wait().unwrap().success());
    }
    eprintln!("kills by point: {landed:?}");

    let uninterrupted = run_uninterrupted(&copy, &hospitals);
    assert_eq!(final_model(&output), final_model(&uninterrupted));
    // Every entry of the uninterrupted run, none lost and none twice.
    let audit = verify_ledger(&dir);
    assert_eq!(
        ledger_tree_size(&audit),
        ledger_tree_size(&verify_ledger(&copy)),
        "{audit}"
    );
}

#[test]
fn node_killed_at_seeded_points_keeps_its_disclosure_log_and_ehr_in_step() {
    const KILLS: usize = 8;
    let plan = protected_plan(24, 3);
    // va trains on its EHR, through the gate (which records every read as an AuditEvent).
    let mut hospitals = Hospital::uci();
    hospitals[3].ehr = true;
    let (_guard, dir) = set_up_uci(&plan, &hospitals);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let loaded = runtime.block_on(async {
        let store = load_ehr(&dir, &hospitals[3]).await;
        let counts = store.counts().await.unwrap();
        store.close().await;
        counts
    });
    let coordinator = Coordinator::start(&dir);
    let mut nodes = start_nodes(&dir);
    let mut va = nodes.pop().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
    let mut lines = Vec::new();
    for _ in 0..KILLS {
        // After the k-th message of va's that the coordinator acknowledged.
        let n = rng.random_range(1..=6);
        let mut seen = 0;
        while seen < n {
            let Some(line) = coordinator.nth_line(1, |_| true) else {
                panic!(
                    "the plan ended too soon; make it longer:\n{}\nva said:\n{}",
                    lines.join("\n"),
                    node_log(&dir, "va")
                );
            };
            if line.contains("node=va") && line.contains(" recorded") {
                seen += 1;
            }
            lines.push(line);
        }
        va.kill().unwrap();
        va.wait().unwrap();
        va = start_node(&dir, "va");
    }
    let rounds_before_last_kill = lines.iter().filter_map(|l| aggregated_round(l)).count();
    lines.extend(
        coordinator
            .lines_until(&["plan completed"])
            .into_iter()
            .map(|(_, l)| l),
    );
    coordinator.finish();
    for mut n in nodes.into_iter().chain([va]) {
        assert!(n.wait().unwrap().success());
    }
    // Every round the coordinator aggregated with va's update is in va's log of what left:
    // recorded before it was sent, never lost to a kill.
    let contributed: Vec<u32> = lines
        .iter()
        .filter(|l| !l.contains("\"va\""))
        .filter_map(|l| aggregated_round(l))
        .collect();
    // Restarted, va is taken back: it contributes again after its last kill.
    assert!(
        contributed
            .iter()
            .any(|r| *r as usize > rounds_before_last_kill),
        "va did not contribute after its last restart (rounds {contributed:?})"
    );
    let (log, after) = runtime.block_on(async {
        let log = node::store::NodeStore::open(&dir.join("store-va"))
            .await
            .unwrap()
            .disclosures()
            .await
            .unwrap();
        let store = open_ehr(&dir, &hospitals[3]).await;
        (log, store.counts().await.unwrap())
    });
    // va's EHR after the kills: the records as loaded, and the gate's AuditEvents.
    let clinical = |counts: &[(String, i64)]| -> Vec<(String, i64)> {
        counts
            .iter()
            .filter(|(t, _)| t != "AuditEvent")
            .cloned()
            .collect()
    };
    assert_eq!(clinical(&after), clinical(&loaded));
    assert!(
        after.iter().any(|(t, n)| t == "AuditEvent" && *n > 0),
        "{after:?}"
    );
    for round in &contributed {
        for kind in ["secure-keys", "secure-masked input"] {
            assert!(
                log.iter()
                    .any(|r| r.disclosure.round == *round && r.disclosure.kind == kind),
                "round {round}: no {kind} in va's disclosure log: {log:?}"
            );
        }
    }
    eprintln!(
        "va contributed to {} of {} rounds through {KILLS} kills; {} disclosures logged",
        contributed.len(),
        plan.rounds,
        log.len()
    );
}

#[test]
fn node_process_killed_mid_round_does_not_stop_training() {
    let plan = test_plan(8, 2);
    let (_guard, dir) = start_uci_federation(&plan);
    let coordinator = Coordinator::start(&dir);
    let mut nodes = start_nodes(&dir);
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
