//! JPEG-LS inputs, made at test time by dcmtk's `dcmcjpls` from fixtures
//! with burned-in text, are decoded here sample for sample as dcmtk's
//! `dcmdjpls` decodes them (every interleave mode, near-lossless too), and
//! come out cleaned and written as JPEG-LS Lossless that `dcmdjpls` (and
//! pydicom with pylibjpeg-libjpeg) decodes to exactly the pixels the native
//! path gives: unchanged outside the cleaned regions, blank inside.
//!
//! Needs `dcmcjpls` and `dcmdjpls` (dcmtk); pydicom is used when a Python
//! (`$COHORT_PYTHON`, default `python3`) has pydicom, numpy, pylibjpeg and
//! pylibjpeg-libjpeg. Without them the tests say so and pass, unless
//! `COHORT_REQUIRE_TOOLS=1` (CI), where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixtures_dir, key};
use deid::pixel::image::Image;
use deid::pixel::jpegls::{self, Interleave};
use deid::{Deidentifier, Options};
use dicom_dictionary_std::tags;

const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";

fn python() -> String {
    std::env::var("COHORT_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn require_tools() -> bool {
    std::env::var("COHORT_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Whether the dcmtk tools are there; panics when they must be.
fn dcmtk_present() -> bool {
    let missing: Vec<&str> = ["dcmcjpls", "dcmdjpls"]
        .into_iter()
        .filter(|c| {
            Command::new("which")
                .arg(c)
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("missing external tools: {}", missing.join(", "));
    assert!(!require_tools(), "{message}");
    eprintln!("skipped: {message}");
    false
}

/// Whether pydicom can decode JPEG-LS here; panics when it must.
fn pydicom_present() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import pydicom, numpy, pylibjpeg, libjpeg"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let message = "python modules pydicom, numpy, pylibjpeg, libjpeg missing";
        assert!(!require_tools(), "{message}");
        eprintln!("pydicom check skipped: {message}");
    }
    ok
}

/// Run a dcmtk tool; panics with its message when it fails.
fn dcmtk(tool: &str, args: &[&str], input: &Path, output: &Path) {
    let done = Command::new(tool)
        .args(args)
        .arg(input)
        .arg(output)
        .output()
        .expect("dcmtk runs");
    assert!(
        done.status.success(),
        "{tool} {args:?} {}: {}",
        input.display(),
        String::from_utf8_lossy(&done.stderr)
    );
}

fn read(path: &Path) -> dicom_object::DefaultDicomObject {
    deid::parse(&std::fs::read(path).expect("readable")).expect("parses")
}

/// Every frame's samples, pixel by pixel, one after the other.
fn samples(image: &Image) -> Vec<u16> {
    (0..image.frames)
        .flat_map(|f| image.frame_samples(f))
        .collect()
}

fn decoded(path: &Path) -> Image {
    Image::decode(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// dcmcjpls options of each variant made.
const VARIANTS: [(&str, &[&str]); 4] = [
    ("line", &["+el", "+il"]),
    ("sample", &["+el", "+is"]),
    ("none", &["+el", "+in"]),
    ("near", &["+en", "+md", "3"]),
];

fn is_palette(source: &str) -> bool {
    source.starts_with("OBXXXX1A") || source.starts_with("gdcm-US-ALOKA")
}

/// A JPEG-LS copy of `source` made by dcmcjpls, and dcmdjpls's decoding of it.
fn made(dir: &Path, source: &str, label: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    let jls = dir.join(format!("{label}-{source}"));
    dcmtk("dcmcjpls", args, &fixtures_dir().join(source), &jls);
    let reference = dir.join(format!("{label}-{source}.native.dcm"));
    dcmtk("dcmdjpls", &[], &jls, &reference);
    (jls, reference)
}

#[test]
fn the_decoder_reads_what_dcmcjpls_writes_sample_for_sample() {
    if !dcmtk_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // 8-bit monochrome, 8-bit RGB, 16-bit palette, two 8-bit palette frames
    for source in [
        "GREYSCALE_IMAGE.dcm",
        "US1_UNCR.dcm",
        "gdcm-US-ALOKA-16.dcm",
        "OBXXXX1A_2frame.dcm",
    ] {
        let original = samples(&decoded(&fixtures_dir().join(source)));
        for (label, args) in VARIANTS {
            if label == "near" && is_palette(source) {
                continue; // dcmcjpls makes no near-lossless palette image
            }
            let (jls, reference) = made(dir.path(), source, label, args);
            let ours = samples(&decoded(&jls));
            let theirs = samples(&decoded(&reference));
            assert!(ours == theirs, "{label} {source}: not dcmdjpls's samples");
            if label == "near" {
                assert!(ours != original, "{source}: near-lossless lost nothing");
                continue;
            }
            assert!(ours == original, "{label} {source}: not lossless");
            // the other way: dcmdjpls reads what this crate's encoder writes
            let interleave = match label {
                "line" => Interleave::Line,
                "sample" => Interleave::Sample,
                _ => Interleave::None,
            };
            let ours = dir.path().join(format!("ours-{label}-{source}"));
            with_streams_of(&jls, &original, interleave, &ours);
            let back = dir.path().join(format!("ours-{label}-{source}.native.dcm"));
            dcmtk("dcmdjpls", &[], &ours, &back);
            assert!(
                samples(&decoded(&back)) == original,
                "{label} {source}: dcmdjpls reads other samples from this encoder"
            );
        }
    }
}

/// Write `jls` again with its pixel data encoded by this crate from
/// `samples`, one fragment per frame.
fn with_streams_of(jls: &Path, samples: &[u16], interleave: Interleave, out: &Path) {
    let mut file = read(jls);
    let image = Image::decode(&file).expect("decodes");
    let size = (
        image.cols as usize,
        image.rows as usize,
        usize::from(image.samples),
    );
    let precision = image.bits_stored as u8;
    let fragments: Vec<Vec<u8>> = samples
        .chunks_exact(size.0 * size.1 * size.2)
        .map(|frame| {
            let mut stream = jpegls::encode(frame, size, precision, interleave).expect("encoded");
            if stream.len() % 2 == 1 {
                stream.push(0);
            }
            stream
        })
        .collect();
    file.put(dicom_core::DataElement::new_with_len(
        tags::PIXEL_DATA,
        dicom_core::VR::OB,
        dicom_core::Length::UNDEFINED,
        dicom_core::value::PixelFragmentSequence::new(Vec::<u32>::new(), fragments),
    ));
    file.write_to_file(out).expect("written");
}

#[test]
fn jpegls_inputs_are_cleaned_and_written_as_jpegls_lossless() {
    if !dcmtk_present() {
        return;
    }
    let pydicom = pydicom_present();
    let deid = Deidentifier::new(key(), Options::training()).expect("valid");
    let dir = tempfile::tempdir().expect("temp dir");
    // palette, monochrome and RGB, each with burned-in text; two frames
    for source in [
        "OBXXXX1A.dcm",
        "GREYSCALE_IMAGE.dcm",
        "US1_UNCR.dcm",
        "OBXXXX1A_2frame.dcm",
    ] {
        for (label, args) in [VARIANTS[0], VARIANTS[3]] {
            if label == "near" && is_palette(source) {
                continue;
            }
            let name = format!("{label} {source}");
            let (jls, reference) = made(dir.path(), source, label, args);
            let result = deid
                .deidentify(&std::fs::read(&jls).expect("readable"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let report = &result.report;
            assert_eq!(report.transfer_syntax_out, JPEG_LS_LOSSLESS, "{name}");
            let pixels = report.pixels.as_ref().expect("pixels cleaned");
            assert_eq!(pixels.encoded_as, JPEG_LS_LOSSLESS, "{name}");
            let output = dir.path().join(format!("out-{label}-{source}"));
            std::fs::write(&output, &result.bytes).expect("written");

            let file = read(&output);
            assert_eq!(file.meta().transfer_syntax(), JPEG_LS_LOSSLESS, "{name}");
            let fragments = file
                .get(tags::PIXEL_DATA)
                .and_then(|e| e.value().fragments())
                .map_or(0, <[Vec<u8>]>::len);
            assert_eq!(
                fragments, pixels.frames as usize,
                "{name}: a fragment per frame"
            );

            // dcmtk decodes the output; so does this crate, to the same samples
            let native = dir.path().join(format!("out-{label}-{source}.native.dcm"));
            dcmtk("dcmdjpls", &[], &output, &native);
            let cleaned = decoded(&native);
            let theirs = samples(&cleaned);
            assert!(samples(&decoded(&output)) == theirs, "{name}");

            // the native path, given the same decoded input, cleans the same pixels
            let native_input = std::fs::read(&reference).expect("readable");
            let expected = deid
                .deidentify(&native_input)
                .expect("native input cleaned");
            let expected_path = dir.path().join(format!("expected-{label}-{source}"));
            std::fs::write(&expected_path, &expected.bytes).expect("written");
            assert!(
                samples(&decoded(&expected_path)) == theirs,
                "{name}: pixels differ from the native path's"
            );

            // something was blanked, and every reported box is blank
            let before = samples(&decoded(&reference));
            assert!(before != theirs, "{name}: nothing cleaned");
            assert!(!pixels.boxes.is_empty(), "{name}: no box reported");
            let per_pixel = usize::from(cleaned.samples);
            let frame_len = (cleaned.rows * cleaned.cols) as usize * per_pixel;
            for frame in theirs.chunks_exact(frame_len) {
                for b in &pixels.boxes {
                    let at = |x: u32, y: u32| {
                        let p = (y * cleaned.cols + x) as usize * per_pixel;
                        &frame[p..p + per_pixel]
                    };
                    let blank = at(b.x, b.y);
                    for y in b.y..b.y + b.height {
                        for x in b.x..b.x + b.width {
                            assert_eq!(at(x, y), blank, "{name}: box {b:?} not blank");
                        }
                    }
                }
            }

            if pydicom {
                pydicom_agrees(&output, &theirs, cleaned.bits_allocated, dir.path());
            }
        }
    }
}

/// pydicom decodes `path` to `samples` (pixel by pixel, frames in turn).
fn pydicom_agrees(path: &Path, samples: &[u16], bits_allocated: u16, dir: &Path) {
    let raw = dir.join("expected.raw");
    let bytes: Vec<u8> = if bits_allocated == 16 {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    } else {
        samples.iter().map(|&s| s as u8).collect()
    };
    std::fs::write(&raw, bytes).expect("written");
    let script = "import sys, numpy, pydicom\n\
        ds = pydicom.dcmread(sys.argv[1])\n\
        a = ds.pixel_array\n\
        dtype = '<u2' if ds.BitsAllocated == 16 else 'u1'\n\
        ok = a.astype(dtype).tobytes() == open(sys.argv[2], 'rb').read()\n\
        sys.exit(0 if ok else 1)\n";
    let done = Command::new(python())
        .args(["-c", script])
        .arg(path)
        .arg(&raw)
        .output()
        .expect("python runs");
    assert!(
        done.status.success(),
        "pydicom decodes {} differently: {}",
        path.display(),
        String::from_utf8_lossy(&done.stderr)
    );
}
