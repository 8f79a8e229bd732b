//! int8 weights, uint8 activations, i32 sums: `vpdpbusd` multiplies four unsigned bytes of the
//! activation by four signed bytes of the weight per 32-bit lane and adds the four products.
//!
//! Weights are quantised once, symmetrically per output column (`W[:, j] = s_j * q`, `|q| <= 127`);
//! activations per row at every call, asymmetrically (`x = s_r * (q - z_r)`, `q` in 0..=255, the
//! range widened to contain 0 so zero is exact), like ONNX Runtime's dynamic quantisation but
//! per row instead of per tensor. Then `y[r, j] = s_r * s_j * (sum q_x q_w - z_r * sum_k q_w[k, j])`.
//!
//! Weights: `[n / NR][k / 4][NR]` u32 (four `k`-consecutive i8, lowest `k` in the low byte).
//! Activations: `[panel][k / 4][MR]` u32 of four u8, one broadcast to all lanes; for AVX2, which
//! has no `vpdpbusd`, the four u8 widened to four i16 (a u64, as two u32 words) for `vpmaddwd`.
//! AMX (`tdpbusd`, the same unsigned-by-signed products) reads the same weights and row-major
//! activations, see [`crate::amx`].

use rayon::prelude::*;

use crate::aligned::Aligned;
use crate::layout::{a_words, padded_groups, scatter_row, tile_rows, TileFormat, MR, NR};
use crate::precision::{Isa, Precision};
use crate::{amx, epilogue};

/// A `[k, n]` matrix quantised to int8 per column, four consecutive `k` in each u32, in
/// `[n / NR][kq][NR]` panels (the layout `vpdpbusd` and AMX's `tdpbusd` read), with each column's
/// scale and sum (the zero-point correction).
pub(crate) struct Int8Matrix {
    k: usize,
    /// `k` in groups of four (padded with zero weights; AMX: to whole tiles).
    kq: usize,
    data: Aligned<u32>,
    /// Per column (padded to a multiple of `NR` with zeros).
    scale: Vec<f32>,
    /// Per column: the sum of its int8 weights.
    col_sum: Vec<i32>,
}

/// A row block's activations quantised to uint8 (`q`, in panels), with each row's scale and
/// zero point (padding rows: scale 1, zero point 0).
pub(crate) struct Int8Panels {
    q: Aligned<u32>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl Int8Matrix {
    /// Quantises and packs `w(k, n)` (see [`crate::PackedMatrix::pack`]) for `isa`'s kernels
    /// (AMX pads `k` to whole tiles), padding with zero weights.
    pub fn pack(k: usize, n: usize, isa: Isa, w: &(impl Fn(usize, usize) -> f32 + Sync)) -> Self {
        let kq = padded_groups(k.div_ceil(4), isa);
        let np = n.div_ceil(NR) * NR;
        // Each column quantised once into `[n][k]` bytes, with its scale and sum. One buffer for
        // all columns: a pair of allocations per column, from every thread at once, queued on
        // the `clip` binary's single malloc arena (and slowed int8 start-up).
        let mut q = vec![0i8; n * k];
        let params: Vec<(f32, i32)> = if k == 0 {
            vec![(1.0, 0); n]
        } else {
            let avx2 = Isa::available(Precision::F32).contains(&Isa::Avx2);
            q.par_chunks_mut(k)
                .enumerate()
                .map_init(
                    || vec![0f32; k],
                    |col, (j, q)| {
                        for (p, c) in col.iter_mut().enumerate() {
                            *c = w(p, j);
                        }
                        match avx2 {
                            // SAFETY: avx2 and fma are present (`Isa::Avx2` is only listed
                            // then); the function has no other precondition.
                            #[cfg(target_arch = "x86_64")]
                            true => unsafe { quantise_column_avx2(col, q) },
                            _ => quantise_column(col, q),
                        }
                    },
                )
                .collect()
        };
        let mut scale = vec![0f32; np];
        let mut col_sum = vec![0i32; np];
        for (j, &(s, sum)) in params.iter().enumerate() {
            scale[j] = s;
            col_sum[j] = sum;
        }
        let mut data = Aligned::zeroed(np / NR * kq * NR);
        data.par_chunks_mut((kq * NR).max(1))
            .enumerate()
            .for_each(|(nb, panel)| {
                for j in (nb * NR..n).take(NR) {
                    let l = j - nb * NR;
                    for (g, four) in q[j * k..][..k].chunks(4).enumerate() {
                        let mut bytes = [0u8; 4];
                        for (b, &v) in bytes.iter_mut().zip(four) {
                            *b = v as u8;
                        }
                        panel[g * NR + l] = u32::from_le_bytes(bytes);
                    }
                }
            });
        Self {
            k,
            kq,
            data,
            scale,
            col_sum,
        }
    }

    /// Bytes of the packed weights and their per-column scales and sums.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4 + self.scale.len() * 8
    }
}

