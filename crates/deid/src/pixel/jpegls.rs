//! JPEG-LS (ITU-T T.87 | ISO/IEC 14495-1), written here so that JPEG-LS
//! images are cleaned without a C++ codec.
//!
//! The decoder reads what devices write: 2 to 16 bits per sample, any
//! number of components (up to 4), interleave none, line or sample,
//! lossless and near-lossless (NEAR > 0), preset coding parameters (LSE
//! id 1). It refuses mapping tables, restart intervals, point transforms
//! and colour transforms. The encoder writes lossless streams with the
//! default parameters.
//!
//! Samples are exchanged as `u16`, pixel by pixel (components of a pixel
//! next to each other), rows top to bottom.

/// How the components of a scan are interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interleave {
    /// One scan per component.
    None,
    /// One scan; a line of each component in turn.
    Line,
    /// One scan; the components of each pixel in turn.
    Sample,
}

/// A decoded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Components per pixel.
    pub components: usize,
    /// Bits per sample (P).
    pub precision: u8,
    /// Largest NEAR of the scans: 0 when lossless.
    pub near: u16,
    /// `width * height * components` samples, pixel by pixel.
    pub samples: Vec<u16>,
}

/// Why a stream cannot be coded.
pub type Error = String;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DRI: u8 = 0xDD;
const SOF55: u8 = 0xF7;
const LSE: u8 = 0xF8;
const COM: u8 = 0xFE;

/// Run lengths order (J) by run index.
const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];
/// Decoded bytes allowed whatever the stream's size; above it, at most
/// [`MAX_EXPANSION`] decoded bytes per byte of stream (the rule dicom-rs
/// applies to its JPEG decoders): a stream cannot make the decoder
/// allocate far beyond its own size.
const MIN_BUDGET: usize = 16 << 20;
/// See [`MIN_BUDGET`].
const MAX_EXPANSION: usize = 64;
/// Above any mapped prediction error of a valid stream (2 * RANGE).
const MAX_MAPPED_ERROR: u64 = 1 << 18;
/// Regular contexts (365) and the two run interruption contexts.
const REGULAR: usize = 365;
const DEFAULT_RESET: i32 = 64;

/// Coding parameters of one scan.
#[derive(Debug, Clone, Copy)]
struct Params {
    maxval: i32,
    near: i32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
    range: i32,
    qbpp: u32,
    limit: u32,
}

/// Preset parameters from an LSE segment (0: default).
#[derive(Debug, Clone, Copy, Default)]
struct Preset {
    maxval: i32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
}

fn ceil_log2(n: i32) -> u32 {
    let mut k = 0;
    while (1i64 << k) < i64::from(n) {
        k += 1;
    }
    k
}

impl Params {
    fn new(precision: u8, near: i32, preset: Preset) -> Result<Self, Error> {
        let maxval = if preset.maxval > 0 {
            preset.maxval
        } else {
            (1 << precision) - 1
        };
        if near < 0 || near > (maxval / 2).min(255) {
            return Err(format!("NEAR {near} out of range for MAXVAL {maxval}"));
        }
        let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
        let (t1, t2, t3) = if maxval >= 128 {
            let factor = (maxval.min(4095) + 128) / 256;
            // FACTOR * (BASIC_T1 - 2) + 2 + 3 * NEAR, BASIC_T1 = 3
            let t1 = clamp(factor + 2 + 3 * near, near + 1);
            let t2 = clamp(factor * (7 - 3) + 3 + 5 * near, t1);
            (t1, t2, clamp(factor * (21 - 4) + 4 + 7 * near, t2))
        } else {
            let factor = 256 / (maxval + 1);
            let t1 = clamp((3 / factor).max(2) + 3 * near, near + 1);
            let t2 = clamp((7 / factor).max(3) + 5 * near, t1);
            (t1, t2, clamp((21 / factor).max(4) + 7 * near, t2))
        };
        let pick = |given: i32, default: i32| if given > 0 { given } else { default };
        let (t1, t2, t3) = (
            pick(preset.t1, t1),
            pick(preset.t2, t2),
            pick(preset.t3, t3),
        );
        if !(near < t1 && t1 <= t2 && t2 <= t3 && t3 <= maxval.max(1)) {
            return Err(format!("thresholds {t1}, {t2}, {t3} are not ordered"));
        }
        let reset = pick(preset.reset, DEFAULT_RESET);
        if reset < 3 {
            return Err(format!("RESET {reset} below 3"));
        }
        let range = (maxval + 2 * near) / (2 * near + 1) + 1;
        let bpp = ceil_log2(maxval + 1).max(2);
        Ok(Self {
            maxval,
            near,
            t1,
            t2,
            t3,
            reset,
            range,
            qbpp: ceil_log2(range),
            limit: 2 * (bpp + bpp.max(8)),
        })
    }

