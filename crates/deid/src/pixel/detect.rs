//! A text detector for burned-in annotations: bright, sharp strokes on a
//! dark surround, of character size, lined up horizontally.
//!
//! 1. Ink: pixels at least `MIN_INK` bright and `MIN_CONTRAST` above
//!    the darkest pixel around them.
//! 2. Characters: connected components of ink of character size whose
//!    strokes are evenly bright (glyphs are drawn in one colour; speckle
//!    peaks in the middle).
//! 3. Lines: characters on one baseline with word-sized gaps; a line of two
//!    or more characters on a flat background (most of the pixels between
//!    the strokes close to the darkest one) is text.

use crate::pixel::geometry::Rect;

/// Darkest value that can be ink.
const MIN_INK: u8 = 110;
/// How much brighter than its darkest neighbour ink must be.
const MIN_CONTRAST: u8 = 80;
/// Radius of the neighbourhood searched for that darkest neighbour.
const SURROUND: usize = 3;
/// Smallest character height, in pixels.
const MIN_CHAR_HEIGHT: u32 = 4;
/// Share of a character's pixels within [`STROKE_SPREAD`] of its brightest.
const MIN_EVEN_STROKE: f64 = 0.5;
/// How far below the brightest a stroke pixel may be.
const STROKE_SPREAD: u8 = 50;
/// Share of a line's background pixels within [`FLAT_SPREAD`] of its darkest.
const MIN_FLAT_BACKGROUND: f64 = 0.6;
/// How far above the darkest a background pixel may be.
const FLAT_SPREAD: u8 = 40;

/// A connected component of ink.
#[derive(Debug, Clone, Copy)]
struct Blob {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    pixels: u32,
    brightest: u8,
}

impl Blob {
    fn width(&self) -> u32 {
        self.x1 - self.x0 + 1
    }

    fn height(&self) -> u32 {
        self.y1 - self.y0 + 1
    }
}

/// Text boxes found in one 8-bit frame of `cols × rows`.
pub fn detect_text(lum: &[u8], cols: u32, rows: u32) -> Vec<Rect> {
    let (width, height) = (cols as usize, rows as usize);
    let ink = ink_mask(lum, width, height);
    let max_height = (rows / 10).max(MIN_CHAR_HEIGHT + 4);
    let (blobs, labels) = components(&ink, lum, width, height);
    let even = even_strokes(&blobs, &labels, lum);
    let chars: Vec<Blob> = blobs
        .into_iter()
        .zip(even)
        .filter(|(b, even)| {
            let (w, h) = (b.width(), b.height());
            let fill = f64::from(b.pixels) / f64::from(w * h);
            *even
                && (MIN_CHAR_HEIGHT..=max_height).contains(&h)
                && w <= 3 * h + 4
                && (0.08..=0.95).contains(&fill)
        })
        .map(|(b, _)| b)
        .collect();
    lines(&chars)
        .into_iter()
        .filter(|line| flat_background(line, &ink, lum, width))
        .filter_map(|line| {
            let h = line.height();
            Rect::from_corners(
                i64::from(line.x0) - i64::from(h),
                i64::from(line.y0),
                i64::from(line.x1) + i64::from(h),
                i64::from(line.y1),
                cols,
                rows,
            )
            .map(|r| r.padded(h / 3 + 2, cols, rows))
        })
        .collect()
}

/// Whether most strokes of each blob are close to its brightest value.
fn even_strokes(blobs: &[Blob], labels: &[u32], lum: &[u8]) -> Vec<bool> {
    let mut near_top = vec![0u32; blobs.len()];
    for (label, value) in labels.iter().zip(lum) {
        if *label > 0 {
            let blob = &blobs[*label as usize - 1];
            if *value >= blob.brightest.saturating_sub(STROKE_SPREAD) {
                near_top[*label as usize - 1] += 1;
            }
        }
    }
    blobs
        .iter()
        .zip(near_top)
        .map(|(b, n)| f64::from(n) >= MIN_EVEN_STROKE * f64::from(b.pixels))
        .collect()
}

/// Whether the pixels of a line that are not ink are mostly as dark as its darkest.
fn flat_background(line: &Blob, ink: &[bool], lum: &[u8], cols: usize) -> bool {
    let background = || {
        (line.y0..=line.y1).flat_map(move |y| {
            (line.x0..=line.x1)
                .map(move |x| y as usize * cols + x as usize)
                .filter(|&p| !ink[p])
        })
    };
    let Some(darkest) = background().map(|p| lum[p]).min() else {
        return true;
    };
    let (flat, total) = background().fold((0usize, 0usize), |(f, t), p| {
        (
            f + usize::from(lum[p] <= darkest.saturating_add(FLAT_SPREAD)),
            t + 1,
        )
    });
    flat as f64 >= MIN_FLAT_BACKGROUND * total as f64
}

