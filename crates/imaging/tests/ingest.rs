//! Storing instances: the ImagingStudy of a known patient, the
//! reconciliation queue for unknown ones, persistence across restarts.

mod common;

use common::{fixture, harness};
use imaging::{ImageStore, Imaging, ImagingError, Link, PatientRef, QueueReason};

#[tokio::test]
async fn a_study_of_a_known_patient_becomes_an_imaging_study_with_its_instances() {
    let h = harness().await;
    let first = h
        .service
        .store_instance(fixture("US1_UNCR.dcm"))
        .await
        .expect("stored");
    assert_eq!(first.link, Link::Linked("patient-us1".into()));
    h.service
        .store_instance(fixture("examples_rgb_color.dcm"))
        .await
        .expect("stored");

    let study = h
        .sink
        .get(&first.info.study_uid)
        .expect("ImagingStudy upserted");
    assert_eq!(study["resourceType"], "ImagingStudy");
    assert_eq!(study["subject"]["reference"], "Patient/patient-us1");
    assert_eq!(study["status"], "available");
    assert_eq!(study["modality"][0]["code"], "US");
    assert_eq!(study["started"], "2004-08-26T18:50:59");
    let instances: usize = study["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| s["instance"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(study["numberOfInstances"].as_u64(), Some(instances as u64));
    assert_eq!(
        study["series"][0]["instance"][0]["sopClass"]["code"],
        "urn:oid:1.2.840.10008.5.1.4.1.1.6.1"
    );
}

#[tokio::test]
async fn an_unknown_patient_is_queued_then_linked_when_the_ehr_knows_them() {
    let h = harness().await;
    let stored = h
        .service
        .store_instance(fixture("OBXXXX1A.dcm"))
        .await
        .expect("stored");
    assert_eq!(stored.link, Link::Queued(QueueReason::UnknownPatient));
    assert!(h.sink.is_empty());
    let queue = h.service.reconciliation_queue().await.expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(
        queue[0].patient.as_ref().map(|p| p.value.as_str()),
        Some("11-05-25-142825")
    );

    h.directory.add(
        "11-05-25-142825",
        PatientRef {
            id: "p-ob".into(),
            display: None,
        },
    );
    assert_eq!(h.service.reconcile().await.expect("reconcile"), 1);
    assert!(
        h.service
            .reconciliation_queue()
            .await
            .expect("queue")
            .is_empty()
    );
    assert_eq!(
        h.sink.get(&stored.info.study_uid).expect("linked")["subject"]["reference"],
        "Patient/p-ob"
    );
}

#[tokio::test]
async fn an_instance_without_patient_id_is_queued_not_dropped() {
    let h = harness().await;
    let stored = h
        .service
        .store_instance(fixture("color-px.dcm"))
        .await
        .expect("stored");
    assert_eq!(stored.link, Link::Queued(QueueReason::NoPatientId));
    let info = &stored.info;
    let back = h
        .service
        .retrieve(&info.study_uid, &info.series_uid, &info.sop_uid)
        .await
        .expect("stored bytes");
    assert_eq!(back, fixture("color-px.dcm"));
}

#[tokio::test]
async fn the_index_survives_a_restart() {
    let h = harness().await;
    let stored = h
        .service
        .store_instance(fixture("US1_UNCI.dcm"))
        .await
        .expect("stored");
    let reopened = Imaging::open(
        ImageStore::local(h.dir.path()).expect("store"),
        h.directory.clone(),
        h.sink.clone(),
    )
    .await
    .expect("reopens");
    let study = reopened
        .study(&stored.info.study_uid)
        .await
        .expect("indexed");
    assert_eq!(study.instance_count(), 1);
    assert_eq!(study.patient.map(|p| p.value), Some("13US1".into()));
}

#[tokio::test]
async fn non_ultrasound_and_unreadable_instances_are_refused() {
    let h = harness().await;
    let mut bytes = fixture("US1_UNCR.dcm").to_vec();
    // relabel as CT Image Storage (same length)
    let ultrasound = b"1.2.840.10008.5.1.4.1.1.6.1";
    while let Some(at) = bytes
        .windows(ultrasound.len())
        .position(|w| w == ultrasound)
    {
        bytes[at..at + ultrasound.len()].copy_from_slice(b"1.2.840.10008.5.1.4.1.1.2.0");
    }
    let refused = h.service.store_instance(bytes.into()).await;
    assert!(
        matches!(refused, Err(ImagingError::UnsupportedSopClass(_))),
        "{refused:?}"
    );
    let garbage = h
        .service
        .store_instance(bytes::Bytes::from_static(b"not dicom"))
        .await;
    assert!(
        matches!(garbage, Err(ImagingError::InvalidInstance(_))),
        "{garbage:?}"
    );
}

#[tokio::test]
async fn every_fixture_passes_the_checks_and_a_resend_changes_nothing() {
    let mut names: Vec<String> = std::fs::read_dir(common::fixtures_dir())
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dcm"))
        .collect();
    names.sort();
    for name in &names {
        // several fixtures are variants of one SOP instance: one store each
        let h = harness().await;
        let first = h.service.store_instance(fixture(name)).await;
        let first = first.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!first.already_stored, "{name}");
        let again = h
            .service
            .store_instance(fixture(name))
            .await
            .expect("resend");
        assert!(again.already_stored, "{name}");
        assert_eq!(again.link, first.link, "{name}");
    }
}