    fn quantize(&self, d: i32) -> i32 {
        let (near, t1, t2, t3) = (self.near, self.t1, self.t2, self.t3);
        if d <= -t3 {
            -4
        } else if d <= -t2 {
            -3
        } else if d <= -t1 {
            -2
        } else if d < -near {
            -1
        } else if d <= near {
            0
        } else if d < t1 {
            1
        } else if d < t2 {
            2
        } else if d < t3 {
            3
        } else {
            4
        }
    }

    /// Prediction error reduced modulo RANGE.
    fn modulo(&self, mut err: i32) -> i32 {
        if err < 0 {
            err += self.range;
        }
        if err >= (self.range + 1) / 2 {
            err -= self.range;
        }
        err
    }

    /// Sample reconstructed from a prediction and a (signed) error.
    fn reconstruct(&self, px: i32, err: i32) -> i32 {
        let step = 2 * self.near + 1;
        let mut value = px + err * step;
        if value < -self.near {
            value += self.range * step;
        } else if value > self.maxval + self.near {
            value -= self.range * step;
        }
        value.clamp(0, self.maxval)
    }
}

/// Median edge detector.
fn predict(ra: i32, rb: i32, rc: i32) -> i32 {
    if rc >= ra.max(rb) {
        ra.min(rb)
    } else if rc <= ra.min(rb) {
        ra.max(rb)
    } else {
        ra + rb - rc
    }
}

/// The adaptive state of a scan: context statistics.
struct Contexts {
    p: Params,
    a: [i32; REGULAR + 2],
    b: [i32; REGULAR],
    c: [i32; REGULAR],
    n: [i32; REGULAR + 2],
    nn: [i32; 2],
}

impl Contexts {
    fn new(p: Params) -> Self {
        let a = ((p.range + 32) / 64).max(2);
        Self {
            p,
            a: [a; REGULAR + 2],
            b: [0; REGULAR],
            c: [0; REGULAR],
            n: [1; REGULAR + 2],
            nn: [0; 2],
        }
    }

    /// Context index and sign from the local gradients; `None` for run mode.
    fn context(&self, ra: i32, rb: i32, rc: i32, rd: i32) -> (usize, i32) {
        let q =
            81 * self.p.quantize(rd - rb) + 9 * self.p.quantize(rb - rc) + self.p.quantize(rc - ra);
        if q < 0 {
            (q.unsigned_abs() as usize, -1)
        } else {
            (q as usize, 1)
        }
    }

    fn corrected(&self, q: usize, sign: i32, ra: i32, rb: i32, rc: i32) -> i32 {
        (predict(ra, rb, rc) + sign * self.c[q]).clamp(0, self.p.maxval)
    }

    fn k(&self, q: usize) -> u32 {
        let mut k = 0;
        while (i64::from(self.n[q]) << k) < i64::from(self.a[q]) {
            k += 1;
        }
        k
    }

    /// Whether the error mapping is inverted (lossless, k = 0, negative bias).
    fn inverted(&self, q: usize, k: u32) -> bool {
        self.p.near == 0 && k == 0 && 2 * self.b[q] <= -self.n[q]
    }

    fn update(&mut self, q: usize, err: i32) {
        self.b[q] += err * (2 * self.p.near + 1);
        self.a[q] = self.a[q].saturating_add(err.abs());
        if self.n[q] == self.p.reset {
            self.a[q] >>= 1;
            self.b[q] = if self.b[q] >= 0 {
                self.b[q] >> 1
            } else {
                -((1 - self.b[q]) >> 1)
            };
            self.n[q] >>= 1;
        }
        self.n[q] += 1;
        if self.b[q] <= -self.n[q] {
            self.b[q] += self.n[q];
            if self.c[q] > -128 {
                self.c[q] -= 1;
            }
            if self.b[q] <= -self.n[q] {
                self.b[q] = -self.n[q] + 1;
            }
        } else if self.b[q] > 0 {
            self.b[q] -= self.n[q];
            if self.c[q] < 127 {
                self.c[q] += 1;
            }
            if self.b[q] > 0 {
                self.b[q] = 0;
            }
        }
    }

