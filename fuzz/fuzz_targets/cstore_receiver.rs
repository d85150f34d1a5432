//! Any bytes as what a DICOM peer sends the C-STORE receiver over TCP: the receiver runs as the
//! node runs it (its own listener on loopback, the node's AE title and presentation contexts,
//! an image store in a temporary folder) and each input is one connection that sends the bytes,
//! closes its side and reads whatever comes back. A-ASSOCIATE, P-DATA fragments, command sets
//! and data sets are parsed by the receiver's own code path. Errors and aborts are expected; a
//! panic anywhere in the receiver (libFuzzer's hook turns one in a server task into a crash) or
//! a hang is a finding.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use imaging::ehr::{MemoryDirectory, MemorySink};
use imaging::{DicomReceiver, ImageStore, Imaging};
use libfuzzer_sys::fuzz_target;

struct Receiver {
    port: u16,
    _runtime: tokio::runtime::Runtime,
    _store: tempfile::TempDir,
}

fn receiver() -> &'static Receiver {
    static R: OnceLock<Receiver> = OnceLock::new();
    R.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let store = tempfile::tempdir().expect("temp dir");
        let port = runtime.block_on(async {
            let images = ImageStore::local(store.path()).expect("image store");
            let service = Imaging::open(
                images,
                Arc::new(MemoryDirectory::default()),
                Arc::new(MemorySink::default()),
            )
            .await
            .expect("imaging service");
            let receiver = DicomReceiver::bind(
                "127.0.0.1:0".parse().expect("address"),
                "COHORT",
                Arc::new(service),
            )
            .await
            .expect("receiver binds")
            .with_idle_timeout(Duration::from_secs(2));
            let port = receiver.local_addr().expect("address").port();
            tokio::spawn(receiver.run());
            port
        });
        Receiver {
            port,
            _runtime: runtime,
            _store: store,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let r = receiver();
    let mut peer = TcpStream::connect(("127.0.0.1", r.port)).expect("receiver listening");
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The receiver may close early (an abort, a rejection): a failed write is expected.
    let _ = peer.write_all(data);
    let _ = peer.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = peer.read_to_end(&mut answer);
});
