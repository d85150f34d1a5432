//! Audio in: WAV/FLAC/MP3/Ogg Vorbis/AIFF decoded by symphonia, mixed to mono and resampled to
//! 16 kHz with a windowed-sinc filter.

use crate::{Error, Result, SAMPLE_RATE};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::{Hint, Probe};
use symphonia::default::formats::{AiffReader, FlacReader, MpaReader, OggReader, WavReader};

/// Sample rates accepted, from telephone-band dictation to studio recorders. A header claiming
/// another (a corrupt or hostile file) would make the resampler's kernel, which spans the ratio
/// of the rates, arbitrarily large.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 4_000..=384_000;

/// Decodes an audio file's bytes to mono 16 kHz samples in [-1, 1].
pub fn decode_16k(bytes: &[u8]) -> Result<Vec<f32>> {
    let (samples, rate) = decode_mono(bytes)?;
    Ok(resample(&samples, rate, SAMPLE_RATE))
}

/// Decodes an audio file's bytes to mono samples at the file's own rate.
pub fn decode_mono(bytes: &[u8]) -> Result<(Vec<f32>, u32)> {
    if bytes.is_empty() {
        return Err(Error::Audio("empty file".into()));
    }
    let (container, bytes) = audio_only(bytes)?;
    // symphonia 0.5 panics on some malformed headers (a WAV at 0 Hz): a refusal like any other.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_container(container, bytes)
    }))
    .unwrap_or_else(|_| {
        Err(Error::Audio(
            "corrupt audio: the decoder gave up on it".into(),
        ))
    })
}

/// The containers read, each identified by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Wav,
    Aiff,
    Ogg,
    Mp3,
    Flac,
}

impl Container {
    /// A probe that knows this container's reader only. symphonia's default probe searches the
    /// bytes for any format's marker, so a file starting as one container could be read by
    /// another's demuxer from the middle, past the checks [`audio_only`] made.
    fn probe(self) -> Probe {
        let mut probe = Probe::default();
        match self {
            Container::Wav => probe.register_all::<WavReader>(),
            Container::Aiff => probe.register_all::<AiffReader>(),
            Container::Ogg => probe.register_all::<OggReader>(),
            Container::Mp3 => probe.register_all::<MpaReader>(),
            Container::Flac => probe.register_all::<FlacReader>(),
        }
        probe
    }
}

/// [`decode_mono`] of a file whose container starts at its first byte.
fn decode_container(container: Container, bytes: Vec<u8>) -> Result<(Vec<f32>, u32)> {
    let source = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let probed = container
        .probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| {
            Error::Audio(format!(
                "not a WAV, FLAC, MP3, Ogg Vorbis or AIFF file ({e})"
            ))
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Error::Audio("no audio track".into()))?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| Error::Audio("sample rate unknown".into()))?;
    if !SAMPLE_RATES.contains(&rate) {
        return Err(Error::Audio(format!(
            "sample rate {rate} Hz is outside the {}–{} Hz recorders use",
            SAMPLE_RATES.start(),
            SAMPLE_RATES.end()
        )));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| Error::Audio(format!("unsupported codec ({e})")))?;
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(Error::Audio(format!("reading packets: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymError::DecodeError(e)) => {
                return Err(Error::Audio(format!("corrupt audio data: {e}")));
            }
            Err(e) => return Err(Error::Audio(format!("decoding: {e}"))),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        for frame in buf.samples().chunks_exact(channels) {
            let sample = frame.iter().sum::<f32>() / channels as f32;
            // Floating-point files can hold NaN or infinities, which would poison the whole
            // spectrogram, and values past full scale, which are clipped as a converter would.
            if !sample.is_finite() {
                return Err(Error::Audio(format!(
                    "corrupt audio data: sample {} is not a number",
                    mono.len()
                )));
            }
            mono.push(sample.clamp(-1.0, 1.0));
        }
    }
    if mono.is_empty() {
        return Err(Error::Audio("no audio samples decoded".into()));
    }
    Ok((mono, rate))
}

