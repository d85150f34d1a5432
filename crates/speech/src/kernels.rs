//! CPU kernels for the spots where candle's generic operations cost Whisper most: the exact
//! (erf) GELU and the attention softmax, whose scalar `erff`/`expf` calls dominate outside the
//! matrix products, run here as polynomial approximations (errors below 5e-7) that the compiler
//! vectorises, in parallel and, for the softmax, in place; and the vocabulary projection of each
//! decoded token, a matrix-vector product bound by memory, reads its weights at the half
//! precision the models ship in (half the bytes of f32, exact values) with f32 arithmetic.
//! On other devices candle's own operations run.

use crate::Result;
use candle_core::{CpuStorage, CustomOp1, DType, InplaceOp1, Layout, Shape, Tensor};

/// Keeps the large, short-lived buffers of inference (attention weights, activations: up to
/// 9 MB each, hundreds per window) in the heap instead of fresh `mmap`s, whose page faults and
/// zeroing cost about a tenth of the encoder's time with glibc's default thresholds: blocks
/// under 64 MiB come from the heap and up to 256 MiB of freed heap stays mapped. Process-wide,
/// once; a no-op outside glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            unsafe extern "C" {
                fn mallopt(param: i32, value: i32) -> i32;
            }
            const M_TRIM_THRESHOLD: i32 = -1;
            const M_MMAP_THRESHOLD: i32 = -3;
            // SAFETY: mallopt only changes glibc's allocation thresholds.
            unsafe {
                mallopt(M_MMAP_THRESHOLD, 64 << 20);
                mallopt(M_TRIM_THRESHOLD, 256 << 20);
            }
        });
    }
}

/// Below this many values, work runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Runs `f(offset, piece)` on pieces of `data` (whole multiples of `row` values, `offset` the
/// index of the piece's first value), one per thread.
fn par_rows<T: Send>(data: &mut [T], row: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let threads = candle_core::utils::get_num_threads().max(1);
    let rows = data.len() / row.max(1);
    if threads == 1 || data.len() < PARALLEL_MIN || rows < 2 {
        f(0, data);
        return;
    }
    let per = rows.div_ceil(threads) * row;
    let f = &f;
    std::thread::scope(|s| {
        let mut pieces = data.chunks_mut(per).enumerate();
        let first = pieces.next();
        for (i, piece) in pieces {
            s.spawn(move || f(i * per, piece));
        }
        if let Some((_, piece)) = first {
            f(0, piece);
        }
    });
}

/// `e^x` by range reduction to `|r| <= ln 2 / 2` and a degree-6 Taylor polynomial; inputs
/// below -87 give about 1e-38 instead of underflowing (softmax weights that small are zero).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // ln 2 split in two: n times the first part (355/512, 9 bits) is exact.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // The integer n sits in the low bits of `shifted`: 2^n built from them without a cast.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `erf` after Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, 4e-7 in f32).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-z * z);
    y.copysign(x)
}

/// The contiguous f32 values of a CPU tensor.
fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: needs a contiguous f32 tensor"),
    }
}

/// GELU of every value of `x`, in place.
#[inline(always)]
fn gelu_rows(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `softmax(scale * r)` of every row `r` (`row` values) of `x`, in place.
#[inline(always)]
fn softmax_rows(x: &mut [f32], row: usize, scale: f32) {
    for r in x.chunks_mut(row) {
        let max = lanes(r, f32::NEG_INFINITY, f32::max);
        r.iter_mut().for_each(|x| *x = exp((*x - max) * scale));
        let inv = 1.0 / lanes(r, 0.0, |a, b| a + b);
        r.iter_mut().for_each(|x| *x *= inv);
    }
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "speech-gelu-erf"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut out = f32_slice(storage, layout, self.name())?.to_vec();
        par_rows(&mut out, 1024, |_, piece| {
            #[cfg(target_arch = "x86_64")]
            if x86::gelu_rows(piece) {
                return;
            }
            gelu_rows(piece)
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Whisper's GELU, `x * (1 + erf(x / sqrt 2)) / 2`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        Ok(x.contiguous()?.apply_op1_no_bwd(&GeluErf)?)
    } else {
        Ok(x.gelu_erf()?)
    }
}

struct ScaledSoftmax(f32);

impl InplaceOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "speech-scaled-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(v), Some((a, b))) = (storage, layout.contiguous_offsets()) else {
            candle_core::bail!("{}: needs a contiguous f32 tensor", self.name());
        };
        let row = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let scale = self.0;
        par_rows(&mut v[a..b], row, |_, piece| {
            #[cfg(target_arch = "x86_64")]
            if x86::softmax_rows(piece, row, scale) {
                return;
            }
            softmax_rows(piece, row, scale)
        });
        Ok(())
    }
}

/// Reduces `x` with `op` in sixteen independent lanes (which the compiler vectorises: one
/// AVX-512 register or two AVX2 ones).
#[inline(always)]
fn lanes(x: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(init, |a, &b| op(a, b));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = op(*a, v);
        }
    }
    acc.into_iter().fold(tail, op)
}