    /// Golomb parameter of run interruption context `t` (RItype).
    fn ri_k(&self, t: usize) -> u32 {
        let q = REGULAR + t;
        let temp = if t == 0 {
            self.a[q]
        } else {
            self.a[q].saturating_add(self.n[q] >> 1)
        };
        let mut k = 0;
        while (i64::from(self.n[q]) << k) < i64::from(temp) {
            k += 1;
        }
        k
    }

    fn ri_update(&mut self, t: usize, err: i32, mapped: i32) {
        let q = REGULAR + t;
        if err < 0 {
            self.nn[t] += 1;
        }
        self.a[q] = self.a[q].saturating_add((mapped + 1 - t as i32) >> 1);
        if self.n[q] == self.p.reset {
            self.a[q] >>= 1;
            self.n[q] >>= 1;
            self.nn[t] >>= 1;
        }
        self.n[q] += 1;
    }

    /// Whether the run interruption error's sign flips its mapping.
    fn ri_negative_maps_odd(&self, t: usize, k: u32) -> bool {
        k != 0 || 2 * self.nn[t] >= self.n[REGULAR + t]
    }
}

/// Entropy-coded bits, with a zero bit stuffed after every 0xFF byte.
struct BitWriter {
    out: Vec<u8>,
    byte: u32,
    free: u32,
    width: u32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> Self {
        Self {
            out,
            byte: 0,
            free: 8,
            width: 8,
        }
    }

    fn put(&mut self, value: u32, mut bits: u32) {
        while bits > 0 {
            let take = bits.min(self.free);
            let chunk = (value >> (bits - take)) & ((1u32 << take) - 1);
            self.byte = (self.byte << take) | chunk;
            self.free -= take;
            bits -= take;
            if self.free == 0 {
                let byte = self.byte as u8;
                self.out.push(byte);
                self.byte = 0;
                self.width = if byte == 0xFF { 7 } else { 8 };
                self.free = self.width;
            }
        }
    }

    fn zeros(&mut self, mut count: u32) {
        while count > 0 {
            let take = count.min(24);
            self.put(0, take);
            count -= take;
        }
    }

    /// Limited-length Golomb code of `value` (T.87 A.5.3).
    fn golomb(&mut self, value: i32, k: u32, limit: u32, qbpp: u32) {
        let value = value as u32;
        let high = value >> k;
        if high < limit - qbpp - 1 {
            self.zeros(high);
            self.put(1, 1);
            self.put(value & ((1u32 << k) - 1), k);
        } else {
            self.zeros(limit - qbpp - 1);
            self.put(1, 1);
            self.put(value - 1, qbpp);
        }
    }

    /// Pad the last byte with zeros; a final 0xFF is followed by a stuffed zero byte.
    fn finish(mut self) -> Vec<u8> {
        if self.free != self.width {
            self.put(0, self.free);
        }
        if self.out.last() == Some(&0xFF) {
            self.out.push(0);
        }
        self.out
    }
}

/// Reads entropy-coded bits of one scan (the bytes up to its closing marker).
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    byte: u32,
    left: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            byte: 0,
            left: 0,
        }
    }

    fn bit(&mut self) -> u32 {
        if self.left == 0 {
            let after_ff = self.pos > 0 && self.data.get(self.pos - 1) == Some(&0xFF);
            self.byte = u32::from(self.data.get(self.pos).copied().unwrap_or(0));
            self.pos += 1;
            self.left = if after_ff { 7 } else { 8 };
        }
        self.left -= 1;
        (self.byte >> self.left) & 1
    }

    fn bits(&mut self, count: u32) -> u32 {
        (0..count).fold(0, |v, _| (v << 1) | self.bit())
    }

    fn golomb(&mut self, k: u32, limit: u32, qbpp: u32) -> Result<i32, Error> {
        let mut high = 0;
        while self.bit() == 0 {
            high += 1;
            if high > limit || self.pos > self.data.len() + 8 {
                return Err("corrupt or truncated scan data".into());
            }
        }
        let value = if high < limit - qbpp - 1 {
            (u64::from(high) << k) | u64::from(self.bits(k))
        } else {
            u64::from(self.bits(qbpp)) + 1
        };
        // a mapped error is below 2 * RANGE <= 2^17 in any valid stream
        if value > MAX_MAPPED_ERROR {
            return Err("corrupt scan data (error value out of range)".into());
        }
        Ok(value as i32)
    }

    fn overrun(&self) -> bool {
        self.pos > self.data.len() + 1
    }
}

/// Line buffers of one component: the previous and the current line, each
/// with one sample of margin on both sides.
struct Lines {
    prev: Vec<i32>,
    cur: Vec<i32>,
}

