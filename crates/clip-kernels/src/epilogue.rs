//! The per-tile finish of [`crate::drive`]: bias, QuickGELU, residual, vectorised.
//!
//! QuickGELU uses a polynomial `exp` (Cephes `expf`, ~1 ulp) instead of libm's scalar call: in
//! the reduced-precision modes the exponentials of the MLP were a large share of the run time.
//! f32 comes here too where it runs these kernels (AVX-512): that ulp of `exp` is far inside the
//! parity bars; candle's f32 path keeps libm's.

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
    /// Row stride of `c` and `residual`: the width `n` of the whole output.
    pub ld: usize,
    /// Rows of the tile (at most the kernel's tile rows; fewer in the last panel).
    pub rows: usize,
    /// Columns of the tile (at most `NR`; fewer in the last column block).
    pub cols: usize,
    /// The tile's `cols` bias values.
    pub bias: Option<&'a [f32]>,
    /// Whether QuickGELU follows the bias.
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
/// `t.c` must be valid for reads and writes of `rows` rows of `cols` initialised floats at stride
/// `ld`, which nothing else accesses during the call; `t.residual` (if any) must hold
/// `(rows - 1) * ld + cols` values; `isa` must be one of [`Isa::available`] for the matrix.
pub(super) unsafe fn finish(isa: Isa, t: &Tile) {
    if t.bias.is_none() && !t.quick_gelu && t.residual.is_none() {
        return;
    }
    match isa {
        // SAFETY: `isa` is one of `Isa::available` (the caller's contract, which
        // `PackedMatrix::pack` enforces), and every precision's `Avx512` and `Amx` levels include
        // avx512f; the tile's memory is the caller's contract too.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Amx => unsafe { avx512::finish(t) },
        // SAFETY: `Avx2` is only available where avx2 and fma are; memory as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { finish_avx2(t) },
        // SAFETY: the tile's memory is the caller's contract.
        _ => unsafe { finish_rows(t) },
    }
}

/// [`finish_rows`] compiled for AVX2, so that its loops vectorise 8 lanes wide.
///
/// # Safety
/// The CPU must have avx2 and fma; `t` as for [`finish`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn finish_avx2(t: &Tile) {
    // SAFETY: `t` is the caller's contract.
    unsafe { finish_rows(t) }
}

/// [`finish_body`] over each row of the tile in memory.
///
/// # Safety
/// `t` as for [`finish`].
#[inline(always)]
unsafe fn finish_rows(t: &Tile) {
    for r in 0..t.rows {
        // SAFETY: row `r < rows` of the tile, `cols` initialised floats at `c + r * ld`, valid
        // and not otherwise accessed during the call (the caller's contract).
        let o = unsafe { std::slice::from_raw_parts_mut(t.c.add(r * t.ld), t.cols) };
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

    use super::Tile;
    use crate::simd::lane_masks;

    /// The same arithmetic as [`super::finish_body`] in explicit 16-lane vectors, two a row
    /// (columns `0..16` and `16..32` of a tile), with the tile's bias held in registers: the
    /// AVX-512 kernels apply it to their sums as they store them, [`finish`] to a tile in memory.
    pub(crate) struct RowStore<'a> {
        t: &'a Tile<'a>,
        masks: [u16; 2],
        bias: Option<[__m512; 2]>,
    }

    impl<'a> RowStore<'a> {
        /// The tile's column masks and bias, loaded once for all its rows.
        ///
        /// # Safety
        /// The CPU must have avx512f; `t` as for [`super::finish`], with `cols <= 32` and a bias
        /// (if any) of `cols` values.
        #[inline(always)]
        pub(crate) unsafe fn new(t: &'a Tile<'a>) -> Self {
            debug_assert!(t.cols <= 32, "a tile is at most 32 columns");
            let (m0, m1) = lane_masks(t.cols);
            // SAFETY: the caller guarantees avx512f. The masks cover the bias's `cols` values
            // only (lanes `0..16`, then `16..cols`); masked-off lanes are neither read nor fault,
            // so the second address may lie past the slice (`wrapping_add`).
            let bias = t.bias.map(|b| unsafe {
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
        ///
        /// # Safety
        /// The CPU must have avx512f; `r < rows` of the tile given to [`RowStore::new`], whose
        /// memory contract holds until this returns.
        #[inline(always)]
        pub(crate) unsafe fn store(&self, r: usize, v: [__m512; 2]) {
            let t = self.t;
            // SAFETY: row `r < rows` of the tile (the caller's contract).
            let row = unsafe { t.c.add(r * t.ld) };
            for h in 0..2 {
                let mask = self.masks[h];
                if mask == 0 {
                    continue;
                }
                // SAFETY: the caller guarantees avx512f. Half `h` with a non-zero mask has
                // columns `16h..cols` of row `r < rows`: the offsets stay inside the tile and the
                // residual (which holds `(rows - 1) * ld + cols` values), and the masked load and
                // store touch those columns only.
                unsafe {
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
    }

    /// [`super::finish`] for a tile in memory, through [`RowStore`].
    ///
    /// # Safety
    /// The CPU must have avx512f; `t` as for [`super::finish`], with `cols <= 32`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn finish(t: &Tile) {
        // SAFETY: avx512f is enabled here; `t` is the caller's contract.
        let out = unsafe { RowStore::new(t) };
        let [m0, m1] = out.masks;
        for r in 0..t.rows {
            // SAFETY: row `r < rows` lies inside the tile (the caller's contract); the masks
            // read its `cols` floats only, so the second address may lie past them
            // (`wrapping_add`). `store` gets a row of the tile given to `new`.
            unsafe {
                let row = t.c.add(r * t.ld);
                let v = [
                    _mm512_maskz_loadu_ps(m0, row),
                    _mm512_maskz_loadu_ps(m1, row.wrapping_add(16)),
                ];
                out.store(r, v);
            }
        }
    }

    /// [`super::quick_gelu_fast`], lane by lane.
    ///
    /// # Safety
    /// The CPU must have avx512f.
    #[inline(always)]
    unsafe fn quick_gelu(x: __m512) -> __m512 {
        // SAFETY: register-only avx512f arithmetic, on a CPU that has it (the caller's
        // contract).
        unsafe {
            let e = exp(_mm512_mul_ps(x, _mm512_set1_ps(-1.702)));
            _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e))
        }
    }

    /// [`super::exp_fast`], lane by lane (also the attention's softmax).
    ///
    /// # Safety
    /// The CPU must have avx512f.
    #[inline(always)]
    pub(crate) unsafe fn exp(x: __m512) -> __m512 {
        // SAFETY: register-only avx512f arithmetic, on a CPU that has it (the caller's
        // contract).
        unsafe {
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