/// One column's weights to int8 at its scale (max |w| / 127): `(scale, sum of the int8 values)`.
/// Over a gathered slice so that both passes vectorise (per-weight folds through the accessor
/// ran a scalar `maxss` chain and a `divss` a weight, a large share of int8 start-up).
#[inline(always)]
fn quantise_column(col: &[f32], q: &mut [i8]) -> (f32, i32) {
    let (lo, hi) = range(col);
    let max = hi.max(-lo);
    let s = if max > 0.0 { max / 127.0 } else { 1.0 };
    let mut sum = 0;
    for (v, &c) in q.iter_mut().zip(col) {
        *v = quantise_weight(c, s);
        sum += *v as i32;
    }
    (s, sum)
}

/// [`quantise_column`] compiled for AVX2, so that its loops vectorise 8 lanes wide.
///
/// # Safety
/// The CPU must have avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantise_column_avx2(col: &[f32], q: &mut [i8]) -> (f32, i32) {
    quantise_column(col, q)
}

#[inline(always)]
fn quantise_weight(v: f32, s: f32) -> i8 {
    // Round half away from zero (`f32::round`, which is a libm call on baseline x86-64: one per
    // weight dominated int8 start-up): truncation of `x + 0.5 * sign(x)`. Away-from-zero rather
    // than to-even: weights stored as f16 land on exact halves often enough to matter (measured:
    // round-to-even lowered the fixtures' worst text cosine).
    let x = v / s;
    ((x + 0.5f32.copysign(x)) as i32).clamp(-127, 127) as i8
}

/// Round half to even for `|x| < 2^22` without a libm call (adding and removing 1.5 * 2^23
/// leaves the integer the FPU rounds to): the baseline x86-64 target has no `roundps`.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// `round(v * inv_scale) + zero` clamped to 0..=255, ties to even (as the vector paths' default
/// rounding mode), so every kernel set quantises to the same bytes.
fn quantise_activation(v: f32, inv_scale: f32, zero: i32) -> u8 {
    (round_even((v * inv_scale).clamp(-512.0, 512.0)) as i32 + zero).clamp(0, 255) as u8
}

/// `(scale, zero point)` of one activation row, from its range (widened to contain 0).
fn row_params(isa: Isa, row: &[f32]) -> (f32, i32) {
    let (lo, hi) = match isa {
        // SAFETY: `Avx512` and `Amx` are only chosen where avx512f is present.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Amx => unsafe { avx512::range(row) },
        _ => range(row),
    };
    let s = (hi - lo) / 255.0;
    if s > 0.0 {
        (s, (round_even(-lo / s) as i32).clamp(0, 255))
    } else {
        (1.0, 0)
    }
}

