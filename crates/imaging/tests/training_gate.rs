//! The training gate over a store of ultrasound fixtures: a patient with
//! canary identifiers planted in the headers, one whose Consent refuses
//! research use, one the EHR does not know, one file without Patient ID and
//! one broken file. Only consenting, linked patients come out, de-identified,
//! and nothing identifying does.
//!
//! The OCR test needs `tesseract`. Without it the test says so and passes,
//! unless `COHORT_REQUIRE_TOOLS=1` (CI), where it fails.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::fixture;
use dicom_core::value::Value;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use futures::future::BoxFuture;
use imaging::gate::frame::{FrameCrop, training_frame};
use imaging::gate::{FileStatus, MANIFEST, REPORT};
use imaging::instance::{InstanceInfo, ULTRASOUND_SOP_CLASSES};
use imaging::{
    ConsentCheck, GateOptions, GateReport, ImageStore, Imaging, MemoryDirectory, MemorySink,
    PatientRef, TrainingGate,
};
use serde_json::{Value as Json, json};

const CANARY_NAME: &str = "CANARY^ZEBRA";
const CANARY_ID: &str = "CNRY-12345";
const CANARY_ACCESSION: &str = "CNRYACC77";
const REFUSED_ID: &str = "RFSD-777";
const UNKNOWN_ID: &str = "UNKN-999";
/// The Patient ID of OBXXXX1A, also burned into its pixels.
const OB_ID: &str = "11-05-25-142825";

/// Consents evaluated by the EHR gate's own rule.
struct EhrConsents(Vec<Json>);

impl ConsentCheck for EhrConsents {
    fn refuses_research<'a>(
        &'a self,
        patient: &'a PatientRef,
    ) -> BoxFuture<'a, imaging::Result<bool>> {
        let purposes = ehr::gate::default_research_purposes();
        let now = ehr::datetime::now_micros();
        let refused = self.0.iter().any(|consent| {
            ehr::gate::denying_patient(consent, &purposes, now).as_deref()
                == Some(patient.id.as_str())
        });
        Box::pin(async move { Ok(refused) })
    }
}

fn consent(patient: &str, status: &str, provision: &str) -> Json {
    json!({
        "resourceType": "Consent", "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "provision": {"type": provision},
    })
}

fn key() -> deid::DeidKey {
    deid::DeidKey::new(b"training gate test key, not a real secret").expect("key")
}

/// A fixture with new patient attributes and study/series UIDs.
fn planted(name: &str, patient: &[(Tag, VR, &str)], study: &str, series: &str) -> Vec<u8> {
    let mut file = deid::parse(&fixture(name)).expect("fixture parses");
    for (tag, vr, value) in patient {
        file.put(DataElement::new(*tag, *vr, PrimitiveValue::from(*value)));
    }
    file.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(study),
    ));
    file.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(series),
    ));
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("writes");
    bytes
}

fn canary(name: &str, series: &str) -> Vec<u8> {
    planted(
        name,
        &[
            (tags::PATIENT_NAME, VR::PN, CANARY_NAME),
            (tags::PATIENT_ID, VR::LO, CANARY_ID),
            (tags::ACCESSION_NUMBER, VR::SH, CANARY_ACCESSION),
        ],
        "1.2.826.0.1.3680043.10.1234.1",
        series,
    )
}

/// What the test expects of one stored input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Exported,
    Refused,
    Unreconciled,
    Broken,
}

struct Input {
    name: &'static str,
    bytes: Vec<u8>,
    info: InstanceInfo,
    expect: Expect,
}

struct Export {
    _store: tempfile::TempDir,
    out: tempfile::TempDir,
    inputs: Vec<Input>,
    report: GateReport,
}

impl Export {
    fn input_of(&self, instance_key: &str) -> &Input {
        let key = key();
        self.inputs
            .iter()
            .find(|i| key.uid(&i.info.sop_uid) == instance_key)
            .expect("an input for every key")
    }
}

