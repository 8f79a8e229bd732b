//! f32 arithmetic (FMA) over f32 or half-precision weights.
//!
//! f16 weights are widened (`vcvtph2ps`) as they are loaded, so the model holds half the bytes
//! while the products stay f32 (CPUs without native f16 arithmetic, which is most of them, gain
//! memory and bandwidth, not FLOPs). f32 weights are the f32 precision's kernels on AVX-512
//! machines, where they beat candle's GEMM (its blocking is tuned for large square products;
//! a model's layers are tall and thin, and small at batch 1).
//!
//! Weights: `[n / NR][k][NR]` lanes. Activations: `[panel][k][MR]` f32.

use half::f16;
use rayon::prelude::*;

use crate::aligned::Aligned;
use crate::epilogue;
use crate::layout::{scatter_row, TileFormat, MR, NR};
use crate::precision::Isa;

/// A weight element: f32, or f16 widened as loaded.
pub(super) trait Lane: Copy + bytemuck::Zeroable + Send + Sync + 'static {
    /// Stored as IEEE half (the kernels widen 8 or 16 lanes with `vcvtph2ps`).
    const HALF: bool;
    /// The weight as stored (rounded to nearest for f16).
    fn from_f32(v: f32) -> Self;
    /// The stored weight widened back (exact).
    fn to_f32(self) -> f32;
}

impl Lane for f32 {
    const HALF: bool = false;
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl Lane for f16 {
    const HALF: bool = true;
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

/// A `[k, n]` matrix of f32 or f16 weights in `[n / NR][k][NR]` panels: each micro-kernel step
/// reads one `k`'s `NR` columns as two contiguous vectors.
pub(crate) struct FmaMatrix<W> {
    k: usize,
    data: Aligned<W>,
}

impl<W: Lane> FmaMatrix<W> {
    /// Packs `w(k, n)` (see [`crate::PackedMatrix::pack`]), the last panel's missing columns
    /// zero.
    pub fn pack(k: usize, n: usize, w: &(impl Fn(usize, usize) -> f32 + Sync)) -> Self {
        let mut data = Aligned::zeroed(n.div_ceil(NR) * k * NR);
        data.par_chunks_mut((k * NR).max(1))
            .enumerate()
            .for_each(|(nb, panel)| {
                // Blocks of 64 rows, column by column within a block: a checkpoint's
                // `[out, in]` matrix is read along its rows, and the 8 KB of the panel being
                // written stays in L1 (row by row, the 32 interleaved reads, or whole columns,
                // whose strided writes left L1 for every value, were a large share of f32
                // start-up).
                const ROWS: usize = 64;
                for (b, block) in panel.chunks_mut(ROWS * NR).enumerate() {
                    for (l, j) in (nb * NR..n).take(NR).enumerate() {
                        for (i, lanes) in block.chunks_exact_mut(NR).enumerate() {
                            lanes[l] = W::from_f32(w(b * ROWS + i, j));
                        }
                    }
                }
            });
        Self { k, data }
    }

    /// Bytes of the packed weights.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<W>()
    }
}

impl<W: Lane> TileFormat for FmaMatrix<W> {
    type Panels = Vec<f32>;

    fn a_row_bytes(&self, _isa: Isa) -> usize {
        self.k * 4
    }

    fn pack_a(&self, isa: Isa, x: &[f32], rows: usize) -> Vec<f32> {
        let k = self.k;
        let mut a = vec![0f32; rows.div_ceil(MR) * k * MR];
        for r in 0..rows {
            scatter_row(isa, &mut a, &x[r * k..][..k], r);
        }
        a
    }

    /// # Safety
    /// As [`TileFormat::tile`].
    unsafe fn tile(&self, isa: Isa, a: &Vec<f32>, panel: usize, nb: usize, out: &epilogue::Tile) {
        let k = self.k;
        let a = &a[panel * k * MR..][..k * MR];
        let b = &self.data[nb * k * NR..][..k * NR];
        let (c, ldc, rows, cols) = (out.c, out.ld, out.rows, out.cols);
        match isa {
            // SAFETY: `isa` is available (the caller's contract): `Avx512` means avx512f. `a`
            // and `b` are whole panels (sliced above); `out` is the caller's contract.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => return unsafe { avx512::tile(a, b, k, out) },
            // SAFETY: `Avx2` is available only with avx2, fma and f16c; slices and `out` as
            // above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { tile_avx2(a, b, k, c, ldc, rows, cols) },
            // SAFETY: `out` is the caller's contract.
            _ => unsafe { tile_portable(a, b, k, c, ldc, rows, cols) },
        }
        // SAFETY: the tile was written above; `isa` and `out` are the caller's contract.
        unsafe { epilogue::finish(isa, out) };
    }
}

/// The tile in plain Rust (auto-vectorised over the `NR` lanes).
///
/// # Safety
/// `c` must be valid for writes of `rows <= MR` rows of `cols <= NR` floats at stride `ldc`.
unsafe fn tile_portable<W: Lane>(
    a: &[f32],
    b: &[W],
    k: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    let mut acc = [[0f32; NR]; MR];
    for p in 0..k {
        let bv: [f32; NR] = std::array::from_fn(|j| b[p * NR + j].to_f32());
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = a[p * MR + r];
            for j in 0..NR {
                acc[j] += av * bv[j];
            }
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the tile, `cols <= NR` floats (the caller's contract), from
        // a local accumulator row of `NR`.
        unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), c.add(r * ldc), cols) };
    }
}

