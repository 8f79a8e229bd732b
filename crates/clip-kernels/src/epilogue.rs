//! The per-tile finish of [`crate::drive`]: bias, QuickGELU, residual, vectorised.
//!
//! QuickGELU uses a polynomial `exp` (Cephes `expf`, ~1 ulp) instead of libm's scalar call: in
//! the reduced-precision modes the exponentials of the MLP were a fifth of the run time. f32 comes
//! here too where it runs these kernels (AVX-512): that ulp of `exp` is far inside the parity
//! bars (full-size ViT-B/32 stays 4.6e-6 from the goldens); candle's f32 path keeps libm's.

use crate::precision::Isa;

/// What follows the product, applied to each finished tile while it is in cache.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Added to every row (`[n]`).
    pub bias: Option<&'a [f32]>,
    /// QuickGELU `x * sigmoid(1.702 x)` after the bias (exact GELU models apply theirs after).
    pub quick_gelu: bool,
    /// Added last (`[m, n]`, row-major), after the activation.
    pub residual: Option<&'a [f32]>,
}

/// One finished output tile and what to apply to it.
pub(crate) struct Tile<'a> {
    /// Row 0 of the tile; rows at stride `ld`.
    pub c: *mut f32,
    pub ld: usize,
    pub rows: usize,
    pub cols: usize,
    /// The tile's `cols` bias values.
    pub bias: Option<&'a [f32]>,
    pub quick_gelu: bool,
    /// The residual's element at the tile's row 0, column 0; rows at stride `ld`.
    pub residual: Option<&'a [f32]>,
}

