//! The headers-only path that reads only the start of a file gives the
//! bytes of the whole-file path, or steps aside.

mod common;

use common::{fixtures, key};
use deid::{Deidentifier, Options, ProfileOption};

fn headers_only() -> Deidentifier {
    let options = Options::training().without(ProfileOption::CleanPixelData);
    Deidentifier::new(key(), options).expect("valid options")
}

#[test]
fn the_header_and_the_copied_pixel_data_are_the_whole_file_output() {
    let deid = headers_only();
    let mut spliced = 0;
    for (name, bytes) in fixtures() {
        let whole = deid.deidentify(&bytes).expect(&name);
        // a head cut anywhere: inside the header it steps aside, past it the bytes agree
        for head_len in [200, 1000, 4096, 64 * 1024, bytes.len()] {
            let head = &bytes[..head_len.min(bytes.len())];
            let Some(header) = deid.deidentify_header(head, &bytes[..]).expect(&name) else {
                continue;
            };
            let mut output = header.bytes.clone();
            let pixel_data = header.pixel_data.start as usize..header.pixel_data.end as usize;
            output.extend_from_slice(&bytes[pixel_data]);
            assert!(output == whole.bytes, "{name}, head of {head_len}");
            assert_eq!(
                serde_json::to_string(&header.report).expect("json"),
                serde_json::to_string(&whole.report).expect("json"),
                "{name}"
            );
            spliced += 1;
        }
    }
    assert!(spliced > 0, "the fast path was taken for some fixture");
}

#[test]
fn only_what_the_profile_removes_may_follow_spliced_pixel_data() {
    let deid = headers_only();
    let (name, mut bytes) = fixtures()
        .into_iter()
        .find(|(name, _)| name == "US1_UNCI.dcm")
        .expect("fixture");
    let spliced = deid.deidentify_header(&bytes, &bytes[..]).expect(&name);
    assert_eq!(spliced.map(|h| h.pixel_data.end), Some(bytes.len() as u64));
    // trailing padding (FFFC,FFFC) is removed by the profile: still a splice
    let padding = [0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&padding);
    let spliced = deid.deidentify_header(&bytes, &bytes[..]).expect(&name);
    assert_eq!(
        spliced.map(|h| h.pixel_data.end),
        Some((bytes.len() - padding.len()) as u64)
    );
    // an element after it that the profile keeps (unlisted, public) makes it no splice
    bytes.truncate(bytes.len() - padding.len());
    let coefficients = [0xE0, 0x7F, 0x20, 0x00, b'O', b'W', 0, 0, 2, 0, 0, 0, 7, 7];
    bytes.extend_from_slice(&coefficients);
    assert!(
        deid.deidentify_header(&bytes, &bytes[..])
            .expect(&name)
            .is_none()
    );
    let whole = deid.deidentify(&bytes).expect(&name);
    assert!(
        whole.bytes.ends_with(&coefficients),
        "kept, after Pixel Data"
    );
}

#[test]
fn the_pixel_cleaning_profile_never_takes_the_headers_only_path() {
    let deid = Deidentifier::new(key(), Options::training()).expect("valid options");
    for (name, bytes) in fixtures() {
        assert!(
            deid.deidentify_header(&bytes, &bytes[..])
                .expect(&name)
                .is_none()
        );
    }
}