/// `(min(row, 0), max(row, 0))`.
#[inline(always)]
fn range(row: &[f32]) -> (f32, f32) {
    // Over 16 interleaved lanes (compare-and-select vectorises; `f32::min` folds do not).
    const LANES: usize = 16;
    let (mut lo, mut hi) = ([0f32; LANES], [0f32; LANES]);
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        lo[l] = if v < lo[l] { v } else { lo[l] };
        hi[l] = if v > hi[l] { v } else { hi[l] };
    }
    let lo = lo.iter().fold(0f32, |m, &v| m.min(v));
    let hi = hi.iter().fold(0f32, |m, &v| m.max(v));
    (lo, hi)
}

impl TileFormat for Int8Matrix {
    type Panels = Int8Panels;

    fn a_row_bytes(&self, isa: Isa) -> usize {
        self.kq * 4 * a_words(isa)
    }

    fn pack_a(&self, isa: Isa, x: &[f32], rows: usize) -> Int8Panels {
        let (k, kq, mr) = (self.k, self.kq, tile_rows(isa));
        let padded_rows = rows.div_ceil(mr) * mr;
        let mut q = Aligned::zeroed(padded_rows * kq * a_words(isa));
        let mut scale = vec![1f32; padded_rows];
        let mut zero = vec![0i32; padded_rows];
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2 {
            // SAFETY: `Avx2` is only chosen where avx2 and fma are present (the function's
            // only precondition; `q` holds whole panels of `kq * MR` widened groups, and every
            // access is bounds-checked).
            unsafe { pack_widened_avx2(x, (k, kq), rows, (&mut scale, &mut zero), &mut q) };
            return Int8Panels { q, scale, zero };
        }
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 && kq > 0 {
            for r in 0..rows {
                (scale[r], zero[r]) = row_params(isa, &x[r * k..][..k]);
            }
            // SAFETY: `Avx512` is only chosen where avx512f and avx512bw are present; `q` holds
            // whole panels of `kq * MR` groups for `rows` rows of `k` values of `x`.
            unsafe { avx512::pack_panels(x, k, kq, rows, (&scale, &zero), &mut q) };
            return Int8Panels { q, scale, zero };
        }
        // One row quantised to bytes (zero-padded to whole groups), then strided into its panel
        // (or its AMX tiles).
        let mut groups = vec![0u32; kq];
        for r in 0..rows {
            let row = &x[r * k..][..k];
            let (s, z) = row_params(isa, row);
            scale[r] = s;
            zero[r] = z;
            let bytes = groups.as_mut_ptr() as *mut u8;
            match isa {
                // SAFETY: `Avx512` and `Amx` are only chosen where avx512f and avx512bw are
                // present; `groups` holds `4 * kq >= k` bytes, the `row.len() = k` written.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Amx => unsafe { avx512::quantise_row(row, 1.0 / s, z, bytes) },
                _ => {
                    for (i, &v) in row.iter().enumerate() {
                        // SAFETY: i < k <= 4 * kq.
                        unsafe { *bytes.add(i) = quantise_activation(v, 1.0 / s, z) };
                    }
                }
            }
            scatter_row(isa, &mut q, &groups, r);
        }
        Int8Panels { q, scale, zero }
    }