/// `c = act(c + bias) + residual` over a tile already in memory, element by element: one call per
/// tile (a call per row of 32 values cost a quarter of a bf16 model's time on AMX). The AVX-512
/// kernels that hold their sums in registers apply the same arithmetic on the way out instead
/// ([`RowStore`]); this pass is for the kernels that store first (AMX bf16 tiles, AVX2,
/// portable).
///
/// # Safety
/// `t.c` must be valid for `rows` rows of `cols` floats at stride `ld`; `t.residual` (if any) must
/// hold `(rows - 1) * ld + cols` values; `isa` one of [`Isa::available`] for the matrix.
pub(super) unsafe fn finish(isa: Isa, t: &Tile) {
    if t.bias.is_none() && !t.quick_gelu && t.residual.is_none() {
        return;
    }
    // SAFETY: `PackedMatrix::pack` admits only an `isa` of `Isa::available`, and every precision's
    // `Avx512` and `Amx` levels include avx512f.
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Amx => avx512::finish(t),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => finish_avx2(t),
        _ => finish_rows(t),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn finish_avx2(t: &Tile) {
    finish_rows(t)
}

#[inline(always)]
unsafe fn finish_rows(t: &Tile) {
    for r in 0..t.rows {
        let o = std::slice::from_raw_parts_mut(t.c.add(r * t.ld), t.cols);
        let res = t.residual.map(|res| &res[r * t.ld..][..t.cols]);
        finish_body(o, t.bias, t.quick_gelu, res);
    }
}

#[inline(always)]
fn finish_body(o: &mut [f32], bias: Option<&[f32]>, quick_gelu: bool, residual: Option<&[f32]>) {
    if let Some(b) = bias {
        for (o, &b) in o.iter_mut().zip(b) {
            *o += b;
        }
    }
    if quick_gelu {
        for o in o.iter_mut() {
            *o = quick_gelu_fast(*o);
        }
    }
    if let Some(r) = residual {
        for (o, &r) in o.iter_mut().zip(r) {
            *o += r;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use avx512::{exp, RowStore};

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::simd::lane_masks;
    use super::Tile;

    /// The same arithmetic as [`super::finish_body`] in explicit 16-lane vectors, two a row
    /// (columns `0..16` and `16..32` of a tile), with the tile's bias held in registers: the
    /// AVX-512 kernels apply it to their sums as they store them, [`finish`] to a tile in memory.
    pub(crate) struct RowStore<'a> {
        t: &'a Tile<'a>,
        masks: [u16; 2],
        bias: Option<[__m512; 2]>,
    }

    impl<'a> RowStore<'a> {
        /// # Safety
        /// As [`super::finish`]: `t` describes `rows x cols` (`cols <= 32`) valid floats.
        #[inline(always)]
        pub(crate) unsafe fn new(t: &'a Tile<'a>) -> Self {
            debug_assert!(t.cols <= 32, "a tile is at most 32 columns");
            let (m0, m1) = lane_masks(t.cols);
            let bias = t.bias.map(|b| {
                [
                    _mm512_maskz_loadu_ps(m0, b.as_ptr()),
                    _mm512_maskz_loadu_ps(m1, b.as_ptr().wrapping_add(16)),
                ]
            });
            Self {
                t,
                masks: [m0, m1],
                bias,
            }
        }

        /// Stores row `r` (`< rows`) of the tile from its sums `v`: `act(v + bias) + residual`,
        /// the tile's columns only.
        #[inline(always)]
        pub(crate) unsafe fn store(&self, r: usize, v: [__m512; 2]) {
            let t = self.t;
            let row = t.c.add(r * t.ld);
            for h in 0..2 {
                let mask = self.masks[h];
                if mask == 0 {
                    continue;
                }
                let mut x = v[h];
                if let Some(b) = &self.bias {
                    x = _mm512_add_ps(x, b[h]);
                }
                if t.quick_gelu {
                    x = quick_gelu(x);
                }
                if let Some(res) = t.residual {
                    let p = res.as_ptr().add(r * t.ld + 16 * h);
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, p));
                }
                _mm512_mask_storeu_ps(row.add(16 * h), mask, x);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn finish(t: &Tile) {
        let out = RowStore::new(t);
        let [m0, m1] = out.masks;
        for r in 0..t.rows {
            let row = t.c.add(r * t.ld);
            let v = [
                _mm512_maskz_loadu_ps(m0, row),
                _mm512_maskz_loadu_ps(m1, row.wrapping_add(16)),
            ];
            out.store(r, v);
        }
    }

    /// [`super::quick_gelu_fast`], lane by lane.
    #[inline(always)]
    unsafe fn quick_gelu(x: __m512) -> __m512 {
        let e = exp(_mm512_mul_ps(x, _mm512_set1_ps(-1.702)));
        _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e))
    }

    /// [`super::exp_fast`], lane by lane (also the attention's softmax).
    #[inline(always)]
    pub(crate) unsafe fn exp(x: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        let x = _mm512_min_ps(_mm512_max_ps(x, c(-87.0)), c(88.0));
        let n = _mm512_fmadd_ps(x, c(std::f32::consts::LOG2_E), c(0.5));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(n);
        let r = _mm512_sub_ps(x, _mm512_mul_ps(n, c(0.693_359_4)));
        let r = _mm512_sub_ps(r, _mm512_mul_ps(n, c(-2.121_944_4e-4)));
        let mut p = c(1.987_569_1e-4);
        p = _mm512_fmadd_ps(p, r, c(1.398_199_9e-3));
        p = _mm512_fmadd_ps(p, r, c(8.333_452e-3));
        p = _mm512_fmadd_ps(p, r, c(4.166_579_6e-2));
        p = _mm512_fmadd_ps(p, r, c(1.666_666_5e-1));
        // Cephes's 5.0000001e-1, which is 0.5 in f32.
        p = _mm512_fmadd_ps(p, r, c(0.5));
        let e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), c(1.0));
        let bits = _mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_cvttps_epi32(n),
            _mm512_set1_epi32(127),
        ));
        _mm512_mul_ps(e, _mm512_castsi512_ps(bits))
    }
}

/// `x * sigmoid(1.702 x)`.
#[inline(always)]
fn quick_gelu_fast(x: f32) -> f32 {
    x / (1.0 + exp_fast(-1.702 * x))
}

/// `exp(x)`, branch-free so that loops of it vectorise: `x = n ln2 + r`, `|r| <= ln2 / 2`,
/// Cephes' degree-6 polynomial for `exp(r)`, `2^n` through the exponent bits. Inputs are clamped
/// to the range where `2^n` is a normal float (the result saturates near 1.7e38 and 1.2e-38).
#[inline(always)]
fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes's 5.0000001e-1, which is 0.5 in f32
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_fast_is_within_two_ulp_of_libm() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (a, b) = (super::exp_fast(x), x.exp());
            assert!(((a - b) / b).abs() < 2.5e-7, "exp({x}): {a} vs {b}");
            x += 0.01;
        }
        assert!(super::quick_gelu_fast(-200.0).abs() < 1e-30);
        assert_eq!(super::quick_gelu_fast(200.0), 200.0);
    }
}