impl Lines {
    fn new(width: usize) -> Self {
        Self {
            prev: vec![0; width + 2],
            cur: vec![0; width + 2],
        }
    }

    /// Set the margins before coding a line: Ra of the first sample is the
    /// sample above it, Rd of the last one the sample above it.
    fn start(&mut self, width: usize) {
        self.prev[width + 1] = self.prev[width];
        self.cur[0] = self.prev[1];
    }

    fn end(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.cur);
    }

    /// Ra, Rb, Rc, Rd of sample `x`.
    fn neighbours(&self, x: usize) -> (i32, i32, i32, i32) {
        (
            self.cur[x],
            self.prev[x + 1],
            self.prev[x],
            self.prev[x + 2],
        )
    }
}

/// Both directions share the scan walk; they differ in where samples come from.
trait Direction {
    /// Code a regular-mode sample; returns the reconstructed value.
    fn regular(
        &mut self,
        ctx: &mut Contexts,
        q: usize,
        sign: i32,
        px: i32,
        actual: i32,
    ) -> Result<i32, Error>;
    /// Code the run starting at `x` (`width - x` samples left) whose values
    /// equal `run` (per component): returns its length and whether it
    /// reaches the end of the line.
    fn run(
        &mut self,
        run_index: &mut usize,
        lines: &[&mut Lines],
        run: &[i32],
        x: usize,
        width: usize,
    ) -> Result<(usize, bool), Error>;
    /// Code a run interruption sample with context `t`, prediction `px`
    /// and sign; `glimit` is the limit for this run index.
    fn interruption(
        &mut self,
        ctx: &mut Contexts,
        t: usize,
        px: i32,
        sign: i32,
        actual: i32,
        glimit: u32,
    ) -> Result<i32, Error>;
}

struct Encoder {
    bits: BitWriter,
}

impl Direction for Encoder {
    fn regular(
        &mut self,
        ctx: &mut Contexts,
        q: usize,
        sign: i32,
        px: i32,
        actual: i32,
    ) -> Result<i32, Error> {
        let err = ctx.p.modulo((actual - px) * sign);
        let k = ctx.k(q);
        let mapped = if ctx.inverted(q, k) {
            if err >= 0 {
                2 * err + 1
            } else {
                -2 * (err + 1)
            }
        } else if err >= 0 {
            2 * err
        } else {
            -2 * err - 1
        };
        self.bits.golomb(mapped, k, ctx.p.limit, ctx.p.qbpp);
        ctx.update(q, err);
        Ok(actual)
    }

    fn run(
        &mut self,
        run_index: &mut usize,
        lines: &[&mut Lines],
        run: &[i32],
        x: usize,
        width: usize,
    ) -> Result<(usize, bool), Error> {
        let mut length = 0;
        while x + length < width
            && lines
                .iter()
                .zip(run)
                .all(|(l, &v)| l.cur[x + length + 1] == v)
        {
            length += 1;
        }
        let end_of_line = x + length == width;
        let mut left = length;
        while left >= 1 << J[*run_index] {
            self.bits.put(1, 1);
            left -= 1 << J[*run_index];
            *run_index = (*run_index + 1).min(31);
        }
        if end_of_line {
            if left > 0 {
                self.bits.put(1, 1);
            }
        } else {
            self.bits.put(0, 1);
            self.bits.put(left as u32, J[*run_index]);
        }
        Ok((length, end_of_line))
    }

    fn interruption(
        &mut self,
        ctx: &mut Contexts,
        t: usize,
        px: i32,
        sign: i32,
        actual: i32,
        glimit: u32,
    ) -> Result<i32, Error> {
        let err = ctx.p.modulo((actual - px) * sign);
        let k = ctx.ri_k(t);
        let odd = if err < 0 {
            ctx.ri_negative_maps_odd(t, k)
        } else {
            err > 0 && !ctx.ri_negative_maps_odd(t, k)
        };
        let mapped = 2 * err.abs() - t as i32 - i32::from(odd);
        self.bits.golomb(mapped, k, glimit, ctx.p.qbpp);
        ctx.ri_update(t, err, mapped);
        Ok(actual)
    }
}

struct Decoder<'a> {
    bits: BitReader<'a>,
}