    /// # Safety
    /// As [`TileFormat::tile`].
    unsafe fn tile(&self, isa: Isa, a: &Int8Panels, panel: usize, nb: usize, out: &epilogue::Tile) {
        let (kq, mr, words) = (self.kq, tile_rows(isa), a_words(isa));
        let t = Tile {
            a: &a.q[panel * kq * mr * words..][..kq * mr * words],
            a_scale: &a.scale[panel * mr..][..mr],
            a_zero: &a.zero[panel * mr..][..mr],
            b: &self.data[nb * kq * NR..][..kq * NR],
            b_scale: &self.scale[nb * NR..][..NR],
            b_sum: &self.col_sum[nb * NR..][..NR],
            kq,
        };
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => {
                let mut sums = amx::Sums([0i32; amx::TILE * NR]);
                let (a, b) = (t.a.as_ptr(), t.b.as_ptr());
                // SAFETY: `Amx` is available (the caller's contract) only where AMX-INT8 is and
                // the kernel granted the tile state; `kq` is padded to whole tiles; `a` is one
                // whole panel of 32 rows, `b` `kq` groups of `NR`; the sums are a local 32 x 32
                // tile (stride `NR`).
                unsafe {
                    amx::tile(
                        amx::Product::Int8,
                        a,
                        b,
                        kq,
                        sums.0.as_mut_ptr() as *mut u32,
                        NR,
                    )
                };
                // SAFETY: `Amx` implies avx512f; `out` is the caller's contract (`rows <= 32`).
                return unsafe { avx512::dequantise(&t, &sums.0, out) };
            }
            // SAFETY: `Avx512` is available only with avx512f, avx512bw and avx512vnni; `t`
            // holds whole panels (sliced above); `out` is the caller's contract.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => return unsafe { avx512::tile(&t, out) },
            // SAFETY: `Avx2` is available only with avx2; `t` as above, its activations the
            // widened groups; `out` is the caller's contract.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2::tile(&t, out.c, out.ld, out.rows, out.cols) },
            // SAFETY: `out` is the caller's contract.
            _ => unsafe { tile_portable(&t, out.c, out.ld, out.rows, out.cols) },
        }
        // SAFETY: the tile was written above; `isa` and `out` are the caller's contract.
        unsafe { epilogue::finish(isa, out) };
    }
}

/// One tile's inputs.
struct Tile<'a> {
    /// The panel's activation groups (`kq * mr * a_words`).
    a: &'a [u32],
    /// The panel's row scales and zero points (`mr` each).
    a_scale: &'a [f32],
    a_zero: &'a [i32],
    /// The column block's weight groups (`kq * NR`), scales and sums (`NR` each).
    b: &'a [u32],
    b_scale: &'a [f32],
    b_sum: &'a [i32],
    kq: usize,
}

