//! Helpers shared by the imaging tests.
#![allow(dead_code)] // each test binary uses a different subset

#[path = "../../../deid/tests/common/fixtures.rs"]
mod fixtures;
pub use fixtures::fixtures_dir;

use std::sync::Arc;

use imaging::{ImageStore, Imaging, MemoryDirectory, MemorySink, PatientRef};

/// Bytes of one fixture.
pub fn fixture(name: &str) -> bytes::Bytes {
    bytes::Bytes::from(std::fs::read(fixtures_dir().join(name)).expect("fixture readable"))
}

/// A service over a fresh directory, its patient directory and its sink.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub directory: Arc<MemoryDirectory>,
    pub sink: Arc<MemorySink>,
    pub service: Arc<Imaging>,
}

/// Patient `13US1` (the US1 family) is known to the EHR; nobody else is.
pub async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let directory = Arc::new(MemoryDirectory::default());
    directory.add(
        "13US1",
        PatientRef {
            id: "patient-us1".into(),
            display: Some("US1 sample".into()),
        },
    );
    let sink = Arc::new(MemorySink::default());
    let store = ImageStore::local(dir.path()).expect("store");
    let service = Arc::new(
        Imaging::open(store, directory.clone(), sink.clone())
            .await
            .expect("service opens"),
    );
    Harness {
        dir,
        directory,
        sink,
        service,
    }
}
