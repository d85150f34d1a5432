//! Rectangles and the blanking mask of one frame geometry.

/// A rectangle of pixels, `[x, x+width) × [y, y+height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in columns.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
}

impl Rect {
    /// The rectangle from corner `(x0, y0)` to `(x1, y1)` inclusive, clipped
    /// to a `cols × rows` frame; `None` if nothing is left.
    pub fn from_corners(x0: i64, y0: i64, x1: i64, y1: i64, cols: u32, rows: u32) -> Option<Rect> {
        let (x0, x1) = (x0.max(0), x1.min(i64::from(cols) - 1));
        let (y0, y1) = (y0.max(0), y1.min(i64::from(rows) - 1));
        (x0 <= x1 && y0 <= y1).then(|| Rect {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0 + 1) as u32,
            height: (y1 - y0 + 1) as u32,
        })
    }

    /// This rectangle grown by `pad` on every side, clipped to the frame.
    pub fn padded(self, pad: u32, cols: u32, rows: u32) -> Rect {
        let pad = i64::from(pad);
        Rect::from_corners(
            i64::from(self.x) - pad,
            i64::from(self.y) - pad,
            i64::from(self.x + self.width) - 1 + pad,
            i64::from(self.y + self.height) - 1 + pad,
            cols,
            rows,
        )
        .unwrap_or(self)
    }
}

/// One flag per pixel of a frame: `true` = blank it.
#[derive(Debug, Clone)]
pub struct Mask {
    cols: u32,
    rows: u32,
    bits: Vec<bool>,
}

impl Mask {
    /// A mask that blanks nothing.
    pub fn new(cols: u32, rows: u32) -> Self {
        Self {
            cols,
            rows,
            bits: vec![false; cols as usize * rows as usize],
        }
    }

    /// Columns of the frame.
    pub fn cols(&self) -> u32 {
        self.cols
    }

    /// Rows of the frame.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Blank (`true`) or keep (`false`) every pixel of `rect`.
    pub fn set_rect(&mut self, rect: Rect, value: bool) {
        for y in rect.y..(rect.y + rect.height).min(self.rows) {
            let row = y as usize * self.cols as usize;
            let start = row + rect.x as usize;
            let end = row + (rect.x + rect.width).min(self.cols) as usize;
            self.bits[start..end].fill(value);
        }
    }

    /// Blank every pixel.
    pub fn fill(&mut self) {
        self.bits.fill(true);
    }

    /// Whether pixel `(x, y)` is blanked.
    pub fn get(&self, x: u32, y: u32) -> bool {
        self.bits[y as usize * self.cols as usize + x as usize]
    }

    /// Whether every pixel of `rect` is already blanked.
    pub fn covers(&self, rect: Rect) -> bool {
        (rect.y..(rect.y + rect.height).min(self.rows)).all(|y| {
            let row = y as usize * self.cols as usize;
            self.bits[row + rect.x as usize..row + (rect.x + rect.width).min(self.cols) as usize]
                .iter()
                .all(|b| *b)
        })
    }

    /// The flags, row by row.
    pub fn bits(&self) -> &[bool] {
        &self.bits
    }

    /// How many pixels of `within` (or of the frame) are blanked, as a share.
    pub fn fraction(&self, within: Option<&Mask>) -> f64 {
        let (blanked, total) = match within {
            Some(region) => self
                .bits
                .iter()
                .zip(&region.bits)
                .filter(|(_, inside)| **inside)
                .fold((0usize, 0usize), |(b, t), (bit, _)| {
                    (b + usize::from(*bit), t + 1)
                }),
            None => (self.bits.iter().filter(|b| **b).count(), self.bits.len()),
        };
        if total == 0 {
            0.0
        } else {
            blanked as f64 / total as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_are_clipped_to_the_frame() {
        let r = Rect::from_corners(-5, 2, 100, 3, 10, 10).expect("overlaps");
        assert_eq!((r.x, r.y, r.width, r.height), (0, 2, 10, 2));
        assert!(Rect::from_corners(20, 0, 30, 5, 10, 10).is_none());
    }

    #[test]
    fn mask_fraction_counts_blanked_pixels_within_a_region() {
        let mut mask = Mask::new(4, 4);
        mask.set_rect(
            Rect {
                x: 0,
                y: 0,
                width: 2,
                height: 4,
            },
            true,
        );
        assert_eq!(mask.fraction(None), 0.5);
        let mut region = Mask::new(4, 4);
        region.set_rect(
            Rect {
                x: 1,
                y: 0,
                width: 2,
                height: 4,
            },
            true,
        );
        assert_eq!(mask.fraction(Some(&region)), 0.5);
    }
}
