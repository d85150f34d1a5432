//! Hostile input: a corrupt or lying file is that file's error, never a
//! panic and never an allocation beyond the file's own size. Truncated RLE
//! data, lengths that claim gigabytes, and a few hundred truncated and
//! byte-flipped copies of the fixtures fed to the decoders and the header
//! path.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;

use common::corrupt::{lying_pixel_data_length, truncated_rle};
use common::{fixtures_dir, key};
use deid::pixel::image::Image;
use deid::pixel::{jpegls, rle};
use deid::{DeidError, Deidentifier, Options, ProfileOption};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture readable")
}

fn training() -> Deidentifier {
    Deidentifier::new(key(), Options::training()).expect("valid options")
}

fn headers_only() -> Deidentifier {
    Deidentifier::new(
        key(),
        Options::training().without(ProfileOption::CleanPixelData),
    )
    .expect("valid options")
}

#[test]
fn a_truncated_rle_segment_is_a_decode_error_not_a_panic() {
    let bytes = truncated_rle(&fixture("OBXXXX1A_rle.dcm"));
    let error = training()
        .deidentify(&bytes)
        .expect_err("the segment is too short for the frame");
    assert!(matches!(error, DeidError::PixelDecode { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("1.2.840.10008.1.2.5") && text.contains("segment 1"),
        "{text}"
    );
    // headers only, the pixel data is copied, not decoded
    assert!(headers_only().deidentify(&bytes).is_ok());
}

#[test]
fn an_rle_file_cut_anywhere_is_an_error() {
    let bytes = fixture("OBXXXX1A_rle.dcm");
    let deid = training();
    for cut in (1..40).map(|i| bytes.len() * i / 40) {
        assert!(deid.deidentify(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn the_rle_decoder_gives_the_samples_dicom_rs_gives() {
    use dicom_pixeldata::PixelDecoder;
    let file = deid::parse(&fixture("OBXXXX1A_rle.dcm")).expect("fixture parses");
    let ours = Image::decode(&file).expect("decoded here");
    let theirs = file.decode_pixel_data().expect("decoded by dicom-rs");
    assert_eq!((ours.cols, ours.rows, ours.frames), (800, 600, 1));
    assert!(ours.data == theirs.data(), "samples differ");
}

/// Set when this test binary runs again as the memory-limited child.
const LIMITED: &str = "DEID_TEST_ADDRESS_SPACE_LIMITED";

/// The OW length of Red Palette Color Lookup Table Data, an element
/// before Pixel Data, set to `declared`.
fn lying_lut_length(bytes: &[u8], declared: u32) -> Vec<u8> {
    let header = [0x28, 0x00, 0x01, 0x12, b'O', b'W', 0, 0];
    let at = bytes
        .windows(8)
        .position(|w| w == header)
        .expect("palette data");
    let mut out = bytes.to_vec();
    out[at + 8..at + 12].copy_from_slice(&declared.to_le_bytes());
    out
}

/// 4.1 GB, what the security probe declared in a 480 KB file.
const LIE: u32 = 0xF400_0000;

fn assert_declared_length(result: Result<impl std::fmt::Debug, DeidError>, what: &str) {
    match result {
        Err(DeidError::DeclaredLength {
            declared,
            available,
            ..
        }) => {
            assert_eq!(declared, u64::from(LIE), "{what}");
            assert!(available < 1 << 20, "{what}: {available}");
        }
        other => panic!("{what}: {other:?}"),
    }
}

#[test]
fn a_lying_length_is_found_by_the_length_check() {
    let input = fixture("OBXXXX1A.dcm");
    for (what, bytes) in [
        ("pixel data", lying_pixel_data_length(&input, LIE)),
        ("palette data", lying_lut_length(&input, LIE)),
    ] {
        assert_declared_length(deid::lengths::check_declared_lengths(&bytes), what);
        let error = deid::lengths::check_declared_lengths(&bytes).expect_err(what);
        let text = error.to_string();
        assert!(text.contains("4093640704 bytes"), "{text}");
        assert!(text.contains(if what == "pixel data" {
            "(7FE0,0010)"
        } else {
            "(0028,1201)"
        }));
    }
    for (name, bytes) in common::fixtures() {
        deid::lengths::check_declared_lengths(&bytes).expect(&name);
    }
}

/// Every path a lying file can take is refused with the length error; run
/// in a child process that cannot map more than 1 GiB, so that a
/// regression fails the test instead of taking the machine's memory.
#[test]
fn lying_lengths_are_refused_without_allocating_them() {
    if std::env::var_os(LIMITED).is_some() {
        let input = fixture("OBXXXX1A.dcm");
        let pixels = lying_pixel_data_length(&input, LIE);
        let lut = lying_lut_length(&input, LIE);
        for (what, deid) in [("training", training()), ("headers only", headers_only())] {
            assert_declared_length(deid.deidentify(&pixels), &format!("pixel data, {what}"));
            assert_declared_length(deid.deidentify(&lut), &format!("palette data, {what}"));
        }
        let head = &lut[..64 * 1024];
        assert_declared_length(
            headers_only().deidentify_header(head, &lut[..]),
            "palette data, header path",
        );
        assert_declared_length(deid::parse(&pixels), "parse");
        return;
    }
    let test_binary = std::env::current_exe().expect("test binary");
    let output = Command::new("sh")
        .args(["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\""])
        .arg(test_binary)
        .args([
            "lying_lengths_are_refused_without_allocating_them",
            "--exact",
            "--test-threads=1",
        ])
        .env(LIMITED, "1")
        .output()
        .expect("child started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// xorshift64*: the same mutations on every run.
struct Mutations(u64);

impl Mutations {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A truncation, a few flipped bytes, or a 32-bit word overwritten
    /// with a large value; half of the changes land in `hot` (headers).
    fn mutate(&mut self, bytes: &[u8], hot: &[std::ops::Range<usize>]) -> (String, Vec<u8>) {
        let mut out = bytes.to_vec();
        let position = |m: &mut Self| {
            let range = &hot[m.below(hot.len())];
            if m.below(2) == 0 && range.end > range.start {
                range.start + m.below(range.end - range.start)
            } else {
                m.below(bytes.len())
            }
        };
        match self.below(3) {
            0 => {
                let cut = position(self);
                out.truncate(cut);
                (format!("cut at {cut}"), out)
            }
            1 => {
                let mut changes = Vec::new();
                for _ in 0..1 + self.below(4) {
                    let at = position(self);
                    let value = self.next() as u8;
                    if let Some(byte) = out.get_mut(at) {
                        *byte ^= value.max(1);
                        changes.push(at);
                    }
                }
                (format!("bytes flipped at {changes:?}"), out)
            }
            _ => {
                let at = position(self);
                let word = [0xFFFF_FFF0, 0x7FFF_FFFF, 0x0001_0000, self.next() as u32]
                    [self.below(4)]
                .to_le_bytes();
                let end = (at + 4).min(out.len());
                out[at..end].copy_from_slice(&word[..end - at]);
                (format!("word {word:02X?} at {at}"), out)
            }
        }
    }
}

/// Byte ranges worth mutating more: the header, and the start of the
/// Pixel Data element (lengths, offset table, codec headers).
fn hot_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut hot = Vec::with_capacity(2);
    hot.push(0..bytes.len().min(4096));
    if let Some(at) = bytes
        .windows(4)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00] || w == [0x7F, 0xE0, 0x00, 0x10])
    {
        hot.push(at..bytes.len().min(at + 256));
    }
    hot
}

/// Run `check` on `input`, recording a panic as a failure.
fn no_panic(failures: &mut Vec<String>, what: &str, check: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(check)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        failures.push(format!("{what}: panicked: {message}"));
    }
}

#[test]
fn mutated_files_and_streams_give_errors_not_panics() {
    let mut rng = Mutations(0x9E37_79B9_7F4A_7C15);
    let mut failures = Vec::new();
    let (training, headers_only) = (training(), headers_only());

    // files through the header path and the whole-file path; pixels are
    // decoded and cleaned for the small ones (RLE, big endian, native RGB)
    let files = [
        ("OBXXXX1A_rle.dcm", 60, true),
        ("ExplVR_BigEnd.dcm", 40, true),
        ("color-px.dcm", 30, true),
        ("OBXXXX1A.dcm", 40, false),
        ("US1_J2KR.dcm", 30, false),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", 30, false),
        ("examples_palette.dcm", 30, false),
        ("GREYSCALE_IMAGE.dcm", 20, false),
    ];
    let mut tried = 0;
    for (name, count, clean_pixels) in files {
        let bytes = fixture(name);
        let hot = hot_ranges(&bytes);
        for _ in 0..count {
            let (how, input) = rng.mutate(&bytes, &hot);
            let what = format!("{name}, {how}");
            tried += 1;
            no_panic(&mut failures, &what, || {
                let _ = deid::lengths::check_declared_lengths(&input);
                let _ = headers_only.deidentify(&input);
                let head = &input[..input.len().min(4096)];
                let _ = headers_only.deidentify_header(head, &input[..]);
                if clean_pixels {
                    let _ = training.deidentify(&input);
                }
            });
        }
    }

    // the decoders alone, on streams they wrote
    let frame: Vec<u8> = (0..64 * 48 * 3)
        .map(|i| if i % 97 < 60 { 0 } else { (i * 13) as u8 })
        .collect();
    let rle_stream = rle::encode_frame(&frame, 64, 48, 3, 1);
    let samples: Vec<u16> = frame.iter().map(|&v| u16::from(v)).collect();
    let jls_streams: Vec<Vec<u8>> = [
        jpegls::Interleave::None,
        jpegls::Interleave::Line,
        jpegls::Interleave::Sample,
    ]
    .into_iter()
    .map(|interleave| jpegls::encode(&samples, (64, 48, 3), 8, interleave).expect("encoded"))
    .collect();
    for round in 0..150 {
        let whole = 0..rle_stream.len();
        let (how, input) = rng.mutate(&rle_stream, &[0..64, whole]);
        tried += 1;
        no_panic(&mut failures, &format!("RLE stream, {how}"), || {
            let _ = rle::decode_frame(&input, 64, 48, 3, 1);
        });
        let stream = &jls_streams[round % jls_streams.len()];
        let whole = 0..stream.len();
        let (how, input) = rng.mutate(stream, &[0..40, whole]);
        tried += 1;
        no_panic(
            &mut failures,
            &format!("JPEG-LS stream {round}, {how}"),
            || {
                let _ = jpegls::decode(&input);
            },
        );
    }
    assert!(tried >= 500, "{tried} inputs");
    assert!(
        failures.is_empty(),
        "{} of {tried} inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
