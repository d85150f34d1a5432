//! When each word of a window was said, from the decoder's cross-attention, as Whisper's word
//! timestamps are computed: the text is read again after the bare start sequence and
//! `<|notimestamps|>`; the attention of the alignment heads over the window's audio is
//! standardised across tokens, smoothed along time (median of 7 positions), averaged over the
//! heads, and a dynamic-time-warping path through it gives each token the position where it
//! starts. A word that lasts far longer than speech allows is speech the text passes over
//! (Whisper, given names as its prompt, sometimes takes a sentence as already said).

use crate::Result;
use crate::decode::TokenRules;
use crate::model::{DecoderState, Whisper};
use crate::tokenizer::Tokenizer;

/// Audio positions per second in the encoder's output (20 ms each).
pub const POSITIONS_PER_SECOND: f32 = 50.0;
/// Width of the median filter along time, in positions.
const MEDIAN_WIDTH: usize = 7;

/// The audio position (20 ms steps from the window's start) where each of the `text` tokens
/// starts, and, last, where the end of text does: `text.len() + 1` values, non-decreasing.
/// `audio` is the window's encoder state (before any start sequence), `positions` the
/// positions of the window that hold audio.
pub fn token_starts(
    model: &Whisper,
    tok: &Tokenizer,
    rules: &TokenRules,
    audio: &DecoderState,
    language: Option<u32>,
    text: &[u32],
    positions: usize,
) -> Result<Vec<usize>> {
    let sp = &tok.special;
    let mut seq = vec![sp.sot];
    if rules.multilingual {
        seq.extend(language);
        seq.push(sp.transcribe);
    }
    let first_row = seq.len();
    seq.push(sp.no_timestamps);
    seq.extend_from_slice(text);
    seq.push(sp.eot);
    let heads = if rules.alignment_heads.is_empty() {
        let c = &model.config;
        (c.decoder_layers / 2..c.decoder_layers)
            .flat_map(|layer| (0..c.decoder_heads).map(move |head| (layer, head)))
            .collect()
    } else {
        rules.alignment_heads.clone()
    };
    let weights = model.cross_attention(audio, &seq, &heads)?;
    // The rows that predict each text token and the end of text.
    let rows = first_row..seq.len() - 1;
    let positions = positions.clamp(1, weights.first().map_or(1, |w| w[0].len()));
    let heads: Vec<Vec<Vec<f32>>> = weights
        .into_iter()
        .map(|w| standardised(&w[rows.clone()], positions))
        .collect();
    let n = heads.len().max(1) as f32;
    let cost: Vec<Vec<f32>> = (0..rows.len())
        .map(|i| {
            (0..positions)
                .map(|j| -heads.iter().map(|h| h[i][j]).sum::<f32>() / n)
                .collect()
        })
        .collect();
    Ok(starts(&dtw(&cost), rows.len()))
}

/// One head's attention rows over the first `positions` positions: renormalised over them
/// (the softmax over the audio alone), standardised per position across the rows, and
/// median-filtered along time.
fn standardised(rows: &[Vec<f32>], positions: usize) -> Vec<Vec<f32>> {
    let mut m: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| {
            let total: f32 = r[..positions].iter().sum::<f32>().max(f32::MIN_POSITIVE);
            r[..positions].iter().map(|w| w / total).collect()
        })
        .collect();
    let t = m.len().max(1) as f32;
    for j in 0..positions {
        let mean = m.iter().map(|r| r[j]).sum::<f32>() / t;
        let var = m.iter().map(|r| (r[j] - mean).powi(2)).sum::<f32>() / t;
        let std = var.sqrt().max(1e-8);
        for r in &mut m {
            r[j] = (r[j] - mean) / std;
        }
    }
    m.iter().map(|r| median_filtered(r, MEDIAN_WIDTH)).collect()
}

/// The median of each `width` values centred on each, the ends reflected.
fn median_filtered(row: &[f32], width: usize) -> Vec<f32> {
    let half = width / 2;
    let n = row.len() as isize;
    let at = |i: isize| -> f32 {
        let mut i = i;
        if n == 1 {
            return row[0];
        }
        while i < 0 || i >= n {
            i = if i < 0 { -i } else { 2 * (n - 1) - i };
        }
        row[i as usize]
    };
    (0..n)
        .map(|i| {
            let mut window: Vec<f32> = (i - half as isize..=i + half as isize).map(at).collect();
            window.sort_by(f32::total_cmp);
            window[half]
        })
        .collect()
}

