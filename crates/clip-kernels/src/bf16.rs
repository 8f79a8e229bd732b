//! bf16 weights and activations, f32 accumulation: `vdpbf16ps` multiplies the two bf16 halves of
//! each 32-bit lane and adds both products to an f32 lane, so rows pair consecutive `k`.
//!
//! Weights: `[n / NR][k / 2][NR]` u32 (low half `W[2p, j]`, high half `W[2p + 1, j]`).
//! Activations: `[panel][k / 2][MR]` u32, the same pairing; one u32 is broadcast to all lanes.
//! AVX2, which has no bf16 arithmetic, gets each pair widened to two f32 when packed (`[panel][k
//! / 2][MR][2]`), so that its kernel broadcasts both straight from memory.
//! AMX (`tdpbf16ps`) reads the same weights and row-major activations, see [`crate::amx`].

use rayon::prelude::*;

use crate::aligned::Aligned;
use crate::layout::{a_words, padded_groups, scatter_row, tile_rows, TileFormat, MR, NR};
use crate::precision::Isa;
use crate::{amx, epilogue};

/// A `[k, n]` matrix of bf16 weights, consecutive `k` paired in each u32, in `[n / NR][kp][NR]`
/// panels (the layout `vdpbf16ps` and AMX's `tdpbf16ps` read).
pub(crate) struct Bf16Matrix {
    k: usize,
    /// `k` in pairs (odd `k` padded with a zero; AMX: padded to whole tiles).
    kp: usize,
    data: Aligned<u32>,
}

/// Two values as one bf16 pair, `lo` in the low half (the lower `k`, as `vdpbf16ps` pairs them).
fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) | to_bf16(hi) << 16
}

