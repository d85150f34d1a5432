//! Energy and spectral-flatness voice-activity detection: frames well above the recording's
//! noise floor, or moderately above it with a harmonic (non-flat) spectrum, are speech; regions
//! are padded, merged across short pauses and dropped when too short. Silence and steady noise
//! give no region, so they produce no text.

use rustfft::{FftPlanner, num_complex::Complex};
use std::ops::Range;

/// Frame length and hop: 20 ms at 16 kHz.
const FRAME: usize = 320;
/// FFT size for the flatness measure.
const NFFT: usize = 512;

/// Tuning of the detector.
#[derive(Debug, Clone)]
pub struct VadOptions {
    /// Frames quieter than this (dBFS) are never speech.
    pub min_level_db: f32,
    /// A frame this far above the noise floor (dB) is speech.
    pub loud_margin_db: f32,
    /// A frame this far above the floor with a spectral flatness under `max_flatness` is speech.
    pub voiced_margin_db: f32,
    /// Spectral flatness (geometric / arithmetic mean of the 100-4000 Hz power) below which a
    /// frame is harmonic.
    pub max_flatness: f32,
    /// Padding added on each side of a region (seconds).
    pub pad_s: f32,
    /// Pauses shorter than this join their neighbours (seconds).
    pub merge_gap_s: f32,
    /// Regions with less voiced time than this are dropped (seconds).
    pub min_speech_s: f32,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            min_level_db: -50.0,
            loud_margin_db: 12.0,
            voiced_margin_db: 6.0,
            max_flatness: 0.25,
            pad_s: 0.3,
            merge_gap_s: 0.6,
            min_speech_s: 0.15,
        }
    }
}

/// Per-frame level (dBFS) and spectral flatness.
fn frame_features(samples: &[f32]) -> Vec<(f32, f32)> {
    let fft = FftPlanner::<f32>::new().plan_fft_forward(NFFT);
    let sr = crate::SAMPLE_RATE as f32;
    let (lo, hi) = (
        (100.0 * NFFT as f32 / sr) as usize,
        (4000.0 * NFFT as f32 / sr) as usize,
    );
    let mut buf = vec![Complex::default(); NFFT];
    samples
        .chunks_exact(FRAME)
        .map(|frame| {
            let energy = frame.iter().map(|x| x * x).sum::<f32>() / FRAME as f32;
            let db = 10.0 * (energy + 1e-12).log10();
            buf.iter_mut().for_each(|c| *c = Complex::default());
            for (i, (c, &x)) in buf.iter_mut().zip(frame).enumerate() {
                let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / FRAME as f32).cos();
                *c = Complex::new(x * w, 0.0);
            }
            fft.process(&mut buf);
            let power: Vec<f32> = buf[lo..hi].iter().map(|c| c.norm_sqr() + 1e-12).collect();
            let geo = (power.iter().map(|p| p.ln()).sum::<f32>() / power.len() as f32).exp();
            let arith = power.iter().sum::<f32>() / power.len() as f32;
            (db, geo / arith)
        })
        .collect()
}

/// Sample ranges (16 kHz) that hold speech, in order and disjoint.
pub fn speech_regions(samples: &[f32], opts: &VadOptions) -> Vec<Range<usize>> {
    let features = frame_features(samples);
    if features.is_empty() {
        return Vec::new();
    }
    let mut levels: Vec<f32> = features.iter().map(|f| f.0).collect();
    levels.sort_by(f32::total_cmp);
    let floor = levels[levels.len() / 10];
    let voiced: Vec<bool> = features
        .iter()
        .map(|&(db, flat)| {
            db > opts.min_level_db
                && (db > floor + opts.loud_margin_db
                    || (db > floor + opts.voiced_margin_db && flat < opts.max_flatness))
        })
        .collect();
    let per_s = crate::SAMPLE_RATE as f32 / FRAME as f32;
    let (pad, gap, min_len) = (
        (opts.pad_s * per_s) as usize,
        (opts.merge_gap_s * per_s) as usize,
        (opts.min_speech_s * per_s).ceil() as usize,
    );
    // Runs of voiced frames, merged across short gaps, counting voiced frames in each.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, &v) in voiced.iter().enumerate() {
        if !v {
            continue;
        }
        match runs.last_mut() {
            Some(r) if i - r.1 <= gap => {
                r.1 = i + 1;
                r.2 += 1;
            }
            _ => runs.push((i, i + 1, 1)),
        }
    }
    let n = features.len();
    let mut regions: Vec<Range<usize>> = Vec::new();
    for (start, end, count) in runs {
        if count < min_len {
            continue;
        }
        let (s, e) = (start.saturating_sub(pad), (end + pad).min(n));
        let range = s * FRAME..if e == n { samples.len() } else { e * FRAME };
        match regions.last_mut() {
            Some(last) if range.start <= last.end => last.end = range.end,
            _ => regions.push(range),
        }
    }
    regions
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * amp
            })
            .collect()
    }

    /// A voiced, syllable-like sound: a 140 Hz harmonic series under a 4 Hz envelope.
    pub(crate) fn vowels(n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let env = (std::f32::consts::PI * 4.0 * t).sin().abs();
                let voice: f32 = (1..12)
                    .map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32)
                    .sum();
                amp * env * voice / 2.0
            })
            .collect()
    }

    #[test]
    fn silence_and_steady_noise_have_no_speech() {
        let opts = VadOptions::default();
        assert!(speech_regions(&vec![0.0; 48_000], &opts).is_empty());
        assert!(speech_regions(&noise(48_000, 0.001, 3), &opts).is_empty());
        assert!(speech_regions(&noise(80_000, 0.3, 5), &opts).is_empty());
        assert!(speech_regions(&[], &opts).is_empty());
    }

    #[test]
    fn speech_in_noise_is_found_where_it_is() {
        let mut audio = noise(5 * 16_000, 0.01, 7);
        for (x, v) in audio[32_000..56_000].iter_mut().zip(vowels(24_000, 0.3)) {
            *x += v;
        }
        let regions = speech_regions(&audio, &VadOptions::default());
        assert_eq!(regions.len(), 1, "{regions:?}");
        let r = &regions[0];
        assert!(r.start <= 32_000 && r.start >= 32_000 - 8_000, "{r:?}");
        assert!(r.end >= 56_000 - 4_000 && r.end <= 56_000 + 8_000, "{r:?}");
    }
}