impl Direction for Decoder<'_> {
    fn regular(
        &mut self,
        ctx: &mut Contexts,
        q: usize,
        sign: i32,
        px: i32,
        _: i32,
    ) -> Result<i32, Error> {
        let k = ctx.k(q);
        let mapped = self.bits.golomb(k, ctx.p.limit, ctx.p.qbpp)?;
        let err = if ctx.inverted(q, k) {
            if mapped & 1 == 1 {
                (mapped - 1) / 2
            } else {
                -(mapped / 2) - 1
            }
        } else if mapped & 1 == 0 {
            mapped / 2
        } else {
            -(mapped + 1) / 2
        };
        ctx.update(q, err);
        Ok(ctx.p.reconstruct(px, sign * err))
    }

    fn run(
        &mut self,
        run_index: &mut usize,
        _: &[&mut Lines],
        _: &[i32],
        x: usize,
        width: usize,
    ) -> Result<(usize, bool), Error> {
        let mut length = 0;
        while self.bits.bit() == 1 {
            let full = 1usize << J[*run_index];
            let count = full.min(width - x - length);
            length += count;
            if count == full {
                *run_index = (*run_index + 1).min(31);
            }
            if x + length == width {
                return Ok((length, true));
            }
            if self.bits.overrun() {
                return Err("truncated scan data".into());
            }
        }
        length += self.bits.bits(J[*run_index]) as usize;
        if x + length >= width {
            return Err("run past the end of a line".into());
        }
        Ok((length, false))
    }

    fn interruption(
        &mut self,
        ctx: &mut Contexts,
        t: usize,
        px: i32,
        sign: i32,
        _: i32,
        glimit: u32,
    ) -> Result<i32, Error> {
        let k = ctx.ri_k(t);
        let mapped = self.bits.golomb(k, glimit, ctx.p.qbpp)?;
        let temp = mapped + t as i32;
        let odd = temp & 1;
        let magnitude = (temp + odd) / 2;
        let err = if ctx.ri_negative_maps_odd(t, k) == (odd == 1) {
            -magnitude
        } else {
            magnitude
        };
        ctx.ri_update(t, err, mapped);
        Ok(ctx.p.reconstruct(px, sign * err))
    }
}

/// Code one line of the components in `lines` together (one component, or
/// all of them sample-interleaved). The encoder finds the input in `cur`;
/// both leave the reconstructed line there.
fn code_line(
    dir: &mut impl Direction,
    ctx: &mut Contexts,
    lines: &mut [&mut Lines],
    run_index: &mut usize,
    width: usize,
) -> Result<(), Error> {
    for l in lines.iter_mut() {
        l.start(width);
    }
    let near = ctx.p.near;
    let mut quantised = [(0usize, 1i32); 4];
    let mut x = 0;
    while x < width {
        let mut all_flat = true;
        for (c, l) in lines.iter().enumerate() {
            let (ra, rb, rc, rd) = l.neighbours(x);
            let (q, sign) = ctx.context(ra, rb, rc, rd);
            quantised[c] = (q, sign);
            all_flat &= q == 0;
        }
        if !all_flat {
            for (c, l) in lines.iter_mut().enumerate() {
                let (ra, rb, rc, _) = l.neighbours(x);
                let (q, sign) = quantised[c];
                let px = ctx.corrected(q, sign, ra, rb, rc);
                l.cur[x + 1] = dir.regular(ctx, q, sign, px, l.cur[x + 1])?;
            }
            x += 1;
            continue;
        }
        // run mode
        let mut run = [0i32; 4];
        for (c, l) in lines.iter().enumerate() {
            run[c] = l.cur[x];
        }
        let run = &run[..lines.len()];
        let (length, end_of_line) = dir.run(run_index, lines, run, x, width)?;
        for (l, &v) in lines.iter_mut().zip(run) {
            l.cur[x + 1..x + 1 + length].fill(v);
        }
        x += length;
        if end_of_line {
            break;
        }
        let glimit = ctx.p.limit - J[*run_index] - 1;
        if lines.len() == 1 {
            let l = &mut lines[0];
            let (ra, rb) = (l.cur[x], l.prev[x + 1]);
            let t = usize::from((ra - rb).abs() <= near);
            let (px, sign) = if t == 1 {
                (ra, 1)
            } else {
                (rb, if ra > rb { -1 } else { 1 })
            };
            l.cur[x + 1] = dir.interruption(ctx, t, px, sign, l.cur[x + 1], glimit)?;
        } else {
            // sample-interleaved: each component with RItype 0, predicted by Rb
            for l in lines.iter_mut() {
                let (ra, rb) = (l.cur[x], l.prev[x + 1]);
                let sign = if rb < ra { -1 } else { 1 };
                l.cur[x + 1] = dir.interruption(ctx, 0, rb, sign, l.cur[x + 1], glimit)?;
            }
        }
        *run_index = run_index.saturating_sub(1);
        x += 1;
    }
    for l in lines.iter_mut() {
        l.end();
    }
    Ok(())
}

