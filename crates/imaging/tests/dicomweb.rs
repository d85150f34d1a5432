//! DICOMweb over the axum router: bearer tokens on every route, an access
//! record per read and write, STOW-RS stores every part and reports
//! failures per part (truncated, inconsistent or conflicting instances are
//! refused, the stored copy kept), uploads beyond the limit get 413; QIDO-RS
//! searches; WADO-RS returns the stored bytes, whole studies and series,
//! metadata and PNG frames.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{fixture, harness, web};
use imaging::WebConfig;
use serde_json::Value;
use tower::ServiceExt;

const BOUNDARY: &str = "test-boundary-7d3f";

fn stow_request(token: &str, parts: &[&[u8]]) -> Request<Body> {
    Request::post("/studies")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
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

fn get(token: Option<&str>, uri: &str) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).expect("request")
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

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("json")
}

/// The parts of a `multipart/related` response.
fn parts(body: &[u8], content_type: &str) -> Vec<Vec<u8>> {
    assert!(
        content_type.starts_with("multipart/related"),
        "{content_type}"
    );
    let boundary = imaging::multipart::boundary(content_type).expect("boundary");
    imaging::multipart::parts(body, &boundary).expect("parts")
}

#[tokio::test]
async fn stow_stores_every_part_and_wado_returns_the_same_bytes() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    let (a, b) = (fixture("US1_UNCR.dcm"), fixture("OBXXXX1A_2frame.dcm"));
    let (status, body, content_type) =
        send(router.clone(), stow_request("writer", &[&a, &b])).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/dicom+json");
    let answer = json(&body);
    let referenced = answer["00081199"]["Value"].as_array().expect("referenced");
    assert_eq!(referenced.len(), 2);

    let url = referenced[1]["00081190"]["Value"][0].as_str().expect("url");
    let (status, body, content_type) =
        send(router.clone(), get(Some("reader"), &format!("/{url}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parts(&body, &content_type), [b.to_vec()]);

    let (status, png, content_type) = send(
        router.clone(),
        get(Some("reader"), &format!("/{url}/frames/2/rendered")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (status, _, _) = send(
        router,
        get(Some("reader"), &format!("/{url}/frames/3/rendered")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_route_needs_a_token_with_the_scope_and_every_access_is_recorded() {
    let h = harness().await;
    let (router, access) = web(&h, WebConfig::default());
    let (us1, other) = (fixture("US1_UNCR.dcm"), fixture("OBXXXX1A.dcm"));
    let (status, _, _) = send(router.clone(), stow_request("writer", &[&us1, &other])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(access.count(), 1, "the store is recorded");
    let us1_info =
        imaging::instance::InstanceInfo::read(&us1, &imaging::instance::ULTRASOUND_SOP_CLASSES)
            .expect("header");
    let other_info =
        imaging::instance::InstanceInfo::read(&other, &imaging::instance::ULTRASOUND_SOP_CLASSES)
            .expect("header");
    let instance_url = |i: &imaging::instance::InstanceInfo| {
        format!(
            "/studies/{}/series/{}/instances/{}",
            i.study_uid, i.series_uid, i.sop_uid
        )
    };

    // no token, or a token this server does not know: 401 on every route
    for uri in [
        instance_url(&us1_info),
        "/studies".to_string(),
        format!("/studies/{}/metadata", us1_info.study_uid),
        "/reconciliation".to_string(),
    ] {
        for token in [None, Some("forged")] {
            let response = router
                .clone()
                .oneshot(get(token, &uri))
                .await
                .expect("served");
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{uri} {token:?}"
            );
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
    }
    let anonymous_stow = Request::post("/studies")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/related; boundary={BOUNDARY}"),
        )
        .body(Body::from(imaging::multipart::build(
            &[&us1],
            "application/dicom",
            BOUNDARY,
        )))
        .expect("request");
    assert_eq!(
        send(router.clone(), anonymous_stow).await.0,
        StatusCode::UNAUTHORIZED
    );
    // a read-only token may not store
    assert_eq!(
        send(router.clone(), stow_request("reader", &[&us1]))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(access.count(), 1, "refused requests touch nothing");

    // a patient's token reaches that patient's linked studies only
    let (status, _, _) = send(router.clone(), get(Some("us1"), &instance_url(&us1_info))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(router.clone(), get(Some("us1"), &instance_url(&other_info))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = send(router.clone(), get(Some("us1"), "/studies")).await;
    assert_eq!(status, StatusCode::OK);
    let found = json(&body);
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(
        found[0]["0020000D"]["Value"][0],
        us1_info.study_uid.as_str()
    );

    let records = access.records.lock().expect("records").clone();
    assert_eq!(records.len(), 3, "one record per read and write");
    let (grant, read) = &records[1];
    assert_eq!(grant.name, "us1");
    assert_eq!(read.operation, imaging::Operation::Read);
    assert_eq!(read.studies, [us1_info.study_uid.as_str()]);
    assert_eq!(read.patients, ["patient-us1"]);
    assert_eq!(records[2].1.operation, imaging::Operation::Search);
}

/// `file` cut inside its Pixel Data.
fn truncated(file: &[u8]) -> Vec<u8> {
    file[..file.len() - 1000].to_vec()
}

#[tokio::test]
async fn truncated_and_conflicting_instances_are_refused_and_the_stored_copy_kept() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    let good = fixture("US1_UNCR.dcm");
    let info =
        imaging::instance::InstanceInfo::read(&good, &imaging::instance::ULTRASOUND_SOP_CLASSES)
            .expect("header");
    assert_eq!(
        send(router.clone(), stow_request("writer", &[&good]))
            .await
            .0,
        StatusCode::OK
    );

    // cut inside Pixel Data: refused with 0xC000 and a reason
    let (status, body, _) =
        send(router.clone(), stow_request("writer", &[&truncated(&good)])).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let failure = &json(&body)["00081198"]["Value"][0];
    assert_eq!(failure["00081197"]["Value"][0], 0xC000);
    let reason = failure["00081196"]["Value"][0].as_str().expect("reason");
    assert!(reason.contains("truncated"), "{reason}");

    // another object under the same SOP Instance UID: refused (0x0111)
    let mut altered = good.to_vec();
    let last = altered.len() - 1;
    altered[last] ^= 0xFF;
    let (status, body, _) = send(router.clone(), stow_request("writer", &[&altered])).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        json(&body)["00081198"]["Value"][0]["00081197"]["Value"][0],
        0x0111
    );

    // the same bytes again: fine, nothing changes
    assert_eq!(
        send(router.clone(), stow_request("writer", &[&good]))
            .await
            .0,
        StatusCode::OK
    );
    let stored = h
        .service
        .retrieve(&info.study_uid, &info.series_uid, &info.sop_uid)
        .await
        .expect("still stored");
    assert_eq!(stored, good, "the complete copy is kept");
}

#[tokio::test]
async fn uploads_beyond_the_limit_get_413_and_store_nothing() {
    let h = harness().await;
    let good = fixture("US1_UNCR.dcm");
    let config = WebConfig {
        max_upload_bytes: good.len() as u64 / 2,
        ..WebConfig::default()
    };
    let (router, _) = web(&h, config);
    assert_eq!(
        send(router.clone(), stow_request("writer", &[&good]))
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // the same without a Content-Length: the streamed count stops it
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        imaging::multipart::build(&[&good], "application/dicom", BOUNDARY)
            .chunks(64 * 1024)
            .map(|c| Ok(c.to_vec()))
            .collect();
    let request = Request::post("/studies")
        .header(header::AUTHORIZATION, "Bearer writer")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/related; boundary={BOUNDARY}"),
        )
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .expect("request");
    assert_eq!(send(router, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.service.studies().await.is_empty());
}

#[tokio::test]
async fn stow_reports_refused_parts_and_keeps_the_good_ones() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    let good = fixture("examples_rgb_color.dcm");
    let (status, body, _) =
        send(router.clone(), stow_request("writer", &[b"garbage", &good])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let answer = json(&body);
    assert_eq!(
        answer["00081198"]["Value"][0]["00081197"]["Value"][0],
        0xC000
    );
    assert_eq!(
        answer["00081199"]["Value"].as_array().map(Vec::len),
        Some(1)
    );
    let (status, _, _) = send(router, stow_request("writer", &[b"garbage"])).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn qido_finds_studies_series_and_instances_by_the_standard_attributes() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    let files = [
        fixture("US1_UNCR.dcm"),
        fixture("US1_J2KR.dcm"),
        fixture("OBXXXX1A.dcm"),
        fixture("GREYSCALE_CINE.dcm"),
    ];
    let refs: Vec<&[u8]> = files.iter().map(|f| &f[..]).collect();
    let (status, body, _) = send(router.clone(), stow_request("writer", &refs)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let search = |uri: &str| {
        let router = router.clone();
        let uri = uri.to_string();
        async move {
            let (status, body, content_type) = send(router, get(Some("reader"), &uri)).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{uri}: {}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(content_type, "application/dicom+json");
            json(&body).as_array().expect("array").clone()
        }
    };
    let studies = search("/studies").await;
    assert!(studies.len() >= 2, "{studies:?}");
    let us1 = search("/studies?PatientID=13US1").await;
    assert!(!us1.is_empty());
    assert!(us1.iter().all(|s| s["00100020"]["Value"][0] == "13US1"));
    assert_eq!(us1[0]["00080061"]["Value"][0], "US");
    let study_uid = us1[0]["0020000D"]["Value"][0]
        .as_str()
        .expect("uid")
        .to_string();
    assert_eq!(
        search(&format!("/studies?StudyInstanceUID=9.9.9,{study_uid}"))
            .await
            .len(),
        1
    );
    assert_eq!(search("/studies?00100020=13US*").await.len(), us1.len());
    assert!(search("/studies?PatientID=nobody").await.is_empty());
    assert!(
        search("/studies?StudyDate=19000101-19001231")
            .await
            .is_empty()
    );
    assert_eq!(search("/studies?limit=1").await.len(), 1);
    assert_eq!(search("/studies?offset=1").await.len(), studies.len() - 1);

    let series = search(&format!("/studies/{study_uid}/series")).await;
    assert!(!series.is_empty());
    let series_uid = series[0]["0020000E"]["Value"][0]
        .as_str()
        .expect("uid")
        .to_string();
    let instances = search(&format!(
        "/studies/{study_uid}/series/{series_uid}/instances"
    ))
    .await;
    assert_eq!(
        instances.len() as u64,
        series[0]["00201209"]["Value"][0].as_u64().expect("count")
    );
    assert!(instances[0]["00080018"]["Value"][0].is_string());
    let all = search("/instances?Modality=US").await;
    assert_eq!(all.len(), files.len());
    assert_eq!(search("/series?SeriesInstanceUID=1.2.3").await.len(), 0);
    let (status, _, _) = send(router.clone(), get(Some("reader"), "/studies?limit=x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wado_retrieves_whole_studies_and_series_and_their_metadata() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    let (a, b) = (fixture("OBXXXX1A.dcm"), fixture("OBXXXX1A_2frame.dcm"));
    send(router.clone(), stow_request("writer", &[&a, &b])).await;
    let info =
        imaging::instance::InstanceInfo::read(&a, &imaging::instance::ULTRASOUND_SOP_CLASSES)
            .expect("header");
    let record = h.service.study(&info.study_uid).await.expect("indexed");
    let expected = record.instance_count();

    let (status, body, content_type) = send(
        router.clone(),
        get(Some("reader"), &format!("/studies/{}", info.study_uid)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.contains(r#"type="application/dicom""#),
        "{content_type}"
    );
    let study_parts = parts(&body, &content_type);
    assert_eq!(study_parts.len(), expected);
    assert!(study_parts.contains(&a.to_vec()));

    let (status, body, content_type) = send(
        router.clone(),
        get(
            Some("reader"),
            &format!("/studies/{}/series/{}", info.study_uid, info.series_uid),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        parts(&body, &content_type).len(),
        record.series[&info.series_uid].instances.len()
    );

    let (status, body, content_type) = send(
        router.clone(),
        get(
            Some("reader"),
            &format!("/studies/{}/metadata", info.study_uid),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/dicom+json");
    let metadata = json(&body);
    let metadata = metadata.as_array().expect("array");
    assert_eq!(metadata.len(), expected);
    assert!(
        metadata.iter().all(|m| m.get("7FE00010").is_none()),
        "no pixel data"
    );
    assert!(
        metadata
            .iter()
            .any(|m| m["00080018"]["Value"][0] == info.sop_uid.as_str())
    );
    assert_eq!(metadata[0]["00080016"]["vr"], "UI");

    let (status, _, _) = send(
        router,
        get(Some("reader"), "/studies/1.2.3/series/4.5/metadata"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wado_refuses_bad_uids_and_reports_missing_instances() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    let missing = get(Some("reader"), "/studies/1.2.3/series/4.5/instances/6.7");
    assert_eq!(send(router.clone(), missing).await.0, StatusCode::NOT_FOUND);
    let traversal = get(
        Some("reader"),
        "/studies/1.2.3/series/..%2F..%2Fetc/instances/6.7",
    );
    assert_eq!(
        send(router.clone(), traversal).await.0,
        StatusCode::BAD_REQUEST
    );
    let not_multipart = Request::post("/studies")
        .header(header::AUTHORIZATION, "Bearer writer")
        .header(header::CONTENT_TYPE, "application/dicom")
        .body(Body::from("x"))
        .expect("request");
    assert_eq!(send(router, not_multipart).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_reconciliation_queue_is_served_and_can_be_retried() {
    let h = harness().await;
    let (router, _) = web(&h, WebConfig::default());
    h.service
        .store_instance(fixture("gdcm-US-ALOKA-16.dcm"))
        .await
        .expect("stored");
    assert_eq!(
        send(router.clone(), get(Some("reader"), "/reconciliation"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body, _) = send(router.clone(), get(Some("writer"), "/reconciliation")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)[0]["reason"], "unknown_patient");
    let retry = Request::post("/reconciliation/retry")
        .header(header::AUTHORIZATION, "Bearer writer")
        .body(Body::empty())
        .expect("request");
    let (status, body, _) = send(router, retry).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["linked"], 0);
}