/// The file's container and its bytes as the decoder gets them. The container must start at the
/// first byte (the probe would otherwise search the bytes for one). Metadata is dropped, as it is
/// not needed to transcribe and symphonia 0.5 reserves the lengths it declares (up to 4 GiB)
/// before reading it: an MP3 file loses its ID3v2 tag, a FLAC file keeps only its STREAMINFO
/// block.
fn audio_only(bytes: &[u8]) -> Result<(Container, Vec<u8>)> {
    let riff = |kind: &[u8]| bytes.len() >= 12 && bytes[8..12] == *kind;
    let mp3_sync = |b: &[u8]| b.len() >= 2 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0;
    let container = if bytes.starts_with(b"RIFF") && riff(b"WAVE") {
        Container::Wav
    } else if bytes.starts_with(b"FORM") && (riff(b"AIFF") || riff(b"AIFC")) {
        Container::Aiff
    } else if bytes.starts_with(b"OggS") {
        Container::Ogg
    } else if mp3_sync(bytes) {
        Container::Mp3
    } else if bytes.starts_with(b"ID3") {
        let stream = without_id3v2(bytes)?;
        if !mp3_sync(stream) {
            return Err(Error::Audio(
                "not an MP3 file: no MPEG audio frame after its ID3 tag".into(),
            ));
        }
        return Ok((Container::Mp3, stream.to_vec()));
    } else if bytes.starts_with(b"fLaC") {
        return Ok((Container::Flac, flac_stream_info_only(bytes)?));
    } else {
        return Err(Error::Audio(
            "not a WAV, FLAC, MP3, Ogg Vorbis or AIFF file (no known header at its start)".into(),
        ));
    };
    Ok((container, bytes.to_vec()))
}

/// The bytes after an ID3v2 tag: a 10-byte header whose last four bytes hold the tag's length in
/// 7-bit groups, then the tag, then a 10-byte footer where flag 0x10 says so.
fn without_id3v2(bytes: &[u8]) -> Result<&[u8]> {
    let corrupt = |what: &str| Error::Audio(format!("corrupt ID3 tag: {what}"));
    let header = bytes
        .get(..10)
        .ok_or_else(|| corrupt("cut in its header"))?;
    if header[6..10].iter().any(|b| b & 0x80 != 0) {
        return Err(corrupt("its length is not in 7-bit groups"));
    }
    let len = header[6..10]
        .iter()
        .fold(0usize, |len, &b| (len << 7) | b as usize);
    let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
    bytes
        .get(10 + len + footer..)
        .ok_or_else(|| corrupt("it runs past the end of the file"))
}

