//! Compressed outputs of pixel cleaning are well-formed encapsulated Pixel Data: one fragment per
//! frame, each of even length, and a Basic Offset Table whose entries point at each frame's item
//! (the byte after the offset table's item, plus the items before, 8 bytes of header each).

mod common;

use deid::{Deidentifier, Options};
use dicom_dictionary_std::tags;

#[test]
fn every_compressed_output_has_an_offset_table_that_points_at_its_frames() {
    let deid = Deidentifier::new(common::key(), Options::training()).expect("options");
    let mut encapsulated = 0;
    for (name, bytes) in common::fixtures() {
        let out = deid.deidentify(&bytes).expect("cleaned").bytes;
        let file = deid::parse(&out).expect("output parses");
        let pixels = file.get(tags::PIXEL_DATA).expect("pixel data").value();
        let (Some(offsets), Some(fragments)) = (pixels.offset_table(), pixels.fragments()) else {
            continue;
        };
        encapsulated += 1;
        let frames = deid::pixel::image::frame_count(&file) as usize;
        assert_eq!(fragments.len(), frames, "{name}: one fragment per frame");
        let mut at = 0u32;
        for (frame, (fragment, offset)) in fragments.iter().zip(offsets).enumerate() {
            assert_eq!(*offset, at, "{name}: offset of frame {}", frame + 1);
            assert!(
                fragment.len() % 2 == 0,
                "{name}: frame {} has odd length",
                frame + 1
            );
            at += fragment.len() as u32 + 8;
        }
        assert_eq!(offsets.len(), frames, "{name}: one offset per frame");
    }
    // RLE, JPEG 2000 and JPEG Lossless inputs come out as RLE, JPEG Baseline as JPEG Baseline.
    assert!(encapsulated >= 5, "{encapsulated} encapsulated outputs");
}