fn inputs() -> Vec<(&'static str, Vec<u8>, Expect)> {
    vec![
        (
            "US1_UNCR.dcm",
            canary("US1_UNCR.dcm", "1.2.826.0.1.3680043.10.1234.1.1"),
            Expect::Exported,
        ),
        (
            "GREYSCALE_IMAGE.dcm",
            canary("GREYSCALE_IMAGE.dcm", "1.2.826.0.1.3680043.10.1234.1.2"),
            Expect::Exported,
        ),
        (
            "color-px.dcm",
            canary("color-px.dcm", "1.2.826.0.1.3680043.10.1234.1.3"),
            Expect::Broken,
        ),
        (
            "OBXXXX1A.dcm",
            fixture("OBXXXX1A.dcm").to_vec(),
            Expect::Exported,
        ),
        (
            "examples_rgb_color.dcm",
            planted(
                "examples_rgb_color.dcm",
                &[(tags::PATIENT_ID, VR::LO, REFUSED_ID)],
                "1.2.826.0.1.3680043.10.1234.2",
                "1.2.826.0.1.3680043.10.1234.2.1",
            ),
            Expect::Refused,
        ),
        (
            "JPGLosslessP14SV1_1s_1f_8b.dcm",
            planted(
                "JPGLosslessP14SV1_1s_1f_8b.dcm",
                &[(tags::PATIENT_ID, VR::LO, UNKNOWN_ID)],
                "1.2.826.0.1.3680043.10.1234.3",
                "1.2.826.0.1.3680043.10.1234.3.1",
            ),
            Expect::Unreconciled,
        ),
        (
            "ExplVR_BigEnd.dcm",
            fixture("ExplVR_BigEnd.dcm").to_vec(),
            Expect::Unreconciled,
        ),
    ]
}

/// Store every input through the ingest service, then export.
async fn export() -> Export {
    let store_dir = tempfile::tempdir().expect("temp dir");
    let directory = Arc::new(MemoryDirectory::default());
    for (identifier, id) in [
        (CANARY_ID, "p-canary"),
        (OB_ID, "p-ob"),
        (REFUSED_ID, "p-refused"),
    ] {
        directory.add(
            identifier,
            PatientRef {
                id: id.into(),
                display: None,
            },
        );
    }
    let store = ImageStore::local(store_dir.path()).expect("store");
    let service = Imaging::open(
        store.clone(),
        directory.clone(),
        Arc::new(MemorySink::default()),
    )
    .await
    .expect("service");
    let mut stored = Vec::new();
    for (name, bytes, expect) in inputs() {
        let info = InstanceInfo::read(&bytes, &ULTRASOUND_SOP_CLASSES).expect("header readable");
        service
            .store_instance(bytes.clone().into())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if expect == Expect::Broken {
            // ingest refuses truncated files: the stored copy breaks later
            store
                .put(&info.path(), bytes[..bytes.len() - 1000].to_vec().into())
                .await
                .expect("damaged");
        }
        stored.push(Input {
            name,
            bytes,
            info,
            expect,
        });
    }
    let consents = EhrConsents(vec![
        consent("p-refused", "active", "deny"),
        consent("p-canary", "active", "permit"),
        consent("p-ob", "inactive", "deny"),
    ]);
    let gate = TrainingGate::new(
        store,
        directory,
        Arc::new(consents),
        key(),
        GateOptions::default(),
    )
    .expect("gate");
    let selection = gate.select().await.expect("selection");
    let out = tempfile::tempdir().expect("temp dir");
    let report = gate
        .export(&selection, &out.path().join("export"), &|_| {})
        .await
        .expect("export");
    Export {
        _store: store_dir,
        out,
        inputs: stored,
        report,
    }
}