/// f32 -> bf16 bits, round to nearest even (as `half::bf16::from_f32` and `vcvtneps2bf16`), inline
/// and branch-light: packing a model's weights converts every one of them.
#[inline(always)]
fn to_bf16(x: f32) -> u32 {
    let b = x.to_bits();
    if x.is_nan() {
        (b >> 16) | 0x40
    } else {
        (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    }
}

impl Bf16Matrix {
    /// Packs `w(k, n)` (see [`crate::PackedMatrix::pack`]) for `isa`'s kernels (AMX pads `k`
    /// to whole tiles), padding with zero weights.
    pub fn pack(k: usize, n: usize, isa: Isa, w: &(impl Fn(usize, usize) -> f32 + Sync)) -> Self {
        let kp = padded_groups(k.div_ceil(2), isa);
        let mut data = Aligned::zeroed(n.div_ceil(NR) * kp * NR);
        let at = |p: usize, j: usize| if p < k && j < n { w(p, j) } else { 0.0 };
        data.par_chunks_mut((kp * NR).max(1))
            .enumerate()
            .for_each(|(nb, panel)| {
                for (p, lanes) in panel.chunks_mut(NR).enumerate() {
                    for (l, v) in lanes.iter_mut().enumerate() {
                        let j = nb * NR + l;
                        *v = pair(at(2 * p, j), at(2 * p + 1, j));
                    }
                }
            });
        Self { k, kp, data }
    }

    /// Bytes of the packed weights.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

impl TileFormat for Bf16Matrix {
    type Panels = Aligned<u32>;

    fn a_row_bytes(&self, isa: Isa) -> usize {
        self.kp * 4 * a_words(isa)
    }

    fn pack_a(&self, isa: Isa, x: &[f32], rows: usize) -> Aligned<u32> {
        let (k, kp, mr) = (self.k, self.kp, tile_rows(isa));
        let mut a = Aligned::zeroed(rows.div_ceil(mr) * kp * mr * a_words(isa));
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 && kp > 0 {
            // SAFETY: `Avx512` is only chosen where avx512f and avx512bf16 are present (see
            // `Isa::available`; the avx512bw and avx512vl this also enables are assumed from
            // them); `a` holds whole panels of `kp * MR` pairs for `rows` rows of `k` values of
            // `x`.
            unsafe { avx512::pack_panels(x, k, kp, rows, &mut a) };
            return a;
        }
        // One row as bf16 pairs, then strided into its panel (or its AMX tiles).
        let mut pairs = vec![0u32; kp];
        let mut wide = vec![[0u32; 2]; if isa == Isa::Avx2 { kp } else { 0 }];
        for r in 0..rows {
            let row = &x[r * k..][..k];
            match isa {
                // SAFETY: `Avx512` and `Amx` are only chosen where avx512f and avx512bf16 are
                // present (bw and vl assumed, as above); `pairs` holds `kp >= k / 2` pairs.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Amx => unsafe { avx512::to_pairs(row, &mut pairs) },
                _ => {
                    for (p, v) in pairs.iter_mut().take(k.div_ceil(2)).enumerate() {
                        let hi = if 2 * p + 1 < k { row[2 * p + 1] } else { 0.0 };
                        *v = pair(row[2 * p], hi);
                    }
                }
            }
            if isa == Isa::Avx2 {
                // Each pair as the two f32 its bf16 halves widen to (exactly).
                for (w, &b) in wide.iter_mut().zip(&pairs) {
                    *w = [b << 16, b & 0xFFFF_0000];
                }
                scatter_row(isa, bytemuck::cast_slice_mut(&mut a), &wide, r);
                continue;
            }
            scatter_row(isa, &mut a, &pairs, r);
        }
        a
    }

    /// # Safety
    /// As [`TileFormat::tile`].
    unsafe fn tile(
        &self,
        isa: Isa,
        a: &Aligned<u32>,
        panel: usize,
        nb: usize,
        out: &epilogue::Tile,
    ) {
        let (kp, mr) = (self.kp, tile_rows(isa));
        let (c, ldc, rows, cols) = (out.c, out.ld, out.rows, out.cols);
        let words = a_words(isa);
        let a = &a[panel * kp * mr * words..][..kp * mr * words];
        let b = &self.data[nb * kp * NR..][..kp * NR];
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => {
                let product = amx::Product::Bf16;
                if rows == amx::TILE && cols == NR {
                    // SAFETY: `Amx` is available (the caller's contract) only where AMX-BF16 is
                    // and the kernel granted the tile state; `kp` is padded to whole tiles; `a`
                    // is one whole panel of 32 rows, `b` `kp` groups of `NR`, and a full tile's
                    // 32 x 32 floats at stride `ldc` are the caller's `out`.
                    unsafe { amx::tile(product, a.as_ptr(), b.as_ptr(), kp, c as *mut u32, ldc) };
                } else {
                    let mut t = amx::Sums([0f32; amx::TILE * NR]);
                    // SAFETY: as above, into a local 32 x 32 tile of sums (stride `NR`).
                    unsafe {
                        amx::tile(
                            product,
                            a.as_ptr(),
                            b.as_ptr(),
                            kp,
                            t.0.as_mut_ptr() as *mut u32,
                            NR,
                        )
                    };
                    for (r, row) in t.0.chunks_exact(NR).take(rows).enumerate() {
                        // SAFETY: row `r < rows` of the tile, `cols <= NR` floats (the caller's
                        // contract), from the local sums.
                        unsafe {
                            std::ptr::copy_nonoverlapping(row.as_ptr(), c.add(r * ldc), cols)
                        };
                    }
                }
            }
            // SAFETY: `Avx512` is available only with avx512f and avx512bf16; `a` and `b` are
            // whole panels (sliced above); `out` is the caller's contract.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => return unsafe { avx512::tile(a, b, kp, out) },
            // SAFETY: `Avx2` is available only with avx2 and fma; `a` holds the panel's widened
            // pairs (`kp * MR * 2` words); `b` and `out` as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { tile_avx2(a, b, kp, c, ldc, rows, cols) },
            // SAFETY: `out` is the caller's contract.
            _ => unsafe { tile_portable(a, b, kp, c, ldc, rows, cols) },
        }
        // SAFETY: the tile was written above; `isa` and `out` are the caller's contract.
        unsafe { epilogue::finish(isa, out) };
    }
}

#[inline(always)]
fn widen(h: u32) -> f32 {
    f32::from_bits(h << 16)
}

/// The same sums in plain f32 arithmetic (auto-vectorised over the `NR` lanes).
///
/// # Safety
/// `c` must be valid for writes of `rows <= MR` rows of `cols <= NR` floats at stride `ldc`.
unsafe fn tile_portable(
    a: &[u32],
    b: &[u32],
    kp: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    let mut acc = [[0f32; NR]; MR];
    for p in 0..kp {
        let bl: [f32; NR] = std::array::from_fn(|j| widen(b[p * NR + j] & 0xFFFF));
        let bh: [f32; NR] = std::array::from_fn(|j| widen(b[p * NR + j] >> 16));
        for (r, acc) in acc.iter_mut().enumerate() {
            let v = a[p * MR + r];
            let (lo, hi) = (widen(v & 0xFFFF), widen(v >> 16));
            for j in 0..NR {
                acc[j] += lo * bl[j] + hi * bh[j];
            }
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the tile, `cols <= NR` floats (the caller's contract), from
        // a local accumulator row of `NR`.
        unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), c.add(r * ldc), cols) };
    }
}