/// `name` with its Rows element set to `rows`, re-encoded.
fn with_rows(name: &str, rows: u16) -> bytes::Bytes {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let mut object = dicom_object::OpenFileOptions::new()
        .from_reader(&fixture(name)[128..])
        .expect("fixture parses");
    object.put(DataElement::new(
        dicom_dictionary_std::tags::ROWS,
        VR::US,
        PrimitiveValue::from(rows),
    ));
    let mut out = Vec::new();
    object.write_all(&mut out).expect("re-encodes");
    out.into()
}

#[tokio::test]
async fn truncated_and_inconsistent_instances_are_refused_before_anything_is_stored() {
    let h = harness().await;
    let good = fixture("US1_UNCR.dcm");
    for cut in [good.len() - 1, good.len() - 5000, good.len() / 2] {
        let refused = h.service.store_instance(good.slice(..cut)).await;
        assert!(
            matches!(refused, Err(ImagingError::InvalidInstance(_))),
            "cut at {cut}: {refused:?}"
        );
    }
    // an encapsulated file cut inside its fragments
    let jpeg = fixture("US1_J2KR.dcm");
    let refused = h
        .service
        .store_instance(jpeg.slice(..jpeg.len() - 100))
        .await;
    assert!(
        matches!(refused, Err(ImagingError::InvalidInstance(_))),
        "{refused:?}"
    );
    // complete, but Rows says more pixels than Pixel Data holds
    let refused = h
        .service
        .store_instance(with_rows("US1_UNCR.dcm", 481))
        .await;
    assert!(
        matches!(&refused, Err(ImagingError::Inconsistent(m)) if m.contains("Pixel Data holds")),
        "{refused:?}"
    );
    assert!(h.service.studies().await.is_empty());
    assert!(
        h.service
            .reconciliation_queue()
            .await
            .expect("queue")
            .is_empty()
    );
}

#[tokio::test]
async fn a_different_object_under_a_stored_sop_instance_uid_is_a_conflict() {
    let h = harness().await;
    let good = fixture("US1_UNCR.dcm");
    let stored = h
        .service
        .store_instance(good.clone())
        .await
        .expect("stored");
    let mut altered = good.to_vec();
    let last = altered.len() - 1;
    altered[last] ^= 0xFF;
    let refused = h.service.store_instance(altered.into()).await;
    assert!(
        matches!(refused, Err(ImagingError::Conflict(_))),
        "{refused:?}"
    );
    let kept = h
        .service
        .retrieve(
            &stored.info.study_uid,
            &stored.info.series_uid,
            &stored.info.sop_uid,
        )
        .await
        .expect("kept");
    assert_eq!(kept, good);
}