/// The tile in AVX2 passes ([`crate::simd::avx2_passes`]).
///
/// # Safety
/// The CPU must have avx2, fma and f16c; `a` and `b` must be whole panels (`k * MR`, `k * NR`);
/// `c` as for [`tile_portable`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_avx2<W: Lane>(
    a: &[f32],
    b: &[W],
    k: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    // Passes of up to 6 rows x 16 columns (12 accumulators, 2 weight vectors, 1 broadcast).
    crate::simd::avx2_passes((rows, cols), (6, 16), |r0, c0, r, n| {
        // SAFETY: the passes cover the tile, `r0 + r <= rows` and `c0 + n <= cols` (`n <= 16`),
        // so `out` and its `r` rows of `n` floats lie inside it; each pass's `R >= r`; the
        // features, panels and tile are the caller's contract.
        unsafe {
            let out = c.add(r0 * ldc + c0);
            match r {
                6 => avx2::rows::<W, 6>(a, b, k, r0, c0, out, ldc, r, n),
                5 | 4 => avx2::rows::<W, 5>(a, b, k, r0, c0, out, ldc, r, n),
                _ => avx2::rows::<W, 3>(a, b, k, r0, c0, out, ldc, r, n),
            }
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Lane;
    use crate::layout::{MR, NR};

    /// Rows `r0..r0 + rows` (`rows <= R`) x columns `c0..c0 + n` (`n <= 16`) of the tile.
    ///
    /// # Safety
    /// The CPU must have avx, fma and f16c; `a` and `b` whole panels (`k * MR`, `k * NR`),
    /// `r0 < MR`, `c0 + 16 <= NR`; `out` valid for writes of `rows` rows of `n` floats at
    /// stride `ldc`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn rows<W: Lane, const R: usize>(
        a: &[f32],
        b: &[W],
        k: usize,
        r0: usize,
        c0: usize,
        out: *mut f32,
        ldc: usize,
        rows: usize,
        n: usize,
    ) {
        // SAFETY: the caller guarantees avx, fma and f16c. `ap` and `bp` point at row `r0 < MR`
        // and column `c0` of the panels. Step `p < k` reads weights `p * NR + c0..+ 16 <=
        // (p + 1) * NR` (16 f32, or 16 f16 as two 8-lane halves) of `b`'s `k * NR`, and the
        // activation `p * MR + r0 + min(i, MR - 1 - r0) < (p + 1) * MR` of `a`'s `k * MR`; the
        // stores are the caller's `rows x n` at `out`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            let (ap, bp) = (a.as_ptr().add(r0), b.as_ptr().add(c0));
            for p in 0..k {
                let w = bp.add(p * NR);
                let (b0, b1) = if W::HALF {
                    (
                        _mm256_cvtph_ps(_mm_loadu_si128(w as *const __m128i)),
                        _mm256_cvtph_ps(_mm_loadu_si128(w.add(8) as *const __m128i)),
                    )
                } else {
                    (
                        _mm256_loadu_ps(w as *const f32),
                        _mm256_loadu_ps(w.add(8) as *const f32),
                    )
                };
                for (i, acc) in acc.iter_mut().enumerate() {
                    // Rows past `rows` read the panel's zero padding (or the next rows): not
                    // stored.
                    let x = _mm256_set1_ps(*ap.add(p * MR + i.min(MR - 1 - r0)));
                    acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
                }
            }
            crate::simd::store_rows(&acc, out, ldc, rows, n);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::Lane;
    use crate::epilogue::{self, RowStore};
    use crate::layout::{MR, NR};

    /// The tile, finished by `out`'s epilogue as its rows leave the registers.
    ///
    /// # Safety
    /// The CPU must have avx512f; `a` and `b` whole panels (`k * MR`, `k * NR`); `out` as for
    /// [`crate::epilogue::finish`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile<W: Lane>(a: &[f32], b: &[W], k: usize, out: &epilogue::Tile) {
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let (mut ap, mut bp) = (a.as_ptr(), b.as_ptr());
        for _ in 0..k {
            // SAFETY: step `p < k` (`ap`, `bp` advanced by `p * MR`, `p * NR`) reads the `NR`
            // weights of its row of `b` (`k * NR`) as two 16-lane vectors and the `MR`
            // activations of its row of `a` (`k * MR`); the pointers advance to at most one
            // past the end.
            unsafe {
                let (b0, b1) = if W::HALF {
                    (
                        _mm512_cvtph_ps(_mm256_loadu_si256(bp as *const _)),
                        _mm512_cvtph_ps(_mm256_loadu_si256(bp.add(16) as *const _)),
                    )
                } else {
                    (
                        _mm512_loadu_ps(bp as *const f32),
                        _mm512_loadu_ps(bp.add(16) as *const f32),
                    )
                };
                for r in 0..MR {
                    let av = _mm512_set1_ps(*ap.add(r));
                    acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
                }
                ap = ap.add(MR);
                bp = bp.add(NR);
            }
        }
        // SAFETY: avx512f is enabled here; `out` is the caller's contract (`rows <= MR`).
        let store = unsafe { RowStore::new(out) };
        for r in 0..out.rows {
            // SAFETY: as above, row `r < rows`.
            unsafe { store.store(r, [acc0[r], acc1[r]]) };
        }
    }
}
