//! A real DICOM client against the receiver: dcmtk's `echoscu` verifies it
//! and `storescu` sends every ultrasound fixture, in its own transfer syntax.
//!
//! Needs dcmtk (`echoscu`, `storescu`). Without it the tests say so and
//! pass, unless `COHORT_REQUIRE_TOOLS=1` (CI), where they fail.

mod common;

use std::process::Command;

use common::{fixtures_dir, harness};
use imaging::DicomReceiver;

fn dcmtk_present() -> bool {
    let present = ["echoscu", "storescu"].iter().all(|c| {
        Command::new("which")
            .arg(c)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !present {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "dcmtk (echoscu, storescu) missing"
        );
        eprintln!("skipped: dcmtk (echoscu, storescu) missing");
    }
    present
}

async fn start(service: std::sync::Arc<imaging::Imaging>) -> u16 {
    let receiver = DicomReceiver::bind("127.0.0.1:0".parse().expect("address"), "COHORT", service)
        .await
        .expect("binds");
    let port = receiver.local_addr().expect("address").port();
    tokio::spawn(receiver.run());
    port
}

async fn run(program: &str, args: Vec<String>) -> std::process::Output {
    let program = program.to_string();
    tokio::task::spawn_blocking(move || {
        Command::new(&program)
            .args(&args)
            .output()
            .expect("dcmtk runs")
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_gets_an_answer() {
    if !dcmtk_present() {
        return;
    }
    let h = harness().await;
    let port = start(h.service.clone()).await;
    let out = run(
        "echoscu",
        vec![
            "-aec".into(),
            "COHORT".into(),
            "127.0.0.1".into(),
            port.to_string(),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_sends_every_fixture_and_each_is_stored_and_indexed() {
    if !dcmtk_present() {
        return;
    }
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let (mut linked, mut queued) = (0, 0);
    for file in &files {
        // several fixtures are variants of one SOP instance, and a stored
        // instance is never replaced: each goes to a receiver of its own
        let h = harness().await;
        let port = start(h.service.clone()).await;
        let bytes = std::fs::read(file).expect("fixture");
        let info = imaging::instance::InstanceInfo::read(
            &bytes,
            &imaging::instance::ULTRASOUND_SOP_CLASSES,
        )
        .expect("fixture header");
        // propose the file's own transfer syntax, so nothing is converted on the way
        let propose = match info.transfer_syntax.as_str() {
            "1.2.840.10008.1.2.4.70" => "-xs",
            "1.2.840.10008.1.2.4.50" => "-xy",
            "1.2.840.10008.1.2.4.90" => "-xv",
            "1.2.840.10008.1.2.5" => "-xr",
            "1.2.840.10008.1.2.2" => "-xb",
            "1.2.840.10008.1.2" => "-xi",
            _ => "-xe",
        };
        let args = vec![
            "-R".into(),
            propose.into(),
            "-aec".into(),
            "COHORT".into(),
            "127.0.0.1".into(),
            port.to_string(),
            file.clone(),
        ];
        let out = run("storescu", args).await;
        assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("E:"),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = h
            .service
            .retrieve(&info.study_uid, &info.series_uid, &info.sop_uid)
            .await
            .unwrap_or_else(|e| panic!("{file}: not stored: {e}"));
        let back = imaging::instance::InstanceInfo::read(
            &stored,
            &imaging::instance::ULTRASOUND_SOP_CLASSES,
        )
        .expect("stored file readable");
        assert_eq!(back.sop_uid, info.sop_uid, "{file}");
        assert_eq!(
            back.transfer_syntax, info.transfer_syntax,
            "{file}: stored as received"
        );
        linked += h.sink.len();
        queued += h.service.reconciliation_queue().await.expect("queue").len();
    }
    // the US1 patient is known: their studies got an ImagingStudy; others wait
    assert!(linked > 0);
    assert!(queued > 0);
}
