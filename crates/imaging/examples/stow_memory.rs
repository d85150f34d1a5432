//! Peak memory of one STOW-RS upload through the DICOMweb router:
//!
//! ```text
//! cargo run -p imaging --example stow_memory -- FIXTURE.dcm MEGABYTES
//! ```
//!
//! streams a `multipart/related` body of about MEGABYTES (copies of FIXTURE,
//! each under its own SOP Instance UID) into the router, as a client would,
//! and prints the process's peak resident memory (VmHWM) before and after.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use futures::StreamExt;
use futures::future::BoxFuture;
use imaging::{
    AccessControl, AccessRecord, Grant, ImageStore, Imaging, MemoryDirectory, MemorySink,
    Operation, Reach, WebConfig,
};
use tower::ServiceExt;

/// Every request is the benchmark's own.
struct Anyone;

impl AccessControl for Anyone {
    fn authorize<'a>(
        &'a self,
        _token: Option<&'a str>,
        _operation: Operation,
    ) -> BoxFuture<'a, imaging::Result<Grant>> {
        Box::pin(async {
            Ok(Grant {
                name: "benchmark".into(),
                reach: Reach::All,
            })
        })
    }

    fn record<'a>(
        &'a self,
        _grant: &'a Grant,
        _address: Option<&'a str>,
        _access: &'a AccessRecord,
    ) -> BoxFuture<'a, imaging::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// `file` with every occurrence of `uid` replaced by a UID of the same
/// length ending in `n`.
fn renamed(file: &[u8], uid: &[u8], n: usize) -> Vec<u8> {
    let suffix = format!("{n:06}");
    let mut new_uid = uid.to_vec();
    let at = new_uid.len() - suffix.len();
    new_uid[at..].copy_from_slice(suffix.as_bytes());
    let mut out = file.to_vec();
    let mut from = 0;
    while let Some(p) = out[from..].windows(uid.len()).position(|w| w == uid) {
        let p = from + p;
        out[p..p + uid.len()].copy_from_slice(&new_uid);
        from = p + uid.len();
    }
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(fixture), Some(megabytes)) = (args.get(1), args.get(2)) else {
        return Err("usage: stow_memory FIXTURE.dcm MEGABYTES".into());
    };
    let file = std::fs::read(fixture)?;
    let info =
        imaging::instance::InstanceInfo::read(&file, &imaging::instance::ULTRASOUND_SOP_CLASSES)?;
    let copies = (megabytes.parse::<usize>()? << 20).div_ceil(file.len());
    let upload_mib = (copies * file.len()) as f64 / f64::from(1 << 20);
    let dir = tempfile::tempdir()?;
    let service = Arc::new(
        Imaging::open(
            ImageStore::local(dir.path())?,
            Arc::new(MemoryDirectory::default()),
            Arc::new(MemorySink::default()),
        )
        .await?,
    );
    let config = WebConfig {
        max_upload_bytes: u64::MAX,
        ..WebConfig::default()
    };
    let router = imaging::router(service.clone(), Arc::new(Anyone), config);
    let before = peak_rss_mib();

    let uid = info.sop_uid.clone().into_bytes();
    let body = futures::stream::iter(0..=copies).map(move |n| {
        Ok::<_, std::io::Error>(Bytes::from(if n == copies {
            imaging::multipart::closing("b")
        } else {
            let mut part = imaging::multipart::part_head("b", "application/dicom");
            part.extend_from_slice(&renamed(&file, &uid, n));
            part.extend_from_slice(b"\r\n");
            part
        }))
    });
    let request = Request::post("/studies")
        .header(header::AUTHORIZATION, "Bearer benchmark")
        .header(header::CONTENT_TYPE, "multipart/related; boundary=b")
        .body(Body::from_stream(body))?;
    let started = Instant::now();
    let response = router.oneshot(request).await?;
    let status = response.status();
    axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    let elapsed = started.elapsed();
    let stored = service
        .study(&info.study_uid)
        .await
        .map_or(0, |s| s.instance_count());
    println!(
        "upload {:.0} MiB ({copies} instances): HTTP {status}, {stored} stored in {:.1} s; \
         peak RSS {before:.0} MiB before, {:.0} MiB after",
        upload_mib,
        elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
