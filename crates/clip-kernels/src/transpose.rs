//! 16 x 16 transposes of 32-bit elements through AVX-512 registers: the attention's keys, and
//! the vector kernels' activation panels (`[group][MR]`), which a row-by-row packing would write
//! 4 bytes at a time, 56 bytes apart.

use std::arch::x86_64::*;

use crate::layout::MR;
use crate::simd::lanes;

/// Lanes of a vector, rows and columns of a block.
const L: usize = 16;

/// The transpose of a 16 x 16 block, one row a vector: pairs of rows interleaved, then
/// quadruples within 128-bit lanes, then the lanes exchanged in two rounds.
///
/// # Safety
/// The CPU must have avx512f (inlined into its callers' `#[target_feature]` code, it has no
/// target features of its own).
#[inline(always)]
pub(super) unsafe fn transpose16(r: [__m512; L]) -> [__m512; L] {
    // SAFETY: register-only avx512f shuffles (no memory is touched), on a CPU that has avx512f
    // (the caller's contract).
    unsafe {
        // t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved (elements 4k, 4k + 1 / 4k + 2, 4k + 3
        // of lane k).
        let t: [__m512; L] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // u[4q + e]: element 4k + e of rows 4q..4q + 4, in lane k.
        let u: [__m512; L] = std::array::from_fn(|i| {
            let (q, e) = (i / 4, i % 4);
            let (x, y) = (t[4 * q + e / 2], t[4 * q + 2 + e / 2]);
            if e % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(x, y)
            } else {
                _mm512_shuffle_ps::<0xEE>(x, y)
            }
        });
        let mut out = [_mm512_setzero_ps(); L];
        for e in 0..4 {
            let (v0, v1) = (
                _mm512_shuffle_f32x4::<0x88>(u[e], u[4 + e]),
                _mm512_shuffle_f32x4::<0xDD>(u[e], u[4 + e]),
            );
            let (w0, w1) = (
                _mm512_shuffle_f32x4::<0x88>(u[8 + e], u[12 + e]),
                _mm512_shuffle_f32x4::<0xDD>(u[8 + e], u[12 + e]),
            );
            out[e] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
            out[8 + e] = _mm512_shuffle_f32x4::<0xDD>(v0, w0);
            out[4 + e] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
            out[12 + e] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
        }
        out
    }
}

/// Writes `rows` (at most [`MR`]) activation rows into a vector kernel's panel (`[groups][MR]`
/// u32, every element written, rows past `rows` as zeros): `chunk(r, c)` gives groups
/// `16c..16c + 16` of row `r` (zeros past its last group). Each 16 x 16 block of (row, group) is
/// transposed in registers and stored as 16 contiguous runs of `MR` groups.
///
/// # Safety
/// The CPU must have avx512f; `panel` must hold `groups * MR` elements.
#[inline(always)]
pub(super) unsafe fn write_panel(
    panel: &mut [u32],
    groups: usize,
    rows: usize,
    mut chunk: impl FnMut(usize, usize) -> __m512i,
) {
    assert!(rows <= MR && panel.len() >= groups * MR);
    const { assert!(MR <= L) };
    let lanes = lanes(MR);
    for c in 0..groups.div_ceil(L) {
        // SAFETY: register-only avx512f operations, on a CPU that has avx512f (the caller's
        // contract).
        let t = unsafe {
            let block: [__m512; L] = std::array::from_fn(|r| {
                if r < rows {
                    _mm512_castsi512_ps(chunk(r, c))
                } else {
                    _mm512_setzero_ps()
                }
            });
            transpose16(block)
        };
        for (i, v) in t.iter().enumerate().take(groups - c * L) {
            // SAFETY: avx512f as above. Group `c * L + i < groups` starts `(c * L + i) * MR`
            // into `panel`, and the store writes its `MR` lanes only (`lanes`): at most
            // `groups * MR <= panel.len()` elements (asserted above).
            unsafe {
                let at = panel.as_mut_ptr().add((c * L + i) * MR) as *mut i32;
                _mm512_mask_storeu_epi32(at, lanes, _mm512_castps_si512(*v));
            }
        }
    }
}
