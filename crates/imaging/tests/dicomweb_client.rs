//! DICOMweb served over HTTP (`imaging::http::serve`) to a real client: the
//! PyPI `dicomweb-client` stores instances (STOW-RS), searches (QIDO-RS)
//! and retrieves studies, series, instances and metadata (WADO-RS) with a
//! bearer token, and is refused without one. Also: a connection that never
//! sends a request is closed.
//!
//! Needs a Python (`$COHORT_PYTHON`, default `python3`) with dicomweb-client
//! and pydicom; without them the client test says so and passes, unless
//! `COHORT_REQUIRE_TOOLS=1` (CI), where it fails.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{fixtures_dir, harness, web};
use imaging::WebConfig;
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// Serve the DICOMweb routes under `/dicomweb` on a free loopback port.
async fn serve(h: &common::Harness, idle: Duration) -> u16 {
    let (router, _) = web(h, WebConfig::default());
    let app = axum::Router::new().nest("/dicomweb", router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(imaging::http::serve(listener, app, idle));
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_no_request_is_closed() {
    let h = harness().await;
    let port = serve(&h, Duration::from_millis(300)).await;
    for opening in [&b""[..], b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n"] {
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        tokio::io::AsyncWriteExt::write_all(&mut socket, opening)
            .await
            .expect("sent");
        let mut buffer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "the connection is still open after {opening:?}"
        );
    }
}

fn python() -> String {
    std::env::var("COHORT_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn client_present() -> bool {
    let present = Command::new(python())
        .args(["-c", "import dicomweb_client, pydicom"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "dicomweb-client missing from {}",
            python()
        );
        eprintln!("skipped: dicomweb-client missing from {}", python());
    }
    present
}

const SCRIPT: &str = r#"
import json, sys
from pydicom import dcmread
from dicomweb_client.api import DICOMwebClient
url, token, files = sys.argv[1], sys.argv[2], sys.argv[3:]
client = DICOMwebClient(url=url, headers={"Authorization": "Bearer " + token})
out = {}
out["stored"] = len(client.store_instances([dcmread(f) for f in files]).ReferencedSOPSequence)
out["studies"] = client.search_for_studies(search_filters={"PatientID": "13US1"})
study = out["studies"][0]["0020000D"]["Value"][0]
out["all_studies"] = client.search_for_studies()
out["limited"] = client.search_for_studies(limit=1, offset=1)
out["series"] = client.search_for_series(study_instance_uid=study)
series = out["series"][0]["0020000E"]["Value"][0]
out["instances"] = client.search_for_instances(study_instance_uid=study, series_instance_uid=series)
out["frames"] = client.search_for_instances(search_filters={"NumberOfFrames": "2"})
out["study_sops"] = sorted(ds.SOPInstanceUID for ds in client.retrieve_study(study))
out["series_rows"] = [int(ds.Rows) for ds in client.retrieve_series(study, series)]
out["metadata"] = client.retrieve_series_metadata(study, series)
sop = out["instances"][0]["00080018"]["Value"][0]
out["instance"] = client.retrieve_instance(study, series, sop).SOPInstanceUID
anonymous = DICOMwebClient(url=url)
try:
    anonymous.search_for_studies()
    out["anonymous"] = "served"
except Exception as error:
    out["anonymous"] = getattr(getattr(error, "response", None), "status_code", repr(error))
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dicomweb_client_stores_searches_and_retrieves() {
    if !client_present() {
        return;
    }
    let h = harness().await;
    let port = serve(&h, Duration::from_secs(30)).await;
    let files = [
        "US1_UNCR.dcm",
        "US1_J2KR.dcm",
        "OBXXXX1A_2frame.dcm",
        "GREYSCALE_CINE.dcm",
    ];
    let mut args = vec![
        "-c".to_string(),
        SCRIPT.to_string(),
        format!("http://127.0.0.1:{port}/dicomweb"),
        "writer".to_string(),
    ];
    args.extend(
        files
            .iter()
            .map(|f| fixtures_dir().join(f).display().to_string()),
    );
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
    let out: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out["stored"], files.len());
    let studies = out["studies"].as_array().expect("studies");
    assert_eq!(studies.len(), 1, "{studies:?}");
    assert_eq!(studies[0]["00100020"]["Value"][0], "13US1");
    assert_eq!(studies[0]["00201208"]["Value"][0], 2);
    let all = out["all_studies"].as_array().expect("all").len();
    assert!(all >= 3);
    assert_eq!(out["limited"].as_array().map(Vec::len), Some(1));
    assert_ne!(out["limited"][0], out["all_studies"][0], "offset 1");
    let instances = out["instances"].as_array().expect("instances");
    assert!(!instances.is_empty());
    assert!(
        out["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .all(|i| i["00280008"]["Value"][0] == 2)
    );
    assert_eq!(out["study_sops"].as_array().map(Vec::len), Some(2));
    assert_eq!(out["series_rows"][0], 480);
    let metadata = out["metadata"].as_array().expect("metadata");
    assert_eq!(metadata.len(), instances.len());
    assert_eq!(metadata[0]["00280010"]["Value"][0], 480);
    assert_eq!(out["instance"], instances[0]["00080018"]["Value"][0]);
    assert_eq!(out["anonymous"], 401);
}