/// Walk one scan over the components `members` of `image` (pixel by
/// pixel, `components` per pixel). The encoder reads `image`, the decoder
/// fills it.
fn code_scan(
    dir: &mut impl Direction,
    p: Params,
    interleave: Interleave,
    members: &[usize],
    image: &mut [u16],
    (width, height, components): (usize, usize, usize),
) -> Result<(), Error> {
    let mut ctx = Contexts::new(p);
    let mut lines: Vec<Lines> = members.iter().map(|_| Lines::new(width)).collect();
    let mut run_indices = vec![0usize; members.len()];
    for y in 0..height {
        let row = &mut image[y * width * components..(y + 1) * width * components];
        for (l, &c) in lines.iter_mut().zip(members) {
            for x in 0..width {
                l.cur[x + 1] = i32::from(row[x * components + c]);
            }
        }
        match interleave {
            Interleave::Sample => {
                let mut all: Vec<&mut Lines> = lines.iter_mut().collect();
                code_line(dir, &mut ctx, &mut all, &mut run_indices[0], width)?;
            }
            Interleave::None | Interleave::Line => {
                for (l, run_index) in lines.iter_mut().zip(run_indices.iter_mut()) {
                    code_line(dir, &mut ctx, &mut [l], run_index, width)?;
                }
            }
        }
        // after `end`, the line just coded is `prev`
        for (l, &c) in lines.iter().zip(members) {
            for x in 0..width {
                row[x * components + c] = l.prev[x + 1] as u16;
            }
        }
    }
    Ok(())
}

