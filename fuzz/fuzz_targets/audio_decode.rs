//! Any bytes as a recording posted for transcription: container and codec probing (WAV, FLAC,
//! MP3, Ogg Vorbis), decoding, down-mixing and resampling to 16 kHz. Errors are expected; a
//! panic is a finding, and so is a sample that is not a finite number (NaN or infinity would
//! poison the spectrogram the model reads).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = speech::audio::decode_16k(data) {
        assert!(
            samples.iter().all(|s| s.is_finite()),
            "a sample is not finite"
        );
    }
});
