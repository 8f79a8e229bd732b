//! Small SIMD helpers the x86-64 micro-kernels share: AVX2 pass tiling and row stores, 16-lane
//! masks and masked loads.

/// The passes an AVX2 kernel covers a `rows x cols` tile (`cols <= NR`) in, with its 16 ymm
/// registers: `width` columns (16 for the f32 sums, two 8-lane vectors; 8 for int8's pairs of
/// partial sums) by up to `max_rows` rows; `pass(r0, c0, rows, cols)` for each, every pass a
/// stream over `k`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn avx2_passes(
    (rows, cols): (usize, usize),
    (max_rows, width): (usize, usize),
    mut pass: impl FnMut(usize, usize, usize, usize),
) {
    for c0 in (0..cols).step_by(width) {
        let n = (cols - c0).min(width);
        let mut r0 = 0;
        while r0 < rows {
            let r = (rows - r0).min(max_rows);
            pass(r0, c0, r, n);
            r0 += r;
        }
    }
}

/// Stores the first `rows` rows x `n` columns of AVX2 accumulators (two 8-lane vectors a row),
/// through a row on the stack: a partial row (`n < 16`) must not write past the tile.
///
/// # Safety
/// The CPU must have avx; `out` must be valid for writes of `rows` rows of `n <= 16` floats at
/// stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn store_rows<const R: usize>(
    acc: &[[std::arch::x86_64::__m256; 2]; R],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    n: usize,
) {
    use std::arch::x86_64::_mm256_storeu_ps;
    let mut row = [0f32; 16];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: the caller guarantees avx; `row` holds 16 floats, two stores of 8; `out`
        // holds `rows` rows of `n <= 16` floats at stride `ldc` (the caller's contract) and `row`
        // is a local, so the copy neither overruns nor overlaps.
        unsafe {
            _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
            std::ptr::copy_nonoverlapping(row.as_ptr(), out.add(r * ldc), n);
        }
    }
}

/// The mask of a 16-lane vector's first `n` lanes (all 16 for `n >= 16`): the masked loads and
/// stores that keep a partial tile's accesses inside its slices.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn lanes(n: usize) -> u16 {
    ((1u32 << n.min(16)) - 1) as u16
}

/// `row[i..i + 16]`, zeros past the row's end.
///
/// # Safety
/// The CPU must have avx512f.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn load16(row: &[f32], i: usize) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::_mm512_maskz_loadu_ps;
    let mask = lanes(row.len().saturating_sub(i));
    // SAFETY: the caller guarantees avx512f. The mask covers only `row[i..]`'s elements, and
    // masked-off lanes are neither read nor fault, so the address may lie past the row
    // (`wrapping_add`: no in-bounds requirement on it).
    unsafe { _mm512_maskz_loadu_ps(mask, row.as_ptr().wrapping_add(i)) }
}

/// Column masks of a tile's two 16-lane halves.
#[cfg(target_arch = "x86_64")]
pub(crate) fn lane_masks(cols: usize) -> (u16, u16) {
    (lanes(cols), lanes(cols.saturating_sub(16)))
}