/// Encode samples (pixel by pixel) as a lossless JPEG-LS stream with the
/// default coding parameters.
pub fn encode(
    samples: &[u16],
    (width, height, components): (usize, usize, usize),
    precision: u8,
    interleave: Interleave,
) -> Result<Vec<u8>, Error> {
    if !(2..=16).contains(&precision) {
        return Err(format!("{precision} bits per sample"));
    }
    if !(1..=4).contains(&components) || width == 0 || height == 0 {
        return Err(format!("{width}x{height}x{components} image"));
    }
    if width > 0xFFFF || height > 0xFFFF {
        return Err(format!("{width}x{height}: too large"));
    }
    if samples.len() != width * height * components {
        return Err(format!(
            "{} samples for a {width}x{height}x{components} image",
            samples.len()
        ));
    }
    let maxval = (1u32 << precision) - 1;
    if samples.iter().any(|&s| u32::from(s) > maxval) {
        return Err(format!("a sample exceeds {precision} bits"));
    }
    let interleave = if components == 1 {
        Interleave::None
    } else {
        interleave
    };
    let p = Params::new(precision, 0, Preset::default())?;
    let mut out = vec![0xFF, SOI, 0xFF, SOF55];
    out.extend_from_slice(&(8 + 3 * components as u16).to_be_bytes());
    out.push(precision);
    out.extend_from_slice(&(height as u16).to_be_bytes());
    out.extend_from_slice(&(width as u16).to_be_bytes());
    out.push(components as u8);
    for c in 0..components {
        out.extend_from_slice(&[c as u8 + 1, 0x11, 0]);
    }
    let scans: Vec<Vec<usize>> = match interleave {
        Interleave::None => (0..components).map(|c| vec![c]).collect(),
        _ => vec![(0..components).collect()],
    };
    let mut image = samples.to_vec();
    for members in scans {
        out.extend_from_slice(&[0xFF, SOS]);
        out.extend_from_slice(&(6 + 2 * members.len() as u16).to_be_bytes());
        out.push(members.len() as u8);
        for &c in &members {
            out.extend_from_slice(&[c as u8 + 1, 0]);
        }
        let ilv = match interleave {
            Interleave::None => 0,
            Interleave::Line => 1,
            Interleave::Sample => 2,
        };
        out.extend_from_slice(&[0, ilv, 0]);
        let mut encoder = Encoder {
            bits: BitWriter::new(out),
        };
        code_scan(
            &mut encoder,
            p,
            interleave,
            &members,
            &mut image,
            (width, height, components),
        )?;
        out = encoder.bits.finish();
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Ok(out)
}

/// Frame header (SOF55).
struct FrameHeader {
    precision: u8,
    width: usize,
    height: usize,
    ids: Vec<u8>,
}

/// Where the entropy-coded data starting at `from` ends: at the next
/// marker (0xFF followed by a byte with its high bit set).
fn scan_end(data: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 1 < data.len() {
        if data[i] == 0xFF && data[i + 1] >= 0x80 {
            return i;
        }
        i += 1;
    }
    data.len()
}

fn be16(data: &[u8], at: usize) -> Result<usize, Error> {
    match data.get(at..at + 2) {
        Some(b) => Ok(usize::from(u16::from_be_bytes([b[0], b[1]]))),
        None => Err("truncated marker segment".into()),
    }
}

/// Decode a JPEG-LS stream.
pub fn decode(data: &[u8]) -> Result<Decoded, Error> {
    if data.get(..2) != Some(&[0xFF, SOI]) {
        return Err("no JPEG SOI marker".into());
    }
    let mut pos = 2;
    let mut frame: Option<FrameHeader> = None;
    let mut preset = Preset::default();
    let mut image: Vec<u16> = Vec::new();
    let mut decoded_components = Vec::new();
    let mut max_near = 0;
    loop {
        // a marker, after any fill bytes
        if data.get(pos) != Some(&0xFF) {
            return Err(format!("marker expected at byte {pos}"));
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&code) = data.get(pos) else {
            return Err("no EOI marker".into());
        };
        pos += 1;
        if code == EOI {
            break;
        }
        let len = be16(data, pos)?;
        let segment = data
            .get(pos + 2..pos + len)
            .ok_or("truncated marker segment")?;
        pos += len;
        match code {
            SOF55 => {
                if segment.len() < 6 {
                    return Err("short SOF55".into());
                }
                let components = usize::from(segment[5]);
                if segment.len() < 6 + 3 * components || !(1..=4).contains(&components) {
                    return Err(format!("{components} components"));
                }
                let header = FrameHeader {
                    precision: segment[0],
                    height: usize::from(u16::from_be_bytes([segment[1], segment[2]])),
                    width: usize::from(u16::from_be_bytes([segment[3], segment[4]])),
                    ids: (0..components).map(|c| segment[6 + 3 * c]).collect(),
                };
                if !(2..=16).contains(&header.precision) {
                    return Err(format!("{} bits per sample", header.precision));
                }
                if header.width == 0 || header.height == 0 {
                    return Err("image size given outside the frame header".into());
                }
                let samples = header.width * header.height * components;
                if samples * 2 > MIN_BUDGET && samples * 2 / MAX_EXPANSION > data.len() {
                    return Err(format!(
                        "a {}x{}x{components} image cannot come from a {}-byte stream",
                        header.width,
                        header.height,
                        data.len()
                    ));
                }
                image = vec![0; samples];
                frame = Some(header);
            }
            LSE => match segment.first() {
                Some(1) if segment.len() >= 11 => {
                    let v = |i: usize| i32::from(u16::from_be_bytes([segment[i], segment[i + 1]]));
                    preset = Preset {
                        maxval: v(1),
                        t1: v(3),
                        t2: v(5),
                        t3: v(7),
                        reset: v(9),
                    };
                }
                Some(id) => return Err(format!("LSE segment {id} (mapping tables) not supported")),
                None => return Err("empty LSE segment".into()),
            },
            SOS => {
                let header = frame.as_ref().ok_or("scan before the frame header")?;
                let count = usize::from(*segment.first().ok_or("empty SOS")?);
                if segment.len() < 1 + 2 * count + 3 || count == 0 {
                    return Err("short SOS".into());
                }
                let mut members = Vec::with_capacity(count);
                for i in 0..count {
                    let id = segment[1 + 2 * i];
                    let c = header
                        .ids
                        .iter()
                        .position(|&x| x == id)
                        .ok_or(format!("scan names unknown component {id}"))?;
                    if segment[2 + 2 * i] != 0 {
                        return Err("mapping tables not supported".into());
                    }
                    members.push(c);
                }
                let near = i32::from(segment[1 + 2 * count]);
                let interleave = match segment[2 + 2 * count] {
                    0 => Interleave::None,
                    1 => Interleave::Line,
                    2 => Interleave::Sample,
                    other => return Err(format!("interleave mode {other}")),
                };
                if segment[3 + 2 * count] & 0x0F != 0 {
                    return Err("point transform not supported".into());
                }
                if interleave == Interleave::None && count > 1 {
                    return Err(format!("{count} components in a non-interleaved scan"));
                }
                let p = Params::new(header.precision, near, preset)?;
                if p.maxval >= 1 << header.precision {
                    return Err(format!("MAXVAL {} above the precision", p.maxval));
                }
                let end = scan_end(data, pos);
                let mut decoder = Decoder {
                    bits: BitReader::new(&data[pos..end]),
                };
                code_scan(
                    &mut decoder,
                    p,
                    interleave,
                    &members,
                    &mut image,
                    (header.width, header.height, header.ids.len()),
                )?;
                if decoder.bits.overrun() {
                    return Err("truncated scan data".into());
                }
                max_near = max_near.max(near as u16);
                decoded_components.extend(members);
                pos = end;
            }
            DRI => {
                if segment.len() >= 2 && segment[..2] != [0, 0] {
                    return Err("restart intervals not supported".into());
                }
            }
            0xE8 if segment.starts_with(b"mrfx") && segment.get(4).is_some_and(|&t| t != 0) => {
                return Err("HP colour transform not supported".into());
            }
            0xE0..=0xEF | COM => {}
            0xC0..=0xCF => return Err("not a JPEG-LS stream (other JPEG frame)".into()),
            other => return Err(format!("unexpected marker 0xFF{other:02X}")),
        }
    }
    let header = frame.ok_or("no frame header")?;
    decoded_components.sort_unstable();
    decoded_components.dedup();
    if decoded_components.len() != header.ids.len() {
        return Err("a component has no scan".into());
    }
    Ok(Decoded {
        width: header.width,
        height: header.height,
        components: header.ids.len(),
        precision: header.precision,
        near: max_near,
        samples: image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic test picture: smooth gradients, flat areas (runs),
    /// noise and sharp edges, in every component.
    fn picture(width: usize, height: usize, components: usize, precision: u8) -> Vec<u16> {
        let max = (1u32 << precision) - 1;
        let mut seed = 0x2545_F491_u32;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut out = Vec::with_capacity(width * height * components);
        for y in 0..height {
            for x in 0..width {
                for c in 0..components {
                    let v = if y < height / 4 {
                        0 // flat: run mode
                    } else if x < width / 3 {
                        ((x * 7 + y * 3 + c * 50) as u32 * max / 400) % (max + 1)
                    } else if x < 2 * width / 3 {
                        noise() % (max + 1)
                    } else if (x / 5 + y / 3 + c) % 2 == 0 {
                        max
                    } else {
                        max / 3
                    };
                    out.push(v as u16);
                }
            }
        }
        out
    }

    #[test]
    fn lossless_streams_decode_to_the_samples_encoded() {
        for (components, precision) in [(1, 8), (1, 16), (1, 12), (1, 2), (3, 8), (3, 16), (4, 8)] {
            for interleave in [Interleave::None, Interleave::Line, Interleave::Sample] {
                let (w, h) = (37, 23);
                let samples = picture(w, h, components, precision);
                let stream =
                    encode(&samples, (w, h, components), precision, interleave).expect("encoded");
                let back = decode(&stream).expect("decoded");
                assert_eq!(
                    (
                        back.width,
                        back.height,
                        back.components,
                        back.precision,
                        back.near
                    ),
                    (w, h, components, precision, 0)
                );
                assert!(
                    back.samples == samples,
                    "{components} x {precision} bits, {interleave:?}"
                );
            }
        }
    }

    #[test]
    fn flat_images_compress_to_almost_nothing() {
        let samples = vec![200u16; 640 * 480];
        let stream = encode(&samples, (640, 480, 1), 8, Interleave::None).expect("encoded");
        assert!(stream.len() < 2000, "{} bytes", stream.len());
        assert_eq!(decode(&stream).expect("decoded").samples, samples);
    }

    #[test]
    fn one_pixel_and_one_column_images_round_trip() {
        for (w, h) in [(1, 1), (1, 9), (9, 1), (2, 2)] {
            let samples = picture(w, h, 3, 8);
            let stream = encode(&samples, (w, h, 3), 8, Interleave::Sample).expect("encoded");
            assert_eq!(decode(&stream).expect("decoded").samples, samples);
        }
    }

    #[test]
    fn samples_wider_than_the_precision_are_refused() {
        assert!(encode(&[300], (1, 1, 1), 8, Interleave::None).is_err());
    }

    #[test]
    fn truncated_and_foreign_streams_are_errors_not_panics() {
        let samples = picture(20, 20, 3, 8);
        let stream = encode(&samples, (20, 20, 3), 8, Interleave::Line).expect("encoded");
        for cut in [0, 2, 10, 30, stream.len() / 2, stream.len() - 2] {
            assert!(decode(&stream[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xC0, 0, 2, 0xFF, 0xD9]).is_err());
    }
}