/// `softmax(scale * x)` over the last dimension; on the CPU it overwrites `x` (which must not be
/// shared) and returns it.
pub fn scaled_softmax(x: Tensor, scale: f32) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && x.is_contiguous() {
        x.inplace_op1(&ScaledSoftmax(scale))?;
        Ok(x)
    } else {
        Ok(candle_nn::ops::softmax_last_dim(&(x * scale as f64)?)?)
    }
}

/// IEEE half-precision bits to f32: shifting the bits into place and scaling by 2^112 re-biases
/// the exponent, exact for normal and subnormal values (weights hold no infinities or NaNs).
#[inline(always)]
fn half_to_f32(h: u16) -> f32 {
    let magnitude = f32::from_bits(((h & 0x7fff) as u32) << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(magnitude.to_bits() | (((h & 0x8000) as u32) << 16))
}

/// A row-major matrix of half-precision weights applied to f32 vectors.
pub struct HalfMatrix {
    bits: Vec<u16>,
    rows: usize,
    cols: usize,
}

impl HalfMatrix {
    /// The matrix `w` (rows, cols), stored at half precision.
    pub fn new(w: &Tensor) -> Result<HalfMatrix> {
        let (rows, cols) = w.dims2()?;
        let half = w.to_dtype(DType::F16)?.contiguous()?;
        let bytes = safetensors::View::data(&half);
        let bits = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(HalfMatrix { bits, rows, cols })
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `W x` for a vector `x` of `cols` values.
    pub fn mul_vec(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.rows];
        let cols = self.cols;
        par_rows(&mut out, 64, |first, block| {
            let rows = self.bits[first * cols..].chunks_exact(cols);
            dot_rows(rows, x, block);
        });
        out
    }
}

/// `out[i] = rows[i] · x`, with AVX-512, or AVX2, FMA and F16C, where the CPU has them.
fn dot_rows<'a>(rows: impl Iterator<Item = &'a [u16]>, x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(level) = x86::level() {
        let dot: unsafe fn(&[u16], &[f32]) -> f32 = match level {
            x86::Level::Avx512 => x86::dot_half_avx512,
            x86::Level::Avx2 => x86::dot_half_avx2,
        };
        for (o, row) in out.iter_mut().zip(rows) {
            // SAFETY: the CPU has the features of the variant `level` chose.
            *o = unsafe { dot(row, x) };
        }
        return;
    }
    for (o, row) in out.iter_mut().zip(rows) {
        *o = dot_half(row, x);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The widest vector instructions of this CPU that the kernels use.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) enum Level {
        /// AVX-512F (sixteen lanes; it implies FMA and F16C).
        Avx512,
        /// AVX2 with FMA and F16C (eight lanes).
        Avx2,
    }

    /// This CPU's level, detected once; `None` below AVX2.
    pub(super) fn level() -> Option<Level> {
        static LEVEL: std::sync::OnceLock<Option<Level>> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("fma") && has!("f16c") {
                Some(Level::Avx512)
            } else if has!("avx2") && has!("fma") && has!("f16c") {
                Some(Level::Avx2)
            } else {
                None
            }
        })
    }

    /// Runs a portable kernel (its body an `#[inline(always)]` call) compiled for AVX-512 or
    /// for AVX2, the CPU's level; false below AVX2 (nothing run).
    macro_rules! at_level {
        (fn($($arg:ident: $ty:ty),*) $body:block) => {{
            #[target_feature(enable = "avx512f,fma")]
            fn avx512($($arg: $ty),*) $body
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $body
            match level() {
                // SAFETY: the CPU has the features each variant is compiled for (`level`).
                Some(Level::Avx512) => unsafe { avx512($($arg),*) },
                Some(Level::Avx2) => unsafe { avx2($($arg),*) },
                None => return false,
            }
            true
        }};
    }

    /// [`super::gelu_rows`] compiled for the CPU's level; false below AVX2 (nothing done).
    pub(super) fn gelu_rows(x: &mut [f32]) -> bool {
        at_level!(fn(x: &mut [f32]) { super::gelu_rows(x) })
    }

    /// [`super::softmax_rows`] compiled for the CPU's level; false below AVX2 (nothing done).
    pub(super) fn softmax_rows(x: &mut [f32], row: usize, scale: f32) -> bool {
        at_level!(fn(x: &mut [f32], row: usize, scale: f32) { super::softmax_rows(x, row, scale) })
    }

    /// [`super::dot_half`] converting sixteen halves per instruction into two FMA lanes.
    #[target_feature(enable = "avx512f")]
    pub(super) fn dot_half_avx512(w: &[u16], x: &[f32]) -> f32 {
        let n = w.len().min(x.len());
        let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        // SAFETY: every load reads 16 values at `i..i + 16` (or `i + 16..i + 32`), within `n`.
        unsafe {
            while i + 32 <= n {
                let w0 = _mm512_cvtph_ps(_mm256_loadu_si256(w.as_ptr().add(i).cast()));
                let w1 = _mm512_cvtph_ps(_mm256_loadu_si256(w.as_ptr().add(i + 16).cast()));
                acc0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x.as_ptr().add(i)), acc0);
                acc1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x.as_ptr().add(i + 16)), acc1);
                i += 32;
            }
            if i + 16 <= n {
                let w0 = _mm512_cvtph_ps(_mm256_loadu_si256(w.as_ptr().add(i).cast()));
                acc0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x.as_ptr().add(i)), acc0);
                i += 16;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + super::dot_half(&w[i..n], &x[i..n])
    }

    /// [`super::dot_half`] converting eight halves per instruction (F16C) into two FMA lanes.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn dot_half_avx2(w: &[u16], x: &[f32]) -> f32 {
        let n = w.len().min(x.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        // SAFETY: every load reads 8 values at `i..i + 8` (or `i + 8..i + 16`), within `n`.
        unsafe {
            while i + 16 <= n {
                let w0 = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(i).cast()));
                let w1 = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(i + 8).cast()));
                acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x.as_ptr().add(i)), acc0);
                acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x.as_ptr().add(i + 8)), acc1);
                i += 16;
            }
            if i + 8 <= n {
                let w0 = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(i).cast()));
                acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x.as_ptr().add(i)), acc0);
                i += 8;
            }
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds 8 values.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(acc0, acc1)) };
        lanes.iter().sum::<f32>() + super::dot_half(&w[i..n], &x[i..n])
    }
}

