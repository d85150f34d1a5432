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

/// Test tokens: `writer` may do everything, `reader` may search and read
/// every study, `us1` reads only the studies of `patient-us1`. Every access
/// is kept in `records`.
#[derive(Default)]
pub struct TestAccess {
    pub records: std::sync::Mutex<Vec<(imaging::Grant, imaging::AccessRecord)>>,
}

impl imaging::AccessControl for TestAccess {
    fn authorize<'a>(
        &'a self,
        token: Option<&'a str>,
        operation: imaging::Operation,
    ) -> futures::future::BoxFuture<'a, imaging::Result<imaging::Grant>> {
        use imaging::{ImagingError, Operation, Reach};
        let reading = matches!(operation, Operation::Search | Operation::Read);
        let outcome = match token {
            None => Err(ImagingError::Unauthorized("no token".into())),
            Some("writer") => Ok(Reach::All),
            Some("reader") if reading => Ok(Reach::All),
            Some("us1") if reading => Ok(Reach::Patient("patient-us1".into())),
            Some("reader" | "us1") => Err(ImagingError::Forbidden("read-only token".into())),
            Some(_) => Err(ImagingError::Unauthorized("unknown token".into())),
        };
        Box::pin(async move {
            Ok(imaging::Grant {
                name: token.unwrap_or_default().to_string(),
                reach: outcome?,
            })
        })
    }

    fn record<'a>(
        &'a self,
        grant: &'a imaging::Grant,
        _address: Option<&'a str>,
        access: &'a imaging::AccessRecord,
    ) -> futures::future::BoxFuture<'a, imaging::Result<()>> {
        if let Ok(mut records) = self.records.lock() {
            records.push((grant.clone(), access.clone()));
        }
        Box::pin(async { Ok(()) })
    }
}

impl TestAccess {
    /// How many accesses were recorded.
    pub fn count(&self) -> usize {
        self.records.lock().map_or(0, |r| r.len())
    }
}

/// The DICOMweb router over a harness's service, with test tokens and
/// `config`.
pub fn web(h: &Harness, config: imaging::WebConfig) -> (axum::Router, Arc<TestAccess>) {
    let access = Arc::new(TestAccess::default());
    (
        imaging::router(h.service.clone(), access.clone(), config),
        access,
    )
}
