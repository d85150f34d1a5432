//! Any bytes as a recording posted for transcription: container and codec probing (WAV, FLAC,
//! MP3, Ogg Vorbis), decoding, down-mixing and resampling to 16 kHz. Errors are expected; a
//! panic is a finding, and so is a sample that is not a finite number (NaN or infinity would
//! poison the spectrogram the model reads). The decoder catches symphonia's own panics and
//! refuses the file, so libFuzzer's panic hook (which aborts on any panic, caught or not) is put
//! back to the default: a panic that escapes still fails the run.
#![no_main]

use libfuzzer_sys::fuzz_target;

static DEFAULT_PANIC_HOOK: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    DEFAULT_PANIC_HOOK.call_once(|| drop(std::panic::take_hook()));
    if let Ok(samples) = speech::audio::decode_16k(data) {
        assert!(
            samples.iter().all(|s| s.is_finite()),
            "a sample is not finite"
        );
    }
});
