//! Whisper's log-mel front end: 25 ms Hann windows (400 samples, periodic), 10 ms hop (160),
//! centred frames with reflect padding, power spectrum, 80 Slaney-style mel filters (area
//! normalised, 0-8 kHz), log10 with an 8-decade floor below the maximum, scaled to about [-1, 1].

use rustfft::{FftPlanner, num_complex::Complex};

/// FFT size and window length in samples.
pub const N_FFT: usize = 400;
/// Hop between frames in samples.
pub const HOP: usize = 160;
/// Frames in one 30-second window.
pub const WINDOW_FRAMES: usize = 3000;
/// Samples in one 30-second window.
pub const WINDOW_SAMPLES: usize = WINDOW_FRAMES * HOP;

/// Slaney's mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * f_sp
    }
}

/// The mel filterbank, `n_mels` rows of `N_FFT / 2 + 1` weights, for a 16 kHz signal.
pub fn mel_filters(n_mels: usize) -> Vec<Vec<f32>> {
    let n_bins = N_FFT / 2 + 1;
    let sr = crate::SAMPLE_RATE as f64;
    let bin_hz: Vec<f64> = (0..n_bins).map(|i| i as f64 * sr / N_FFT as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            bin_hz
                .iter()
                .map(|&f| {
                    let rising = (f - left) / (centre - left);
                    let falling = (right - f) / (right - centre);
                    (rising.min(falling).max(0.0) * norm) as f32
                })
                .collect()
        })
        .collect()
}

/// Log-mel spectrogram, `n_mels` rows (row-major, `n_mels * frames`), one frame per 160 samples.
pub struct LogMel {
    /// Number of mel bins.
    pub n_mels: usize,
    /// Number of frames.
    pub frames: usize,
    /// Row-major `[n_mels][frames]` values.
    pub data: Vec<f32>,
}

impl LogMel {
    /// Computes the spectrogram of `samples` followed by 30 s of silence, as Whisper does, so
    /// that every window read from it is complete.
    pub fn compute(samples: &[f32], n_mels: usize) -> LogMel {
        let mut padded = samples.to_vec();
        padded.resize(samples.len() + WINDOW_SAMPLES, 0.0);
        let power = power_spectrogram(&padded);
        // Each triangle covers a few bins: keep only its non-zero span.
        let filters: Vec<(usize, Vec<f32>)> = mel_filters(n_mels)
            .into_iter()
            .map(|f| {
                let first = f.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = f.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, f[first..last].to_vec())
            })
            .collect();
        let frames = power.len();
        let mut data = vec![0f32; n_mels * frames];
        for (t, spectrum) in power.iter().enumerate() {
            for (m, (first, weights)) in filters.iter().enumerate() {
                let e: f32 = weights
                    .iter()
                    .zip(&spectrum[*first..])
                    .map(|(w, p)| w * p)
                    .sum();
                data[m * frames + t] = e.max(1e-10).log10();
            }
        }
        let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut data {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        LogMel {
            n_mels,
            frames,
            data,
        }
    }

    /// The 3000 frames starting at `start` (zero-filled past the end), row-major.
    pub fn window(&self, start: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.n_mels * WINDOW_FRAMES];
        let take = self.frames.saturating_sub(start).min(WINDOW_FRAMES);
        for m in 0..self.n_mels {
            let row = &self.data[m * self.frames + start..m * self.frames + start + take];
            out[m * WINDOW_FRAMES..m * WINDOW_FRAMES + take].copy_from_slice(row);
        }
        out
    }
}

/// Power spectra of centred, reflect-padded Hann frames; the last frame is dropped as in Whisper.
fn power_spectrogram(samples: &[f32]) -> Vec<Vec<f32>> {
    let pad = N_FFT / 2;
    let n = samples.len();
    let reflect = |i: isize| -> f32 {
        let j = if i < 0 {
            -i
        } else if i >= n as isize {
            2 * (n as isize - 1) - i
        } else {
            i
        };
        samples[j.clamp(0, n as isize - 1) as usize]
    };
    let window: Vec<f32> = (0..N_FFT)
        .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32)
        .collect();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let frames = n / HOP;
    let mut scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
    let mut buf = vec![Complex::default(); N_FFT];
    (0..frames)
        .map(|t| {
            let start = (t * HOP) as isize - pad as isize;
            for (i, c) in buf.iter_mut().enumerate() {
                *c = Complex::new(reflect(start + i as isize) * window[i], 0.0);
            }
            fft.process_with_scratch(&mut buf, &mut scratch);
            buf[..=N_FFT / 2].iter().map(|c| c.norm_sqr()).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_is_linear_below_1khz() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-9);
        for hz in [0.0, 300.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
    }

    #[test]
    fn filters_are_area_normalised_triangles_covering_the_band() {
        let f = mel_filters(80);
        assert_eq!((f.len(), f[0].len()), (80, 201));
        // Slaney normalisation: each triangle has area ~1 in Hz units (peak 2/width, base width).
        for row in &f {
            assert!(row.iter().any(|&w| w > 0.0));
            let area: f32 = row.iter().sum::<f32>() * (16_000.0 / 400.0);
            assert!((0.4..1.6).contains(&area), "area {area}");
        }
        // Low filters are narrow (tall), high ones wide (low).
        let peak = |r: &Vec<f32>| r.iter().copied().fold(0.0, f32::max);
        assert!(peak(&f[5]) > 3.0 * peak(&f[79]));
        // The first filter at bin 1 (40 Hz): faster-whisper's filterbank has 0.02486259.
        assert!((f[0][1] - 0.024_862_59).abs() < 1e-5, "{}", f[0][1]);
    }

    #[test]
    fn a_tone_peaks_in_its_mel_band_and_silence_is_the_floor() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let mel = LogMel::compute(&tone, 80);
        assert_eq!(mel.frames, (16_000 + WINDOW_SAMPLES) / HOP);
        let t = 50;
        let col: Vec<f32> = (0..80).map(|m| mel.data[m * mel.frames + t]).collect();
        let best = (0..80).max_by(|&a, &b| col[a].total_cmp(&col[b])).unwrap();
        let centre_hz = |m: usize| mel_to_hz(hz_to_mel(8000.0) * (m + 1) as f64 / 81.0);
        assert!(
            (centre_hz(best) - 1000.0).abs() < 60.0,
            "peak at {}",
            centre_hz(best)
        );
        // In the silent padding every value sits at the floor, max - 8 decades.
        let silent = mel.data[10 * mel.frames + mel.frames - 10];
        let max = mel.data.iter().copied().fold(f32::MIN, f32::max);
        assert!((silent - (max - 2.0)).abs() < 1e-5);
        assert_eq!(mel.window(0).len(), 80 * WINDOW_FRAMES);
    }
}