fn out_dir(export: &Export) -> PathBuf {
    export.out.path().join("export")
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("listable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn manifest_rows(dir: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).expect("manifest");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn decode_png(bytes: &[u8]) -> (u32, u32, png::ColorType, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    buffer.truncate(info.buffer_size());
    (info.width, info.height, info.color_type, buffer)
}

/// Text values of every element, at any depth, with their VR.
fn all_values(obj: &InMemDicomObject, out: &mut Vec<(VR, String)>) {
    for element in obj.iter() {
        match element.value() {
            Value::Sequence(seq) => {
                for item in seq.items() {
                    all_values(item, out);
                }
            }
            Value::Primitive(_) => {
                if let Ok(text) = element.to_str() {
                    out.push((element.vr(), text.trim_end_matches(['\0', ' ']).to_string()));
                }
            }
            Value::PixelSequence(_) => {}
        }
    }
}

#[tokio::test]
async fn refused_and_unreconciled_instances_are_left_out_and_counted() {
    let export = export().await;
    let report = &export.report;
    let count = |e: Expect| export.inputs.iter().filter(|i| i.expect == e).count();
    assert_eq!(report.exported, count(Expect::Exported));
    assert_eq!(report.excluded_by_consent, count(Expect::Refused));
    assert_eq!(report.unreconciled, count(Expect::Unreconciled));
    assert_eq!(report.failed, count(Expect::Broken));
    assert_eq!(
        report.patients.iter().collect::<Vec<_>>(),
        ["p-canary", "p-ob"]
    );
    for file in &report.files {
        let input = export.input_of(&file.instance_key);
        match input.expect {
            Expect::Exported => assert_eq!(file.status, FileStatus::Exported, "{}", input.name),
            Expect::Broken => assert_eq!(file.status, FileStatus::Failed, "{}", input.name),
            other => panic!("{} ({other:?}) was tried", input.name),
        }
    }
    let rows = manifest_rows(&out_dir(&export));
    assert_eq!(rows.len(), report.exported);
    let report_lines = std::fs::read_to_string(out_dir(&export).join(REPORT)).expect("report");
    assert_eq!(
        report_lines.lines().count(),
        report.exported + report.failed
    );
}

#[tokio::test]
async fn no_canary_original_uid_or_patient_id_is_in_any_exported_byte() {
    let export = export().await;
    let mut forbidden: Vec<String> = [CANARY_NAME, "CANARY", "ZEBRA", CANARY_ID, CANARY_ACCESSION]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for input in &export.inputs {
        // the broken input is read up to its pixel data
        let file = dicom_object::OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .from_reader(&input.bytes[..])
            .expect("header parses");
        let mut values = Vec::new();
        all_values(&file, &mut values);
        for (vr, value) in values {
            let original_uid = vr == VR::UI && !value.starts_with("1.2.840.10008.");
            if original_uid && !value.is_empty() {
                forbidden.push(value);
            }
        }
        for tag in [tags::PATIENT_ID, tags::ACCESSION_NUMBER] {
            if let Some(value) = file.get(tag).and_then(|e| e.to_str().ok()) {
                let value = value.trim_end_matches(['\0', ' ']);
                if value.len() >= 4 {
                    forbidden.push(value.to_string());
                }
            }
        }
        if let Some(name) = file.get(tags::PATIENT_NAME).and_then(|e| e.to_str().ok()) {
            forbidden.extend(
                name.split(['^', ' '])
                    .filter(|part| part.len() >= 5)
                    .map(str::to_string),
            );
        }
    }
    forbidden.sort();
    forbidden.dedup();
    for planted in [OB_ID, "1.2.826.0.1.3680043.10.1234.1"] {
        assert!(forbidden.iter().any(|f| f == planted), "{planted} checked");
    }
    let dir = out_dir(&export);
    let files = files_under(&dir);
    assert!(files.iter().any(|f| f == MANIFEST) && files.iter().any(|f| f.ends_with(".png")));
    for name in files {
        let bytes = std::fs::read(dir.join(&name)).expect("readable");
        assert!(!name.contains("1.2.826.0.1.3680043.10.1234"), "{name}");
        for value in &forbidden {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{value:?} found in {name}"
            );
        }
    }
}