/// The dot product of half-precision `w` and `x`, in eight f32 lanes.
#[inline(always)]
fn dot_half(w: &[u16], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (w8, x8) = (w.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 = w8
        .remainder()
        .iter()
        .zip(x8.remainder())
        .map(|(&h, &v)| half_to_f32(h) * v)
        .sum();
    for (w, x) in w8.zip(x8) {
        for ((a, &h), &v) in acc.iter_mut().zip(w).zip(x) {
            *a += half_to_f32(h) * v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn exp_and_erf_match_reference_values() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let want = x.exp();
            assert!(((exp(x) - want) / want).abs() < 5e-7, "exp({x})");
        }
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-1.5, -0.966_105_1),
            (2.0, 0.995_322_3),
            (4.0, 1.0),
        ] {
            assert!((erf(x) - want).abs() < 5e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn gelu_and_softmax_match_candle() {
        let x = Tensor::arange(-4000f32, 4000.0, &Device::Cpu)
            .unwrap()
            .affine(1.0 / 500.0, 0.0)
            .unwrap()
            .reshape((20, 400))
            .unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        assert!(max_diff(&gelu(&x).unwrap(), &x.gelu_erf().unwrap()) < 1e-5);
        let want = candle_nn::ops::softmax_last_dim(&(&x * 0.5).unwrap()).unwrap();
        let got = scaled_softmax(x.copy().unwrap(), 0.5).unwrap();
        assert!(max_diff(&got, &want) < 1e-6);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_vector_level_computes_what_the_portable_kernels_do() {
        let n = 16 * 9 + 11;
        let w: Vec<u16> = (0..n as u16).map(|i| 0x3000 + (i * 37) % 0x1000).collect();
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
        let want = dot_half(&w, &x);
        let values: Vec<f32> = (0..n).map(|i| (i as f32 - 80.0) / 20.0).collect();
        let mut gelu_want = values.clone();
        gelu_rows(&mut gelu_want);
        let mut softmax_want = values.clone();
        softmax_rows(&mut softmax_want, 31, 0.7);
        let level = x86::level();
        // SAFETY: each variant runs only where `level` found its features.
        if level == Some(x86::Level::Avx512) {
            let got = unsafe { x86::dot_half_avx512(&w, &x) };
            assert!((got - want).abs() < 1e-4, "AVX-512: {got} vs {want}");
        }
        if level.is_some() {
            let got = unsafe { x86::dot_half_avx2(&w, &x) };
            assert!((got - want).abs() < 1e-4, "AVX2: {got} vs {want}");
            let mut gelu = values.clone();
            assert!(x86::gelu_rows(&mut gelu));
            let mut softmax = values.clone();
            assert!(x86::softmax_rows(&mut softmax, 31, 0.7));
            for (got, want) in gelu
                .iter()
                .zip(&gelu_want)
                .chain(softmax.iter().zip(&softmax_want))
            {
                assert!((got - want).abs() < 1e-6, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn half_matrix_products_equal_f32_products_of_the_same_values() {
        let w = Tensor::arange(0f32, 70.0 * 13.0, &Device::Cpu)
            .unwrap()
            .affine(0.37, -150.0)
            .unwrap()
            .sin()
            .unwrap()
            .reshape((70, 13))
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let x: Vec<f32> = (0..13).map(|i| (i as f32 - 6.0) / 3.0).collect();
        let want: Vec<f32> = w
            .matmul(
                &Tensor::new(x.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(1)
                    .unwrap(),
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got = HalfMatrix::new(&w).unwrap().mul_vec(&x);
        assert_eq!(got.len(), 70);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        // Subnormal, zero and negative halves convert exactly.
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(half_to_f32(0x8000), -0.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x3c00), 1.0);
    }
}
