//! Inputs the `cstore_receiver` fuzz target found (`fuzz/`), kept as regression tests: each is
//! what a peer sent on one DICOM association. The receiver must answer (an A-ABORT, a failure
//! status, or success) and stay up, without allocating what a lying length declares. This test
//! binary counts its allocations, so an allocation of gigabytes fails the test even where the
//! machine could have served it.

mod common;

use std::time::Duration;

use common::harness;
use imaging::DicomReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../deid/tests/common/fuzz_regressions.rs"]
mod fuzz_regressions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associations_the_fuzzer_found_get_an_answer_without_a_large_allocation() {
    let h = harness().await;
    let receiver = DicomReceiver::bind("127.0.0.1:0".parse().unwrap(), "COHORT", h.service.clone())
        .await
        .unwrap()
        .with_idle_timeout(Duration::from_secs(5));
    let port = receiver.local_addr().unwrap().port();
    tokio::spawn(receiver.run());
    let found = fuzz_regressions::findings(env!("CARGO_MANIFEST_DIR"));
    assert!(!found.is_empty());
    for (name, bytes) in found {
        fuzz_regressions::reset();
        let mut peer = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let _ = peer.write_all(&bytes).await;
        let _ = peer.shutdown().await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), peer.read_to_end(&mut answer))
            .await
            .expect("the receiver answers and closes");
        assert!(!answer.is_empty(), "{name}: no answer");
        let largest = fuzz_regressions::largest();
        // PDU buffers and the data set's copy: a few times the input, never a declared length.
        assert!(
            largest <= 64 * bytes.len() + (4 << 20),
            "{name}: an allocation of {largest} bytes for {} bytes received",
            bytes.len()
        );
    }
    // Still serving.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    );
}