/// The smallest rectangle holding every data region of the input
/// (Region Data Type tissue, flow, Doppler, traces), as (x, y, w, h).
fn data_regions(obj: &InMemDicomObject, cols: u32, rows: u32) -> Vec<(u32, u32, u32, u32)> {
    let Some(items) = obj
        .get(tags::SEQUENCE_OF_ULTRASOUND_REGIONS)
        .and_then(|e| e.items())
    else {
        return Vec::new();
    };
    let int = |item: &InMemDicomObject, tag| item.get(tag).and_then(|e| e.to_int::<i64>().ok());
    items
        .iter()
        .filter(|item| {
            int(item, tags::REGION_DATA_TYPE).is_some_and(|t| matches!(t, 1..=12 | 15..=18))
        })
        .filter_map(|item| {
            let x0 = int(item, tags::REGION_LOCATION_MIN_X0)?.max(0) as u32;
            let y0 = int(item, tags::REGION_LOCATION_MIN_Y0)?.max(0) as u32;
            let x1 = (int(item, tags::REGION_LOCATION_MAX_X1)? as u32).min(cols - 1);
            let y1 = (int(item, tags::REGION_LOCATION_MAX_Y1)? as u32).min(rows - 1);
            Some((x0, y0, x1 - x0 + 1, y1 - y0 + 1))
        })
        .collect()
}

fn inside(x: u32, y: u32, (rx, ry, rw, rh): (u32, u32, u32, u32)) -> bool {
    x >= rx && x < rx + rw && y >= ry && y < ry + rh
}

#[tokio::test]
async fn each_training_frame_is_the_data_region_with_its_pixels_unchanged() {
    let export = export().await;
    let dir = out_dir(&export);
    for row in manifest_rows(&dir) {
        let input = export.input_of(&row["instance_key"]);
        let original = deid::parse(&input.bytes).expect("input parses");
        let cols = u32::from(
            original
                .get(tags::COLUMNS)
                .expect("cols")
                .to_int::<u16>()
                .expect("n"),
        );
        let rows = u32::from(
            original
                .get(tags::ROWS)
                .expect("rows")
                .to_int::<u16>()
                .expect("n"),
        );
        let mut regions = data_regions(&original, cols, rows);
        if regions.is_empty() {
            regions.push((0, 0, cols, rows));
        }
        let x = regions.iter().map(|r| r.0).min().expect("a region");
        let y = regions.iter().map(|r| r.1).min().expect("a region");
        let width = regions.iter().map(|r| r.0 + r.2).max().expect("a region") - x;
        let height = regions.iter().map(|r| r.1 + r.3).max().expect("a region") - y;

        let png_bytes = std::fs::read(dir.join(&row["frame"])).expect("frame written");
        let (w, h, color, pixels) = decode_png(&png_bytes);
        assert_eq!(color, png::ColorType::Grayscale, "{}", input.name);
        assert_eq!((w, h), (width, height), "{}", input.name);
        assert_eq!(
            (row["crop_x"].as_str(), row["crop_y"].as_str()),
            (x.to_string().as_str(), y.to_string().as_str())
        );

        let whole = training_frame(&original, FrameCrop::WholeFrame).expect("input frame");
        let (_, _, _, reference) = decode_png(&whole.png);
        let outcome = export
            .report
            .files
            .iter()
            .find(|f| f.instance_key == row["instance_key"])
            .expect("outcome");
        let boxes: Vec<(u32, u32, u32, u32)> = outcome
            .exported
            .as_ref()
            .and_then(|e| e.pixels.as_ref())
            .map(|p| {
                p.boxes
                    .iter()
                    .map(|b| (b.x, b.y, b.width, b.height))
                    .collect()
            })
            .unwrap_or_default();
        let (mut compared, mut data) = (0usize, 0usize);
        for py in y..y + height {
            for px in x..x + width {
                if !regions.iter().any(|r| inside(px, py, *r)) {
                    continue;
                }
                data += 1;
                if boxes.iter().any(|b| inside(px, py, *b)) {
                    continue;
                }
                compared += 1;
                let out = pixels[((py - y) * width + (px - x)) as usize];
                let before = reference[(py * cols + px) as usize];
                assert_eq!(out, before, "{} pixel ({px}, {py})", input.name);
            }
        }
        assert!(
            compared * 2 > data,
            "{}: only {compared} of {data} data pixels kept",
            input.name
        );

        // the DICOM file beside it is readable and keyed like the manifest
        let dicom = deid::parse(&std::fs::read(dir.join(&row["dicom"])).expect("dicom written"))
            .expect("exported DICOM parses");
        let uid = |tag| {
            dicom
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
        };
        assert_eq!(
            uid(tags::STUDY_INSTANCE_UID),
            Some(row["study_key"].clone())
        );
        assert_eq!(
            uid(tags::SERIES_INSTANCE_UID),
            Some(row["series_key"].clone())
        );
        assert_eq!(
            uid(tags::SOP_INSTANCE_UID),
            Some(row["instance_key"].clone())
        );
    }
}