/// A FLAC file with its metadata blocks other than STREAMINFO dropped.
fn flac_stream_info_only(bytes: &[u8]) -> Result<Vec<u8>> {
    // Metadata blocks: a header of 1 bit "last", 7 bits type, 24 bits length, then the body.
    let corrupt = |what: &str| Error::Audio(format!("corrupt FLAC metadata: {what}"));
    let mut at = 4;
    let mut stream_info = None;
    loop {
        let header = bytes
            .get(at..at + 4)
            .ok_or_else(|| corrupt("cut in a block header"))?;
        let last = header[0] & 0x80 != 0;
        let kind = header[0] & 0x7F;
        let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let body = bytes
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| corrupt("a block runs past the end of the file"))?;
        if kind == 0 && stream_info.is_none() {
            stream_info = Some(body);
        }
        at += 4 + len;
        if last {
            break;
        }
    }
    let info = stream_info.ok_or_else(|| corrupt("no STREAMINFO block"))?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(b"fLaC");
    out.push(0x80);
    out.extend_from_slice(&(info.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(info);
    out.extend_from_slice(&bytes[at..]);
    Ok(out)
}

/// Half-width of the resampling kernel, in input samples at the output's bandwidth.
const SINC_HALF_WIDTH: f64 = 16.0;
/// Most kernel phases tabulated; rates whose ratio needs more use the nearest phase.
const MAX_PHASES: u64 = 4096;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Resamples with a Hann-windowed sinc low-pass at the lower of the two Nyquist frequencies.
/// The kernel is tabulated once per phase of the rational rate ratio (160 phases for 44.1 kHz),
/// so each output sample costs one dot product.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let g = gcd(from as u64, to as u64);
    let (up, down) = (to as u64 / g, from as u64 / g);
    let phases = up.min(MAX_PHASES);
    let step = from as f64 / to as f64;
    // Cut-off relative to the input rate; keep 5% guard band below Nyquist when downsampling.
    let cutoff = if to < from { 0.95 / step } else { 1.0 };
    let half = SINC_HALF_WIDTH / cutoff;
    let kernel = |d: f64| -> f32 {
        if d.abs() >= half {
            return 0.0;
        }
        let window = 0.5 + 0.5 * (std::f64::consts::PI * d / half).cos();
        let arg = std::f64::consts::PI * d * cutoff;
        let sinc = if arg.abs() < 1e-9 {
            1.0
        } else {
            arg.sin() / arg
        };
        (cutoff * sinc * window) as f32
    };
    let reach = half.ceil() as usize;
    let width = 2 * reach + 2;
    let table: Vec<f32> = (0..phases)
        .flat_map(|p| {
            let frac = p as f64 / phases as f64;
            (0..width).map(move |i| kernel(i as f64 - reach as f64 - frac))
        })
        .collect();
    let out_len = (input.len() as u64 * up / down) as usize;
    (0..out_len)
        .map(|n| {
            let pos = n as u64 * down;
            let base = (pos / up) as usize;
            let phase = ((pos % up) * phases / up) as usize;
            let row = &table[phase * width..(phase + 1) * width];
            // Taps `base - reach + i`, clipped to the input.
            let lo = reach.saturating_sub(base);
            let hi = width.min(input.len() + reach - base);
            let first = base + lo - reach;
            let (mut acc, mut norm) = (0.0f32, 0.0f32);
            for (h, x) in row[lo..hi].iter().zip(&input[first..]) {
                acc += h * x;
                norm += h;
            }
            // Normalising by the kernel's sum keeps DC gain at exactly 1 at the edges too.
            if norm.abs() > 1e-12 { acc / norm } else { 0.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn resampling_keeps_a_tone_in_band_and_removes_one_above_nyquist() {
        let kept = resample(&sine(1000.0, 44_100, 1.0), 44_100, 16_000);
        assert_eq!(kept.len(), 16_000);
        let reference = sine(1000.0, 16_000, 1.0);
        let mid = 200..15_800;
        let err: f32 = kept[mid.clone()]
            .iter()
            .zip(&reference[mid.clone()])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "max error {err}");
        // A ratio with more phases than tabulated (16000/44101) uses the nearest phase.
        let odd = resample(&sine(1000.0, 44_101, 1.0), 44_101, 16_000);
        assert_eq!(odd.len(), 16_000);
        let err: f32 = odd[200..15_700]
            .iter()
            .zip(&reference[200..15_700])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "max error {err} at 44101 Hz");
        let removed = resample(&sine(12_000.0, 48_000, 1.0), 48_000, 16_000);
        assert!(
            rms(&removed[200..15_800]) < 0.01,
            "alias rms {}",
            rms(&removed[200..15_800])
        );
    }

    #[test]
    fn upsampling_keeps_the_tone() {
        let up = resample(&sine(440.0, 8_000, 0.5), 8_000, 16_000);
        assert_eq!(up.len(), 8_000);
        let reference = sine(440.0, 16_000, 0.5);
        let err: f32 = up[200..7_800]
            .iter()
            .zip(&reference[200..7_800])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    /// A minimal 16-bit PCM WAV file.
    pub(crate) fn wav_bytes(samples: &[f32], rate: u32, channels: u16) -> Vec<u8> {
        let data: Vec<u8> = samples
            .iter()
            .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
            .collect();
        wav_file(1, channels, rate, 2, &data)
    }

    /// A minimal 32-bit IEEE-float mono WAV file.
    fn float_wav_bytes(samples: &[f32], rate: u32) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        wav_file(3, 1, rate, 4, &data)
    }

    /// A RIFF/WAVE file: a `fmt ` chunk (`format` 1 = PCM, 3 = IEEE float) and `data`.
    fn wav_file(format: u16, channels: u16, rate: u32, sample_bytes: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * sample_bytes;
        let mut out = Vec::new();
        out.extend(b"RIFF");
        out.extend((36 + data.len() as u32).to_le_bytes());
        out.extend(b"WAVEfmt ");
        out.extend(16u32.to_le_bytes());
        out.extend(format.to_le_bytes());
        out.extend(channels.to_le_bytes());
        out.extend(rate.to_le_bytes());
        out.extend((rate * u32::from(block)).to_le_bytes());
        out.extend(block.to_le_bytes());
        out.extend((sample_bytes * 8).to_le_bytes());
        out.extend(b"data");
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn wav_stereo_is_mixed_and_resampled() {
        let tone = sine(500.0, 32_000, 0.5);
        let stereo: Vec<f32> = tone.iter().flat_map(|&s| [s * 0.5, s * 0.5]).collect();
        let samples = decode_16k(&wav_bytes(&stereo, 32_000, 2)).unwrap();
        assert_eq!(samples.len(), 8_000);
        assert!((rms(&samples[100..7_900]) - 0.5 / 2f32.sqrt()).abs() < 0.01);
    }

    #[test]
    fn corrupt_and_unsupported_audio_get_clear_errors() {
        for bytes in [
            &b""[..],
            b"this is a text file, not audio",
            &[0u8; 4096][..],
        ] {
            let err = decode_16k(bytes).unwrap_err().to_string();
            assert!(err.starts_with("unsupported or corrupt audio"), "{err}");
        }
        let mut truncated = wav_bytes(&sine(500.0, 16_000, 0.1), 16_000, 1);
        truncated.truncate(30);
        assert!(decode_16k(&truncated).is_err());
    }

    /// Found by the `audio_decode` fuzz target: a WAV header claiming 4,294,945,860 Hz made the
    /// resampler tabulate a kernel of gigabytes.
    #[test]
    fn a_sample_rate_no_recorder_uses_is_refused() {
        let fuzzed = include_bytes!(
            "../tests/data/fuzz/wav-at-4-ghz-makes-the-resampler-reserve-gigabytes.wav"
        );
        let err = decode_16k(fuzzed).unwrap_err().to_string();
        assert!(err.contains("sample rate 4294945860 Hz"), "{err}");
        let tone = sine(500.0, 16_000, 0.1);
        for rate in [1, 3_999, 384_001] {
            assert!(decode_16k(&wav_bytes(&tone, rate, 1)).is_err(), "{rate} Hz");
        }
        for rate in [8_000, 384_000] {
            assert!(decode_16k(&wav_bytes(&tone, rate, 1)).is_ok(), "{rate} Hz");
        }
    }

    /// Found by the `audio_decode` fuzz target: 29 bytes holding "fLaC" after two bytes of
    /// junk, whose PICTURE block declared a 2.4 GB media type that symphonia reserved.
    #[test]
    fn flac_metadata_is_dropped_and_junk_before_a_header_refused() {
        let fuzzed = include_bytes!("../tests/data/fuzz/flac-picture-block-declaring-2-gb.flac");
        let err = decode_16k(fuzzed).unwrap_err().to_string();
        assert!(err.contains("no known header"), "{err}");
        // The same picture block at the start of a file: dropped with the other metadata, then
        // the file (STREAMINFO cut short here) is the decoder's to refuse.
        let mut flac = b"fLaC".to_vec();
        flac.extend([0x00, 0, 0, 34]);
        flac.extend([0u8; 34]);
        let picture = [0, 0, 0, 3, 0x92, 0x8b, 0xdf, 0xef, 0xff];
        flac.extend([0x86, 0, 0, picture.len() as u8]);
        flac.extend(picture);
        let (container, kept) = audio_only(&flac).unwrap();
        assert_eq!(container, Container::Flac);
        assert_eq!(kept.len(), 4 + 4 + 34);
        assert_eq!(kept[4], 0x80, "STREAMINFO is now the last block");
        let mut lying = flac.clone();
        lying[4 + 4 + 34 + 3] = 200;
        assert!(
            audio_only(&lying)
                .unwrap_err()
                .to_string()
                .contains("past the end")
        );
    }

    /// Found by the `audio_decode` fuzz target: 37 bytes starting with an MP3 frame sync and
    /// holding "fLaC" at offset 6, which symphonia's default probe found and handed to its FLAC
    /// demuxer; the bytes are only ever read as MP3 now.
    #[test]
    fn a_file_is_read_by_the_demuxer_of_the_container_it_starts_with() {
        let fuzzed =
            include_bytes!("../tests/data/fuzz/mp3-sync-then-flac-picture-declaring-3.9-gb.mp3");
        let (container, _) = audio_only(fuzzed).unwrap();
        assert_eq!(container, Container::Mp3);
        // only the MP3 reader looks at them, and it finds no frame there
        let err = decode_16k(fuzzed).unwrap_err().to_string();
        assert!(err.contains("no suitable format reader"), "{err}");
        // A WAV holding a FLAC file in its data is still a WAV.
        let mut flac = b"fLaC".to_vec();
        flac.extend([0x80, 0, 0, 34]);
        flac.extend([0u8; 34]);
        let tone = sine(500.0, 16_000, 0.05);
        let mut wav = wav_bytes(&tone, 16_000, 1);
        let data = wav.len() - 2 * tone.len();
        wav[data..data + flac.len()].copy_from_slice(&flac);
        let (container, _) = audio_only(&wav).unwrap();
        assert_eq!(container, Container::Wav);
        assert_eq!(decode_mono(&wav).unwrap().0.len(), tone.len());
    }

    #[test]
    fn an_id3_tag_is_dropped_before_the_mp3_stream() {
        let frame = [0xFF, 0xFB, 0x90, 0x64];
        let tag_body = b"TIT2 dictation, not needed to transcribe";
        let mut mp3 = b"ID3\x04\x00\x00".to_vec();
        mp3.extend([0, 0, 0, tag_body.len() as u8]);
        mp3.extend(tag_body);
        mp3.extend(frame);
        let (container, stream) = audio_only(&mp3).unwrap();
        assert_eq!((container, &stream[..]), (Container::Mp3, &frame[..]));

        let mut footer = mp3.clone();
        footer[5] = 0x10;
        footer.splice(
            10 + tag_body.len()..10 + tag_body.len(),
            *b"3DI\x04\x00\x10\0\0\0\0",
        );
        assert_eq!(audio_only(&footer).unwrap().1, frame);

        let mut long = mp3.clone();
        long[8] = 0x7F;
        let err = audio_only(&long).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
        let mut not_syncsafe = mp3.clone();
        not_syncsafe[9] = 0x80;
        assert!(audio_only(&not_syncsafe).is_err());
        let mut flac_after_tag = mp3[..10 + tag_body.len()].to_vec();
        flac_after_tag.extend(b"fLaC");
        let err = audio_only(&flac_after_tag).unwrap_err().to_string();
        assert!(err.contains("no MPEG audio frame"), "{err}");
    }

    /// Found by the `audio_decode` fuzz target: a WAV header at 0 Hz made symphonia panic.
    #[test]
    fn a_decoder_panic_is_a_refusal() {
        let fuzzed = include_bytes!("../tests/data/fuzz/wav-at-0-hz-panics-the-demuxer.wav");
        let err = decode_16k(fuzzed).unwrap_err().to_string();
        assert!(err.contains("gave up"), "{err}");
    }

    /// Found by the `audio_decode` fuzz target: an IEEE-float WAV whose samples include NaN
    /// decoded "successfully" into samples that are not numbers.
    #[test]
    fn a_float_wav_holding_nan_is_refused_and_loud_floats_are_clipped() {
        let fuzzed = include_bytes!("../tests/data/fuzz/float-wav-with-a-nan-sample.wav");
        let err = decode_16k(fuzzed).unwrap_err().to_string();
        assert!(err.contains("is not a number"), "{err}");

        let loud: Vec<f32> = (0..1600).map(|i| 3.0 * (i as f32 / 5.0).sin()).collect();
        let mut wav = float_wav_bytes(&loud, 16_000);
        let (samples, _) = decode_mono(&wav).unwrap();
        assert!(samples.iter().all(|s| s.abs() <= 1.0));
        assert!(samples.contains(&1.0));
        let last = wav.len() - 4;
        wav[last..].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert!(decode_mono(&wav).is_err());
    }
}