/// The tile's exact i32 sums in plain Rust, dequantised.
///
/// # Safety
/// `c` must be valid for writes of `rows <= MR` rows of `cols <= NR` floats at stride `ldc`,
/// which nothing else accesses during the call.
#[inline(always)]
unsafe fn tile_body(t: &Tile, c: *mut f32, ldc: usize, rows: usize, cols: usize) {
    let mut acc = [[0i32; NR]; MR];
    for g in 0..t.kq {
        let bq: [[i32; NR]; 4] = std::array::from_fn(|i| {
            std::array::from_fn(|j| (t.b[g * NR + j] >> (8 * i)) as u8 as i8 as i32)
        });
        for (r, acc) in acc.iter_mut().enumerate() {
            let aq = t.a[g * MR + r].to_le_bytes().map(|v| v as i32);
            for j in 0..NR {
                acc[j] += aq[0] * bq[0][j] + aq[1] * bq[1][j] + aq[2] * bq[2][j] + aq[3] * bq[3][j];
            }
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the tile, `cols` floats, valid for writes and not otherwise
        // accessed (the caller's contract). They may be uninitialised (`drive`'s output is not
        // zeroed), hence the `MaybeUninit` view, which is only written.
        let out = unsafe {
            std::slice::from_raw_parts_mut(
                c.add(r * ldc).cast::<std::mem::MaybeUninit<f32>>(),
                cols,
            )
        };
        for (j, o) in out.iter_mut().enumerate() {
            let v = acc[j] - t.a_zero[r] * t.b_sum[j];
            o.write(v as f32 * (t.a_scale[r] * t.b_scale[j]));
        }
    }
}

/// [`tile_body`] for the baseline target.
///
/// # Safety
/// As [`tile_body`].
unsafe fn tile_portable(t: &Tile, c: *mut f32, ldc: usize, rows: usize, cols: usize) {
    // SAFETY: the caller's contract is `tile_body`'s.
    unsafe { tile_body(t, c, ldc, rows, cols) }
}

/// `rows` rows of `x` quantised (as [`quantise_activation`], at their [`row_params`]) and each
/// group of four u8 widened to four i16 (`[panel][kq][MR]` u64, as u32 pairs), the layout the
/// AVX2 kernel broadcasts from. Compiled for AVX2 so that the range and quantising loops
/// vectorise.
///
/// # Safety
/// The CPU must have avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_widened_avx2(
    x: &[f32],
    (k, kq): (usize, usize),
    rows: usize,
    (scale, zero): (&mut [f32], &mut [i32]),
    q: &mut [u32],
) {
    let panels: &mut [[u32; 2]] = bytemuck::cast_slice_mut(q);
    let mut bytes = vec![0u8; 4 * kq];
    let mut groups = vec![[0u32; 2]; kq];
    for r in 0..rows {
        let row = &x[r * k..][..k];
        let (s, z) = row_params(Isa::Avx2, row);
        (scale[r], zero[r]) = (s, z);
        for (b, &v) in bytes.iter_mut().zip(row) {
            *b = quantise_activation(v, 1.0 / s, z);
        }
        for (g, four) in groups.iter_mut().zip(bytes.chunks_exact(4)) {
            let wide = |i: usize| four[i] as u32;
            *g = [wide(0) | wide(1) << 16, wide(2) | wide(3) << 16];
        }
        scatter_row(Isa::Avx2, panels, &groups, r);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Tile;
    use crate::layout::{MR, NR};

    /// Rows of one pass: two accumulators a row (eight columns, each as two partial sums: lanes
    /// `2j` and `2j + 1` hold `k`-pairs 0-1 and 2-3 of column `j`'s groups), two widened weight
    /// vectors and a broadcast: 15 of the 16 ymm registers.
    const ROWS: usize = 6;

    /// The tile's `rows x cols` exact i32 sums, dequantised as [`super::tile_body`] does, stored.
    /// `vpmaddwd` multiplies the widened u8 activations by the i8 weights, sign-extended to i16
    /// as they are loaded, and adds adjacent products in i32 (|sum| <= 2 * 255 * 127: exact).
    ///
    /// # Safety
    /// The CPU must have avx2; `t` whole panels with widened activations (`kq * MR * 2` words,
    /// from the start of a panel of [`crate::aligned::Aligned`] words: 8-byte aligned); `c` valid
    /// for writes of `rows <= MR` rows of `cols <= NR` floats at stride `ldc`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn tile(t: &Tile, c: *mut f32, ldc: usize, rows: usize, cols: usize) {
        crate::simd::avx2_passes((rows, cols), (ROWS, 8), |r0, c0, r, n| {
            // SAFETY: the passes cover the tile, `r0 + r <= rows` and `c0 + n <= cols`
            // (`n <= 8`), so the pass's output lies inside it; features and panels are the
            // caller's contract.
            unsafe { pass(t, r0, c0, c.add(r0 * ldc + c0), ldc, r, n) }
        });
    }

    /// Rows `r0..r0 + rows` x columns `c0..c0 + n` (`rows <= ROWS`, `n <= 8`).
    ///
    /// # Safety
    /// As [`tile`], with `r0 + rows <= MR`, `c0 + 8 <= NR`, and `out` valid for `rows` rows of
    /// `n` floats at stride `ldc`.
    #[inline(always)]
    unsafe fn pass(
        t: &Tile,
        r0: usize,
        c0: usize,
        out: *mut f32,
        ldc: usize,
        rows: usize,
        n: usize,
    ) {
        // SAFETY: the caller guarantees avx2. Group `g < kq` reads the 32 weight bytes of
        // columns `c0..c0 + 8 <= NR` of its row of `b` (`kq * NR` words) and the widened group
        // (an aligned i64) of row `min(r0 + i, MR - 1) < MR` of `a` (`kq * MR` i64s); the sums
        // and scales read columns `c0..c0 + 8` of their `NR`; the stores are the caller's
        // `rows x n` at `out` (a full row of 8 only when `n == 8`).
        unsafe {
            let mut acc = [[_mm256_setzero_si256(); 2]; ROWS];
            let a = t.a.as_ptr() as *const i64;
            let b = (t.b.as_ptr() as *const u8).add(4 * c0);
            for g in 0..t.kq {
                let w = b.add(4 * g * NR);
                let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w as *const __m128i));
                let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(16) as *const __m128i));
                for (i, acc) in acc.iter_mut().enumerate() {
                    // Rows past `rows` read the panel's padding (or the next rows): not stored.
                    let x = _mm256_set1_epi64x(*a.add(g * MR + (r0 + i).min(MR - 1)));
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, w0));
                    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x, w1));
                }
            }
            let sum = _mm256_loadu_si256(t.b_sum.as_ptr().add(c0) as *const __m256i);
            let scale = _mm256_loadu_ps(t.b_scale.as_ptr().add(c0));
            let mut row = [0f32; 8];
            for (i, acc) in acc.iter().enumerate().take(rows) {
                // Adjacent lanes summed: [c0 c1 c4 c5 | c2 c3 c6 c7], then the 64-bit pairs in
                // order.
                let s = _mm256_hadd_epi32(acc[0], acc[1]);
                let s = _mm256_permute4x64_epi64::<0b11_01_10_00>(s);
                let z = _mm256_set1_epi32(t.a_zero[r0 + i]);
                let v = _mm256_sub_epi32(s, _mm256_mullo_epi32(z, sum));
                let f = _mm256_mul_ps(
                    _mm256_cvtepi32_ps(v),
                    _mm256_mul_ps(_mm256_set1_ps(t.a_scale[r0 + i]), scale),
                );
                let dst = out.add(i * ldc);
                if n == 8 {
                    _mm256_storeu_ps(dst, f);
                } else {
                    _mm256_storeu_ps(row.as_mut_ptr(), f);
                    std::ptr::copy_nonoverlapping(row.as_ptr(), dst, n);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::Tile;
    use crate::epilogue::{self, RowStore};
    use crate::layout::{MR, NR};
    use crate::simd::{lanes, load16};
    use crate::transpose::write_panel;

    /// `rows` rows of `x` (`[rows, k]`) quantised at their `(scale, zero point)` (as
    /// [`quantise_row`], bytes past `k` zero) into `[panel][kq][MR]` panels, 16 rows x 16 groups
    /// at a time through registers.
    ///
    /// # Safety
    /// The CPU must have avx512f and avx512bw. (Every access is bounds-checked or masked to its
    /// slice: `k`, `kq` and `rows` must agree with `x` and `q` for the right numbers only.)
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn pack_panels(
        x: &[f32],
        k: usize,
        kq: usize,
        rows: usize,
        (scale, zero): (&[f32], &[i32]),
        q: &mut [u32],
    ) {
        for (p, panel) in q.chunks_exact_mut(kq * MR).enumerate() {
            let r0 = p * MR;
            // SAFETY: avx512f is the caller's contract (for `write_panel`, `load16`, whose masked
            // loads stay inside `row`, and `quantise16`); `panel` holds `kq * MR` elements
            // (`chunks_exact_mut`).
            unsafe {
                write_panel(panel, kq, (rows - r0).min(MR), |r, c| {
                    let row = &x[(r0 + r) * k..][..k];
                    let s = _mm512_set1_ps(1.0 / scale[r0 + r]);
                    let z = _mm512_set1_epi32(zero[r0 + r]);
                    // Four runs of 16 values, each to 16 bytes: 64 consecutive `k`, 16 groups.
                    let bytes: [__m128i; 4] = std::array::from_fn(|e| {
                        let i = 64 * c + 16 * e;
                        let inside = lanes(row.len().saturating_sub(i));
                        let v = quantise16(load16(row, i), s, z);
                        _mm512_cvtepi32_epi8(_mm512_maskz_mov_epi32(inside, v))
                    });
                    let v = _mm512_castsi128_si512(bytes[0]);
                    let v = _mm512_inserti32x4::<1>(v, bytes[1]);
                    let v = _mm512_inserti32x4::<2>(v, bytes[2]);
                    _mm512_inserti32x4::<3>(v, bytes[3])
                })
            };
        }
    }

    /// [`super::range`] in 16-lane vectors (the portable loop, compiled for the baseline target,
    /// ran on 4-lane SSE, a noticeable share of an int8 model's time).
    ///
    /// # Safety
    /// The CPU must have avx512f.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn range(row: &[f32]) -> (f32, f32) {
        let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i < row.len() {
            let n = (row.len() - i).min(16);
            let mask = lanes(n);
            // Masked-off lanes load 0, which the range already contains. The running range is
            // the second operand: `vminps`/`vmaxps` return it when `v` is NaN, like the portable
            // compare-and-select.
            // SAFETY: `i < row.len()`, and the mask reads the `n <= len - i` values left.
            let v = unsafe { _mm512_maskz_loadu_ps(mask, row.as_ptr().add(i)) };
            lo = _mm512_min_ps(v, lo);
            hi = _mm512_max_ps(v, hi);
            i += n;
        }
        (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
    }

    /// `round(v * inv_scale) + zero` clamped to 0..=255, lane by lane (as 32-bit integers).
    ///
    /// # Safety
    /// The CPU must have avx512f.
    #[inline(always)]
    unsafe fn quantise16(v: __m512, inv_scale: __m512, zero: __m512i) -> __m512i {
        // Round to nearest even (the default rounding mode), like the portable path.
        // SAFETY: register-only avx512f arithmetic, on a CPU that has it (the caller's
        // contract).
        unsafe {
            let q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv_scale)), zero);
            _mm512_min_epi32(
                _mm512_max_epi32(q, _mm512_setzero_si512()),
                _mm512_set1_epi32(255),
            )
        }
    }

    /// `round(v * inv_scale) + zero` clamped to 0..=255 for each of `row`, into `out`.
    ///
    /// # Safety
    /// The CPU must have avx512f and avx512bw; `out` must be valid for writes of `row.len()`
    /// bytes.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantise_row(row: &[f32], inv_scale: f32, zero: i32, out: *mut u8) {
        let (s, z) = (_mm512_set1_ps(inv_scale), _mm512_set1_epi32(zero));
        let mut i = 0;
        while i < row.len() {
            let n = (row.len() - i).min(16);
            let mask = lanes(n);
            // SAFETY: `i < row.len()`, and the mask limits the load and the store to the
            // `n <= len - i` values left, bytes `i..i + n` of the caller's `len` at `out`;
            // `quantise16` needs avx512f, enabled here.
            unsafe {
                let q = quantise16(_mm512_maskz_loadu_ps(mask, row.as_ptr().add(i)), s, z);
                _mm512_mask_cvtepi32_storeu_epi8(out.add(i) as *mut i8, mask, q);
            }
            i += n;
        }
    }

    /// The tile, dequantised and finished by `out`'s epilogue as its rows leave the registers.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw and avx512vnni; `t` whole panels (`kq * MR` and
    /// `kq * NR` groups, `MR` row parameters, `NR` column parameters); `out` as for
    /// [`crate::epilogue::finish`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile(t: &Tile, out: &epilogue::Tile) {
        let mut acc0 = [_mm512_setzero_si512(); MR];
        let mut acc1 = [_mm512_setzero_si512(); MR];
        let (mut ap, mut bp) = (t.a.as_ptr(), t.b.as_ptr());
        for _ in 0..t.kq {
            // SAFETY: step `g < kq` (`ap`, `bp` advanced by `g * MR`, `g * NR`) reads the `NR`
            // groups of its row of `b` as two 16-lane vectors and the `MR` groups of its row of
            // `a`; the pointers advance to at most one past the end.
            unsafe {
                let b0 = _mm512_loadu_si512(bp as *const _);
                let b1 = _mm512_loadu_si512(bp.add(16) as *const _);
                for r in 0..MR {
                    let av = _mm512_set1_epi32(*ap.add(r) as i32);
                    acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
                    acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
                }
                ap = ap.add(MR);
                bp = bp.add(NR);
            }
        }
        // SAFETY: avx512f is enabled here; `t`'s column parameters hold `NR` values and `out`
        // is the caller's contract (`rows <= MR`).
        let (dq, store) = unsafe { (Dequantise::new(t), RowStore::new(out)) };
        for r in 0..out.rows {
            // SAFETY: as above, row `r < rows <= MR` (`t`'s row parameters hold `MR`).
            unsafe { store.store(r, dq.row(t, r, [acc0[r], acc1[r]])) };
        }
    }

    /// The AMX kernel's i32 sums (`[32][NR]`) to f32 outputs, finished by `out`'s epilogue.
    ///
    /// # Safety
    /// The CPU must have avx512f; `t`'s parameters as for [`tile`] with 32 rows; `out` as for
    /// [`crate::epilogue::finish`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dequantise(t: &Tile, sums: &[i32], out: &epilogue::Tile) {
        // SAFETY: avx512f is enabled here; `t`'s column parameters hold `NR` values and `out`
        // is the caller's contract.
        let (dq, store) = unsafe { (Dequantise::new(t), RowStore::new(out)) };
        for (r, s) in sums.chunks_exact(NR).take(out.rows).enumerate() {
            // SAFETY: `s` is a whole row of `NR` sums, read as two 16-lane vectors; row
            // `r < rows` of `out`, whose row parameters `t` holds.
            unsafe {
                let acc0 = _mm512_loadu_si512(s.as_ptr() as *const _);
                let acc1 = _mm512_loadu_si512(s.as_ptr().add(16) as *const _);
                store.store(r, dq.row(t, r, [acc0, acc1]));
            }
        }
    }

    /// `s_r * s_j * (sum - z_r * colsum_j)` for the tile's columns.
    struct Dequantise {
        sum: [__m512i; 2],
        scale: [__m512; 2],
    }

    impl Dequantise {
        /// The tile's column sums and scales, loaded once for all its rows.
        ///
        /// # Safety
        /// The CPU must have avx512f; `t.b_sum` and `t.b_scale` must hold `NR` values.
        #[inline(always)]
        unsafe fn new(t: &Tile) -> Self {
            // SAFETY: the caller guarantees avx512f and `NR = 32` values in each slice, read as
            // two 16-lane vectors.
            unsafe {
                Self {
                    sum: [
                        _mm512_loadu_si512(t.b_sum.as_ptr() as *const _),
                        _mm512_loadu_si512(t.b_sum.as_ptr().add(16) as *const _),
                    ],
                    scale: [
                        _mm512_loadu_ps(t.b_scale.as_ptr()),
                        _mm512_loadu_ps(t.b_scale.as_ptr().add(16)),
                    ],
                }
            }
        }

        /// Row `r` of the tile from its two 16-lane sums.
        ///
        /// # Safety
        /// The CPU must have avx512f.
        #[inline(always)]
        unsafe fn row(&self, t: &Tile, r: usize, acc: [__m512i; 2]) -> [__m512; 2] {
            // SAFETY: register-only avx512f arithmetic, on a CPU that has it (the caller's
            // contract); the row parameters are indexed with bounds checks.
            unsafe {
                let z = _mm512_set1_epi32(t.a_zero[r]);
                let s = _mm512_set1_ps(t.a_scale[r]);
                let mut v = [_mm512_setzero_ps(); 2];
                for h in 0..2 {
                    let sum = _mm512_sub_epi32(acc[h], _mm512_mullo_epi32(z, self.sum[h]));
                    v[h] = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s, self.scale[h]));
                }
                v
            }
        }
    }
}