#[tokio::test]
async fn a_broken_file_fails_alone_and_leaves_no_output() {
    let export = export().await;
    let failed: Vec<_> = export
        .report
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].error.is_some());
    assert!(failed[0].exported.is_none());
    let dir = out_dir(&export);
    let mut expected: Vec<String> = manifest_rows(&dir)
        .iter()
        .flat_map(|row| [row["dicom"].clone(), row["frame"].clone()])
        .chain([MANIFEST.to_string(), REPORT.to_string()])
        .collect();
    expected.sort();
    assert_eq!(files_under(&dir), expected, "nothing else, nothing partial");
    assert!(
        !files_under(&dir)
            .iter()
            .any(|f| f.contains(&failed[0].instance_key))
    );
}

/// Whether tesseract is there; panics when it must be.
fn tesseract_present() -> bool {
    let present = Command::new("tesseract")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "tesseract missing"
        );
        eprintln!("skipped: tesseract missing");
    }
    present
}

/// What tesseract reads in a grayscale PNG, scaled up twice (without spaces).
fn ocr(png_bytes: &[u8], work: &Path, name: &str) -> String {
    let (w, h, _, pixels) = decode_png(png_bytes);
    let mut big = Vec::with_capacity(pixels.len() * 4);
    for y in 0..h * 2 {
        for x in 0..w * 2 {
            big.push(pixels[((y / 2) * w + x / 2) as usize]);
        }
    }
    let path = work.join(name);
    std::fs::write(
        &path,
        imaging::gate::frame::gray_png(&big, w * 2, h * 2).expect("encodes"),
    )
    .expect("write");
    let out = Command::new("tesseract")
        .arg(&path)
        .args(["-", "--psm", "11"])
        .output()
        .expect("tesseract runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect()
}

#[tokio::test]
async fn tesseract_reads_the_burned_in_patient_id_before_the_gate_and_not_after() {
    if !tesseract_present() {
        return;
    }
    let export = export().await;
    let dir = out_dir(&export);
    let work = tempfile::tempdir().expect("temp dir");
    let row = manifest_rows(&dir)
        .into_iter()
        .find(|row| export.input_of(&row["instance_key"]).name == "OBXXXX1A.dcm")
        .expect("OBXXXX1A exported");
    let input = export.input_of(&row["instance_key"]);
    let before = training_frame(
        &deid::parse(&input.bytes).expect("parses"),
        FrameCrop::WholeFrame,
    )
    .expect("frame");
    let text_before = ocr(&before.png, work.path(), "before.png");
    assert!(
        text_before.contains(OB_ID),
        "OCR does not read {OB_ID} in the input: {text_before}"
    );
    let exported_frame = std::fs::read(dir.join(&row["frame"])).expect("frame");
    let exported_dicom =
        deid::parse(&std::fs::read(dir.join(&row["dicom"])).expect("dicom")).expect("parses");
    let whole_after = training_frame(&exported_dicom, FrameCrop::WholeFrame).expect("frame");
    for (label, png_bytes) in [
        ("training frame", exported_frame),
        ("whole exported frame", whole_after.png),
    ] {
        let text = ocr(&png_bytes, work.path(), "after.png");
        assert!(
            !text.contains(OB_ID) && !text.contains("142825"),
            "OCR reads the patient id in the {label}: {text}"
        );
    }
}