/// The tile in AVX2 passes ([`crate::simd::avx2_passes`]) over pairs widened to f32.
///
/// # Safety
/// The CPU must have avx2 and fma; `a` the panel's widened pairs (`kp * MR * 2` words), `b` a
/// whole panel (`kp * NR`); `c` as for [`tile_portable`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(
    a: &[u32],
    b: &[u32],
    kp: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    // Passes of up to 5 rows x 16 columns (10 accumulators, 4 widened weight vectors: low and
    // high halves of the pairs, 2 broadcasts).
    crate::simd::avx2_passes((rows, cols), (5, 16), |r0, c0, r, n| {
        // SAFETY: the passes cover the tile, `r0 + r <= rows` (`r <= 5`) and `c0 + n <= cols`
        // (`n <= 16`), so the pass's output lies inside it; features, panels and tile are the
        // caller's contract.
        unsafe { avx2::bf16_rows::<5>(a, b, kp, r0, c0, c.add(r0 * ldc + c0), ldc, r, n) }
    });
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use crate::layout::{MR, NR};

    /// Rows `r0..r0 + rows` (`rows <= R`) x columns `c0..c0 + n` (`n <= 16`) of the tile: weight
    /// pairs widened to f32 by shifting (low half) and masking (high half) each 32-bit pair,
    /// activation pairs packed widened (`[kp][MR][2]` f32), broadcast from memory.
    ///
    /// # Safety
    /// The CPU must have avx2 and fma; `a` the panel's widened pairs (`kp * MR * 2` words), `b`
    /// a whole panel (`kp * NR`), `c0 + 16 <= NR`; `out` valid for writes of `rows` rows of `n`
    /// floats at stride `ldc`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn bf16_rows<const R: usize>(
        a: &[u32],
        b: &[u32],
        kp: usize,
        r0: usize,
        c0: usize,
        out: *mut f32,
        ldc: usize,
        rows: usize,
        n: usize,
    ) {
        // SAFETY: the caller guarantees avx2 and fma. Step `p < kp` reads weights
        // `p * NR + c0..+ 16 <= (p + 1) * NR` of `b` and the widened pair (two f32, 4-byte
        // aligned in the u32 panel) of row `min(r0 + i, MR - 1) < MR` of step `p` of `a`'s
        // `kp * MR * 2` words; the stores are the caller's `rows x n` at `out`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            let high = _mm256_set1_epi32(0xFFFF_0000u32 as i32);
            let (ap, bp) = (a.as_ptr() as *const f32, b.as_ptr().add(c0));
            for p in 0..kp {
                let w = bp.add(p * NR);
                let v0 = _mm256_loadu_si256(w as *const __m256i);
                let v1 = _mm256_loadu_si256(w.add(8) as *const __m256i);
                let lo0 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v0));
                let lo1 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v1));
                let hi0 = _mm256_castsi256_ps(_mm256_and_si256(v0, high));
                let hi1 = _mm256_castsi256_ps(_mm256_and_si256(v1, high));
                for (i, acc) in acc.iter_mut().enumerate() {
                    // Rows past `rows` read the panel's padding (or the next rows): not stored.
                    let x = ap.add(2 * (p * MR + (r0 + i).min(MR - 1)));
                    let (xl, xh) = (_mm256_broadcast_ss(&*x), _mm256_broadcast_ss(&*x.add(1)));
                    acc[0] = _mm256_fmadd_ps(xh, hi0, _mm256_fmadd_ps(xl, lo0, acc[0]));
                    acc[1] = _mm256_fmadd_ps(xh, hi1, _mm256_fmadd_ps(xl, lo1, acc[1]));
                }
            }
            crate::simd::store_rows(&acc, out, ldc, rows, n);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::epilogue::{self, RowStore};
    use crate::layout::{MR, NR};
    use crate::simd::{lanes, load16};
    use crate::transpose::write_panel;

    /// `rows` rows of `x` (`[rows, k]`) rounded to bf16 pairs (as [`to_pairs`]) into `[panel]
    /// [kp][MR]` panels, 16 rows x 16 pairs at a time through registers.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw, avx512vl and avx512bf16. (Every access is
    /// bounds-checked or masked to its slice: `k`, `kp` and `rows` must agree with `x` and `a`
    /// for the right numbers only.)
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) unsafe fn pack_panels(x: &[f32], k: usize, kp: usize, rows: usize, a: &mut [u32]) {
        for (p, panel) in a.chunks_exact_mut(kp * MR).enumerate() {
            let r0 = p * MR;
            // SAFETY: the features are the caller's contract (avx512f for `write_panel` and
            // `load16`, whose masked loads stay inside `row`); `panel` holds `kp * MR` elements
            // (`chunks_exact_mut`); the transmute reinterprets 512 bits as 512 bits.
            unsafe {
                write_panel(panel, kp, (rows - r0).min(MR), |r, c| {
                    let row = &x[(r0 + r) * k..][..k];
                    let (lo, hi) = (load16(row, 32 * c), load16(row, 32 * c + 16));
                    // Lanes 0..16 from `lo`, 16..32 from `hi`: pair `p` holds `row[2p]` low.
                    std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo))
                })
            };
        }
    }

    /// `row` rounded to bf16 (nearest even), as `(row[2p], row[2p + 1])` pairs; an odd tail is
    /// paired with zero.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw, avx512vl and avx512bf16; `pairs` must hold
    /// `row.len().div_ceil(2)` pairs.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) unsafe fn to_pairs(row: &[f32], pairs: &mut [u32]) {
        let out = pairs.as_mut_ptr() as *mut u16;
        let mut i = 0;
        while i + 16 <= row.len() {
            // SAFETY: `i + 16 <= row.len()`: 16 floats read, 16 halves written at half `i` of
            // `pairs`, which holds `2 * div_ceil(len, 2) >= len` halves; the transmute
            // reinterprets 256 bits as 256 bits.
            unsafe {
                let h = _mm512_cvtneps_pbh(_mm512_loadu_ps(row.as_ptr().add(i)));
                _mm256_storeu_si256(
                    out.add(i) as *mut __m256i,
                    std::mem::transmute::<__m256bh, __m256i>(h),
                );
            }
            i += 16;
        }
        let rest = row.len() - i;
        if rest > 0 {
            let mask = lanes(rest);
            // SAFETY: as above, the mask limiting the load and the store to the `rest` values
            // left.
            unsafe {
                let h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, row.as_ptr().add(i)));
                let h = std::mem::transmute::<__m256bh, __m256i>(h);
                _mm256_mask_storeu_epi16(out.add(i) as *mut i16, mask, h);
            }
        }
        if row.len() % 2 == 1 {
            // SAFETY: an odd length leaves half `len < 2 * div_ceil(len, 2)` of `pairs`.
            unsafe { *out.add(row.len()) = 0 };
        }
    }

    /// The tile, finished by `out`'s epilogue as its rows leave the registers.
    ///
    /// # Safety
    /// The CPU must have avx512f and avx512bf16; `a` and `b` whole panels (`kp * MR`, `kp * NR`);
    /// `out` as for [`crate::epilogue::finish`].
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile(a: &[u32], b: &[u32], kp: usize, out: &epilogue::Tile) {
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let (mut ap, mut bp) = (a.as_ptr(), b.as_ptr());
        for _ in 0..kp {
            // SAFETY: step `p < kp` (`ap`, `bp` advanced by `p * MR`, `p * NR`) reads the `NR`
            // pairs of its row of `b` as two 16-lane vectors and the `MR` pairs of its row of
            // `a`; the pointers advance to at most one past the end. The transmutes reinterpret
            // 512 bits as 512 bits.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const _));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16) as *const _));
                for r in 0..MR {
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(r) as i32));
                    acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
                    acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
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

#[cfg(test)]
mod tests {
    #[test]
    fn rounding_matches_half() {
        let mut x = 1.0e-30f32;
        while x < 1.0e30 {
            for v in [x, -x, x * 1.000_030_5, x * 0.999_969_5] {
                assert_eq!(
                    super::to_bf16(v),
                    half::bf16::from_f32(v).to_bits() as u32,
                    "{v:e}"
                );
            }
            x *= 1.37;
        }
        for v in [
            0.0f32,
            -0.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            1.0 + f32::EPSILON * 64.0,
        ] {
            assert_eq!(
                super::to_bf16(v),
                half::bf16::from_f32(v).to_bits() as u32,
                "{v:e}"
            );
        }
    }
}