fn ink_mask(lum: &[u8], cols: usize, rows: usize) -> Vec<bool> {
    // separable minimum filter
    let mut horizontal = vec![0u8; lum.len()];
    for y in 0..rows {
        let row = &lum[y * cols..(y + 1) * cols];
        for x in 0..cols {
            let (a, b) = (x.saturating_sub(SURROUND), (x + SURROUND).min(cols - 1));
            horizontal[y * cols + x] = row[a..=b].iter().copied().min().unwrap_or(0);
        }
    }
    let mut ink = vec![false; lum.len()];
    for y in 0..rows {
        let (a, b) = (y.saturating_sub(SURROUND), (y + SURROUND).min(rows - 1));
        for x in 0..cols {
            let v = lum[y * cols + x];
            if v < MIN_INK {
                continue;
            }
            let darkest = (a..=b)
                .map(|yy| horizontal[yy * cols + x])
                .min()
                .unwrap_or(0);
            ink[y * cols + x] = v.saturating_sub(darkest) >= MIN_CONTRAST;
        }
    }
    ink
}

/// 8-connected components of `ink`, and the label of each pixel (1-based, 0 = none).
fn components(ink: &[bool], lum: &[u8], cols: usize, rows: usize) -> (Vec<Blob>, Vec<u32>) {
    let mut labels = vec![0u32; ink.len()];
    let mut blobs = Vec::new();
    let mut stack = Vec::new();
    for start in 0..ink.len() {
        if !ink[start] || labels[start] > 0 {
            continue;
        }
        let label = blobs.len() as u32 + 1;
        labels[start] = label;
        stack.push(start);
        let (x, y) = ((start % cols) as u32, (start / cols) as u32);
        let mut blob = Blob {
            x0: x,
            y0: y,
            x1: x,
            y1: y,
            pixels: 0,
            brightest: 0,
        };
        while let Some(p) = stack.pop() {
            let (x, y) = (p % cols, p / cols);
            blob.pixels += 1;
            blob.brightest = blob.brightest.max(lum[p]);
            blob.x0 = blob.x0.min(x as u32);
            blob.x1 = blob.x1.max(x as u32);
            blob.y0 = blob.y0.min(y as u32);
            blob.y1 = blob.y1.max(y as u32);
            for ny in y.saturating_sub(1)..=(y + 1).min(rows - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(cols - 1) {
                    let q = ny * cols + nx;
                    if ink[q] && labels[q] == 0 {
                        labels[q] = label;
                        stack.push(q);
                    }
                }
            }
        }
        blobs.push(blob);
    }
    (blobs, labels)
}

/// Join characters into lines; keep lines of two or more characters.
fn lines(chars: &[Blob]) -> Vec<Blob> {
    let mut order: Vec<usize> = (0..chars.len()).collect();
    order.sort_by_key(|&i| chars[i].x0);
    let mut parent: Vec<usize> = (0..chars.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (n, &i) in order.iter().enumerate() {
        let a = chars[i];
        for &j in &order[n + 1..] {
            let b = chars[j];
            let tallest = a.height().max(b.height());
            if b.x0 > a.x1 + tallest {
                break;
            }
            let overlap = a.y1.min(b.y1) as i64 - a.y0.max(b.y0) as i64 + 1;
            let shortest = a.height().min(b.height());
            if overlap * 2 >= i64::from(shortest) && 2 * tallest <= 5 * shortest {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    let mut groups: std::collections::HashMap<usize, (Blob, usize)> = Default::default();
    for (i, &c) in chars.iter().enumerate() {
        let r = root(&mut parent, i);
        groups
            .entry(r)
            .and_modify(|(g, n)| {
                g.x0 = g.x0.min(c.x0);
                g.y0 = g.y0.min(c.y0);
                g.x1 = g.x1.max(c.x1);
                g.y1 = g.y1.max(c.y1);
                g.pixels += c.pixels;
                *n += 1;
            })
            .or_insert((c, 1));
    }
    groups
        .into_values()
        .filter(|(_, n)| *n >= 2)
        .map(|(g, _)| g)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A black frame with white 5×7 "H" glyphs spaced like letters.
    fn frame_with_word(cols: u32, rows: u32, letters: u32) -> Vec<u8> {
        let mut lum = vec![0u8; (cols * rows) as usize];
        for l in 0..letters {
            let left = 20 + l * 7;
            for y in 10..17 {
                for x in left..left + 5 {
                    if x == left || x == left + 4 || y == 13 {
                        lum[(y * cols + x) as usize] = 255;
                    }
                }
            }
        }
        lum
    }

    #[test]
    fn a_word_on_black_is_found() {
        let lum = frame_with_word(100, 50, 4);
        let boxes = detect_text(&lum, 100, 50);
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        assert!(b.x <= 20 && b.x + b.width >= 41 && b.y <= 10 && b.y + b.height >= 17);
    }

    #[test]
    fn a_single_mark_or_a_flat_frame_is_not_text() {
        assert!(detect_text(&frame_with_word(100, 50, 1), 100, 50).is_empty());
        assert!(detect_text(&vec![200u8; 5000], 100, 50).is_empty());
    }
}