/// The cheapest monotonic path through `cost` (rows: tokens, columns: time) from the first
/// cell to the last, moving one row, one column or both at each step: its cells in order.
fn dtw(cost: &[Vec<f32>]) -> Vec<(usize, usize)> {
    let (n, m) = (cost.len(), cost.first().map_or(0, Vec::len));
    if n == 0 || m == 0 {
        return Vec::new();
    }
    // total[i][j]: cheapest path to cell (i - 1, j - 1); row and column 0 are the border.
    let mut total = vec![vec![f32::INFINITY; m + 1]; n + 1];
    let mut step = vec![vec![0u8; m + 1]; n + 1];
    total[0][0] = 0.0;
    for i in 1..=n {
        for j in 1..=m {
            let options = [total[i - 1][j - 1], total[i - 1][j], total[i][j - 1]];
            let (k, best) = options
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, &v)| (k, v))
                .unwrap_or((0, f32::INFINITY));
            total[i][j] = cost[i - 1][j - 1] + best;
            step[i][j] = k as u8;
        }
    }
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 && j > 0 {
        path.push((i - 1, j - 1));
        match step[i][j] {
            0 => (i, j) = (i - 1, j - 1),
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

/// The column where the path first enters each of the `rows` rows.
fn starts(path: &[(usize, usize)], rows: usize) -> Vec<usize> {
    let mut out = vec![0; rows];
    let mut seen = 0;
    for &(i, j) in path {
        while seen <= i && seen < rows {
            out[seen] = j;
            seen += 1;
        }
    }
    out
}

/// The longest a word of `text` lasts, in seconds, given where each token and the end of text
/// start (`token_starts`). Words start at a token beginning with a space; the first word starts
/// with the window (after the detector's padding of the first speech, 0.3 s).
pub fn longest_word(tok: &Tokenizer, text: &[u32], starts: &[usize]) -> f32 {
    let mut firsts: Vec<usize> = (0..text.len())
        .filter(|&i| i == 0 || tok.token_bytes(text[i]).first() == Some(&b' '))
        .collect();
    firsts.push(text.len());
    firsts
        .windows(2)
        .map(|w| starts[w[1]].saturating_sub(starts[w[0]]) as f32 / POSITIONS_PER_SECOND)
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_follows_the_cheap_cells_and_gives_each_row_its_start() {
        // Three tokens over ten positions: token 0 at 0-1, token 1 at 2-7 (a long one), 2 at 8-9.
        let spans = [0..2, 2..8, 8..10];
        let cost: Vec<Vec<f32>> = spans
            .iter()
            .map(|s| {
                (0..10)
                    .map(|j| if s.contains(&j) { -1.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        let path = dtw(&cost);
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(2, 9)));
        assert!(path.windows(2).all(|w| {
            let (a, b) = (w[0], w[1]);
            b.0 - a.0 <= 1 && b.1 - a.1 <= 1 && (b.0, b.1) != (a.0, a.1)
        }));
        assert_eq!(starts(&path, 3), [0, 2, 8]);
    }

    #[test]
    fn the_median_filter_removes_single_spikes_and_keeps_steps() {
        let spike = [0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0];
        assert!(median_filtered(&spike, 7).iter().all(|&v| v == 0.0));
        let step = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(median_filtered(&step, 3), step);
        assert_eq!(median_filtered(&[2.0], 7), [2.0]);
    }

    #[test]
    fn standardising_makes_each_position_comparable_across_tokens() {
        // Attention over 12 positions of audio, then 2 of padding the window lacks.
        let row = |near: std::ops::Range<usize>| -> Vec<f32> {
            (0..14)
                .map(|j| if near.contains(&j) { 0.15 } else { 0.01 })
                .collect()
        };
        let rows = vec![row(0..6), row(6..12)];
        let m = standardised(&rows, 12);
        assert_eq!(m[0].len(), 12);
        // Each token comes out ahead where it attends most.
        assert!(m[0][1] > m[1][1] && m[1][10] > m[0][10]);
    }
}
