//! Bad input gives a clear error for that file and nothing else: truncated
//! files, a transfer syntax that does not match the data, garbage in a
//! sequence, bytes that are not DICOM.

mod common;

use common::{fixtures_dir, key};
use deid::{DeidError, Deidentifier, Options};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture readable")
}

fn deidentifier() -> Deidentifier {
    Deidentifier::new(key(), Options::training()).expect("valid options")
}

fn find(bytes: &[u8], pattern: &[u8]) -> usize {
    bytes
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("pattern present")
}

fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    let at = find(bytes, from);
    bytes[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn a_truncated_file_is_refused_as_unreadable() {
    let bytes = fixture("US1_UNCR.dcm");
    for cut in [10, 200, 1000, bytes.len() / 2, bytes.len() - 3] {
        let error = deidentifier()
            .deidentify(&bytes[..cut])
            .expect_err("truncated");
        assert!(
            matches!(
                error,
                DeidError::Parse(_)
                    | DeidError::DeclaredLength { .. }
                    | DeidError::PixelDecode { .. }
            ),
            "cut at {cut}: {error}"
        );
    }
}

#[test]
fn bytes_that_are_not_dicom_are_refused() {
    let error = deidentifier()
        .deidentify(b"this is not a DICOM file at all, just text")
        .expect_err("not DICOM");
    assert!(
        error.to_string().contains("not a readable DICOM file"),
        "{error}"
    );
}

#[test]
fn a_transfer_syntax_that_does_not_match_the_data_is_refused() {
    let mut bytes = fixture("US1_UNCR.dcm");
    // explicit little endian relabelled as RLE Lossless: the pixel data is not encapsulated
    replace(
        &mut bytes,
        b"1.2.840.10008.1.2.1\0",
        b"1.2.840.10008.1.2.5\0",
    );
    let error = deidentifier().deidentify(&bytes).expect_err("mislabelled");
    assert!(matches!(error, DeidError::PixelDecode { .. }), "{error}");
    assert!(error.to_string().contains("1.2.840.10008.1.2.5"), "{error}");
}

#[test]
fn an_unknown_transfer_syntax_is_refused() {
    let mut bytes = fixture("US1_UNCR.dcm");
    replace(
        &mut bytes,
        b"1.2.840.10008.1.2.1\0",
        b"1.2.999.99999.9.9.9\0",
    );
    let error = deidentifier()
        .deidentify(&bytes)
        .expect_err("unknown syntax");
    assert!(matches!(error, DeidError::Parse(_)), "{error}");
}

#[test]
fn garbage_in_a_sequence_is_refused() {
    let mut bytes = fixture("GREYSCALE_IMAGE.dcm");
    // Sequence Of Ultrasound Regions: tag, VR, reserved, length; then its first item tag
    let at = find(&bytes, &[0x18, 0x00, 0x11, 0x60, b'S', b'Q']);
    bytes[at + 12..at + 20].copy_from_slice(&[0xAB, 0xCD, 0xEF, 0x01, 0xFF, 0xFF, 0xFF, 0x7F]);
    let error = deidentifier().deidentify(&bytes).expect_err("garbage item");
    assert!(matches!(error, DeidError::Parse(_)), "{error}");
}

#[test]
fn one_bad_file_does_not_stop_the_next() {
    let deid = deidentifier();
    let good = fixture("examples_rgb_color.dcm");
    assert!(deid.deidentify(&good[..100]).is_err());
    assert!(deid.deidentify(&good).is_ok());
}
