//! DICOMweb over the axum router: STOW-RS stores every part and reports
//! failures per part, WADO-RS returns the stored bytes and PNG frames.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{fixture, harness};
use serde_json::Value;
use tower::ServiceExt;

const BOUNDARY: &str = "test-boundary-7d3f";

fn stow_request(parts: &[&[u8]]) -> Request<Body> {
    Request::post("/studies")
        .header(
            header::CONTENT_TYPE,
            format!(r#"multipart/related; type="application/dicom"; boundary="{BOUNDARY}""#),
        )
        .body(Body::from(imaging::multipart::build(
            parts,
            "application/dicom",
            BOUNDARY,
        )))
        .expect("request")
}

async fn send(router: axum::Router, request: Request<Body>) -> (StatusCode, Vec<u8>, String) {
    let response = router.oneshot(request).await.expect("served");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.to_vec(), content_type)
}

#[tokio::test]
async fn stow_stores_every_part_and_wado_returns_the_same_bytes() {
    let h = harness().await;
    let router = imaging::router(h.service.clone());
    let (a, b) = (fixture("US1_UNCR.dcm"), fixture("OBXXXX1A_2frame.dcm"));
    let (status, body, content_type) = send(router.clone(), stow_request(&[&a, &b])).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/dicom+json");
    let answer: Value = serde_json::from_slice(&body).expect("json");
    let referenced = answer["00081199"]["Value"].as_array().expect("referenced");
    assert_eq!(referenced.len(), 2);

    let url = referenced[1]["00081190"]["Value"][0].as_str().expect("url");
    let (status, body, content_type) = send(
        router.clone(),
        Request::get(format!("/{url}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("multipart/related"),
        "{content_type}"
    );
    let boundary = imaging::multipart::boundary(&content_type).expect("boundary");
    let parts = imaging::multipart::parts(&body, &boundary).expect("parts");
    assert_eq!(parts, [&b[..]]);

    let (status, png, content_type) = send(
        router.clone(),
        Request::get(format!("/{url}/frames/2/rendered"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (status, _, _) = send(
        router,
        Request::get(format!("/{url}/frames/3/rendered"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stow_reports_refused_parts_and_keeps_the_good_ones() {
    let h = harness().await;
    let router = imaging::router(h.service.clone());
    let good = fixture("examples_rgb_color.dcm");
    let (status, body, _) = send(router.clone(), stow_request(&[b"garbage", &good])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        answer["00081198"]["Value"][0]["00081197"]["Value"][0],
        0xC000
    );
    assert_eq!(
        answer["00081199"]["Value"].as_array().map(Vec::len),
        Some(1)
    );
    let (status, _, _) = send(router, stow_request(&[b"garbage"])).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn wado_refuses_bad_uids_and_reports_missing_instances() {
    let h = harness().await;
    let router = imaging::router(h.service.clone());
    let missing = Request::get("/studies/1.2.3/series/4.5/instances/6.7")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(router.clone(), missing).await.0, StatusCode::NOT_FOUND);
    let traversal = Request::get("/studies/1.2.3/series/..%2F..%2Fetc/instances/6.7")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        send(router.clone(), traversal).await.0,
        StatusCode::BAD_REQUEST
    );
    let not_multipart = Request::post("/studies")
        .header(header::CONTENT_TYPE, "application/dicom")
        .body(Body::from("x"))
        .expect("request");
    assert_eq!(send(router, not_multipart).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_reconciliation_queue_is_served_and_can_be_retried() {
    let h = harness().await;
    let router = imaging::router(h.service.clone());
    h.service
        .store_instance(fixture("gdcm-US-ALOKA-16.dcm"))
        .await
        .expect("stored");
    let (status, body, _) = send(
        router.clone(),
        Request::get("/reconciliation")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let queue: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(queue[0]["reason"], "unknown_patient");
    let (status, body, _) = send(
        router,
        Request::post("/reconciliation/retry")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json")["linked"],
        0
    );
}
