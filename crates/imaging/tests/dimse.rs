//! The DICOM receiver's guards: associations calling another AE title are
//! rejected with the standard reason, silent connections are closed, and a
//! data set cut inside its Pixel Data (sent with pynetdicom, which sends a
//! file as it is) gets a failure status and leaves the stored copy alone.
//!
//! The pynetdicom test needs a Python (`$COHORT_PYTHON`, default `python3`)
//! with pynetdicom and pydicom; without them it says so and passes, unless
//! `COHORT_REQUIRE_TOOLS=1` (CI), where it fails.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{fixture, fixtures_dir, harness};
use dicom_dictionary_std::uids;
use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::Error as AssociationError;
use dicom_ul::pdu::{AssociationRJServiceUserReason, AssociationRJSource};
use imaging::DicomReceiver;
use tokio::io::AsyncReadExt;

async fn start(service: std::sync::Arc<imaging::Imaging>, idle: Duration) -> u16 {
    let receiver = DicomReceiver::bind("127.0.0.1:0".parse().expect("address"), "COHORT", service)
        .await
        .expect("binds")
        .with_idle_timeout(idle);
    let port = receiver.local_addr().expect("address").port();
    tokio::spawn(receiver.run());
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_association_calling_another_ae_title_is_rejected() {
    let h = harness().await;
    let port = start(h.service.clone(), Duration::from_secs(30)).await;
    let refused = ClientAssociationOptions::new()
        .with_abstract_syntax(uids::VERIFICATION)
        .calling_ae_title("PROBE")
        .called_ae_title("ANYTHING")
        .establish_async(format!("127.0.0.1:{port}"))
        .await;
    match refused {
        Err(AssociationError::Rejected { association_rj, .. }) => assert_eq!(
            association_rj.source,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CalledAETitleNotRecognized
            )
        ),
        other => panic!("expected an A-ASSOCIATE-RJ, got {:?}", other.map(|_| ())),
    }
    let accepted = ClientAssociationOptions::new()
        .with_abstract_syntax(uids::VERIFICATION)
        .called_ae_title("COHORT")
        .establish_async(format!("127.0.0.1:{port}"))
        .await
        .expect("our AE title is accepted");
    accepted.release().await.expect("released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed() {
    let h = harness().await;
    let port = start(h.service.clone(), Duration::from_millis(300)).await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    // send nothing: the receiver must hang up (EOF or reset), well before
    // this test gives up
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection is still open: {read:?}"
    );
}

fn python() -> String {
    std::env::var("COHORT_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn pynetdicom_present() -> bool {
    let present = Command::new(python())
        .args(["-c", "import pynetdicom, pydicom"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "pynetdicom missing from {}",
            python()
        );
        eprintln!("skipped: pynetdicom missing from {}", python());
    }
    present
}

/// Send `file` as it is with pynetdicom; the C-STORE status it got back.
async fn pynetdicom_store(port: u16, file: &std::path::Path) -> u16 {
    let script = r#"
import sys
from pydicom import dcmread
from pynetdicom import AE, _config
# send the file's bytes as they are, without decoding them first
_config.STORE_SEND_CHUNKED_DATASET = True
path, port = sys.argv[1], int(sys.argv[2])
meta = dcmread(path, stop_before_pixels=True)
ae = AE(ae_title="PROBE")
ae.add_requested_context(meta.SOPClassUID, meta.file_meta.TransferSyntaxUID)
assoc = ae.associate("127.0.0.1", port, ae_title="COHORT")
assert assoc.is_established, "association refused"
status = assoc.send_c_store(path)
assoc.release()
print(status.Status)
"#;
    let args = vec![
        "-c".to_string(),
        script.to_string(),
        file.display().to_string(),
        port.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .args(&args)
            .output()
            .expect("python runs")
    })
    .await
    .expect("joined");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_set_cut_inside_its_pixel_data_gets_a_failure_and_the_stored_copy_stays() {
    if !pynetdicom_present() {
        return;
    }
    let h = harness().await;
    let port = start(h.service.clone(), Duration::from_secs(30)).await;
    let complete = fixtures_dir().join("US1_UNCR.dcm");
    assert_eq!(pynetdicom_store(port, &complete).await, 0x0000);
    let good = fixture("US1_UNCR.dcm");
    let info =
        imaging::instance::InstanceInfo::read(&good, &imaging::instance::ULTRASOUND_SOP_CLASSES)
            .expect("header");
    let retrieve = || {
        h.service
            .retrieve(&info.study_uid, &info.series_uid, &info.sop_uid)
    };
    let before = retrieve().await.expect("stored");
    // Pixel Data starts at byte 1116 of this file (the stored file meta differs)
    assert!(
        before.ends_with(&good[1116..]),
        "the complete data set is stored"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let cut = dir.path().join("cut.dcm");
    // cut well inside Pixel Data
    std::fs::write(&cut, &good[..1967]).expect("written");
    let status = pynetdicom_store(port, &cut).await;
    assert_eq!(status & 0xF000, 0xC000, "status {status:#06x}");

    // sending the complete file again is fine; the stored copy never changed
    assert_eq!(pynetdicom_store(port, &complete).await, 0x0000);
    let after = retrieve().await.expect("still stored");
    assert!(after == before, "the complete copy is kept");
}
