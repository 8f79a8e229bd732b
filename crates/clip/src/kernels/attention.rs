//! Multi-head self-attention read straight from the packed `qkv` projection `[B, T, 3D]`.
//!
//! candle's path split the heads into three contiguous copies, ran two batched GEMMs on tiny
//! `T x 64` matrices, materialised an additive causal mask and copied the heads back: six passes
//! over the activations per layer for ~1-4% of the FLOPs. Here one task per (image or text, head)
//! keeps its keys transposed in L1 and writes its output slice in place. Causal attention skips
//! the masked positions (their `exp(-inf)` terms are exactly 0 in the reference too).

use rayon::prelude::*;

/// `[B, Tq, D]` attention output (before `out_proj`) of `qkv` `[B, T, 3D]` (q, k, v blocks of
/// `D = heads * hd` each): softmax(q k^T / sqrt(hd)) v per head. `causal`: position `i` attends to
/// `0..=i`. `first_only`: only position 0 is a query (`Tq = 1`); every position is still a key.
pub fn packed_attention(
    qkv: &[f32],
    b: usize,
    t: usize,
    heads: usize,
    causal: bool,
    first_only: bool,
) -> Vec<f32> {
    let d3 = qkv.len() / (b * t).max(1);
    let d = d3 / 3;
    assert_eq!(qkv.len(), b * t * 3 * d, "qkv is not [B, T, 3D]");
    assert!(
        heads > 0 && d % heads == 0,
        "width {d} is not a multiple of {heads} heads"
    );
    let tq = if first_only { 1.min(t) } else { t };
    let mut out = vec![0f32; b * tq * d];
    let ptr = OutPtr(out.as_mut_ptr());
    (0..b * heads).into_par_iter().for_each(|bh| {
        let ptr = ptr;
        let (bi, h) = (bh / heads, bh % heads);
        let one = &qkv[bi * t * d3..][..t * d3];
        // SAFETY: every task writes the `hd` columns of head `h` in the rows of item `bi` only.
        unsafe { head(one, t, d, heads, h, causal, tq, ptr.0.add(bi * tq * d)) };
    });
    out
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Dispatches one head to the widest vector code this CPU runs (the loops are written to
/// auto-vectorise; the f32 arithmetic is the same in every version).
unsafe fn head(
    qkv: &[f32],
    t: usize,
    d: usize,
    heads: usize,
    h: usize,
    causal: bool,
    tq: usize,
    out: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return head_avx512(qkv, t, d, heads, h, causal, tq, out);
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return head_avx2(qkv, t, d, heads, h, causal, tq, out);
        }
    }
    head_body::<false>(qkv, t, d, heads, h, causal, tq, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn head_avx512(
    qkv: &[f32],
    t: usize,
    d: usize,
    heads: usize,
    h: usize,
    causal: bool,
    tq: usize,
    out: *mut f32,
) {
    head_body::<true>(qkv, t, d, heads, h, causal, tq, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_avx2(
    qkv: &[f32],
    t: usize,
    d: usize,
    heads: usize,
    h: usize,
    causal: bool,
    tq: usize,
    out: *mut f32,
) {
    head_body::<false>(qkv, t, d, heads, h, causal, tq, out)
}

/// Queries per register tile.
const QB: usize = 8;
/// Lanes per vector: keys per score tile, head columns per output tile.
const L: usize = 16;

/// One head of one item: `qkv` `[T, 3D]`, output rows `[Tq, D]` at `out`.
///
/// Register-tiled like a small GEMM: scores for `QB` queries x `L` keys accumulate in `QB`
/// vectors over the head dimension, outputs for `QB` queries x `L` columns over the keys. Keys
/// are kept transposed and values copied, both zero-padded to whole vectors, per task.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn head_body<const AVX512: bool>(
    qkv: &[f32],
    t: usize,
    d: usize,
    heads: usize,
    h: usize,
    causal: bool,
    tq: usize,
    out: *mut f32,
) {
    let hd = d / heads;
    let d3 = 3 * d;
    let scale = 1.0 / (hd as f32).sqrt();
    let tp = t.next_multiple_of(L);
    let hp = hd.next_multiple_of(L);
    // Keys transposed `[hd, tp]`, values `[t, hp]`, queries scaled `[tq padded, hd]`.
    let mut kt = vec![0f32; hd * tp];
    let mut v = vec![0f32; t * hp];
    for j in 0..t {
        let k = &qkv[j * d3 + d + h * hd..][..hd];
        for (c, &x) in k.iter().enumerate() {
            kt[c * tp + j] = x;
        }
        v[j * hp..j * hp + hd].copy_from_slice(&qkv[j * d3 + 2 * d + h * hd..][..hd]);
    }
    let tqp = tq.next_multiple_of(QB);
    let mut q = vec![0f32; tqp * hd];
    for i in 0..tq {
        for (c, &x) in qkv[i * d3 + h * hd..][..hd].iter().enumerate() {
            // The reference scales q before the product (`q * scale`, then `q @ k^T`).
            q[i * hd + c] = x * scale;
        }
    }
    let mut p = vec![0f32; QB * tp];
    for i0 in (0..tq).step_by(QB) {
        // Keys any query of this block may see.
        let n = if causal { (i0 + QB).min(t) } else { t };
        let np = n.next_multiple_of(L);
        // Scores `[QB, np]`.
        for j0 in (0..np).step_by(L) {
            let mut acc = [[0f32; L]; QB];
            let qb = &q[i0 * hd..(i0 + QB) * hd];
            #[cfg(target_arch = "x86_64")]
            if AVX512 {
                avx512::tile(qb, hd, &kt[j0..], tp, hd, &mut acc);
            }
            if !AVX512 {
                for c in 0..hd {
                    let kv: &[f32; L] = kt[c * tp + j0..][..L].try_into().unwrap();
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let qr = qb[r * hd + c];
                        for l in 0..L {
                            acc[l] += qr * kv[l];
                        }
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                p[r * tp + j0..][..L].copy_from_slice(acc);
            }
        }
        // Softmax per query over its visible keys; masked and padded keys get weight 0.
        for r in 0..QB.min(tq - i0) {
            let i = i0 + r;
            let visible = if causal { i + 1 } else { t };
            let row = &mut p[r * tp..r * tp + np];
            let max = row[..visible]
                .iter()
                .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let mut sum = 0f32;
            for x in row[..visible].iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            for x in row[..visible].iter_mut() {
                *x /= sum;
            }
            row[visible..].fill(0.0);
        }
        // Outputs `[QB, hd]` = P `[QB, n]` x V `[n, hd]`, one vector of columns at a time.
        for c0 in (0..hp).step_by(L) {
            let mut acc = [[0f32; L]; QB];
            #[cfg(target_arch = "x86_64")]
            if AVX512 {
                avx512::tile(&p, tp, &v[c0..], hp, n, &mut acc);
            }
            if !AVX512 {
                for j in 0..n {
                    let vv: &[f32; L] = v[j * hp + c0..][..L].try_into().unwrap();
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let pr = p[r * tp + j];
                        for l in 0..L {
                            acc[l] += pr * vv[l];
                        }
                    }
                }
            }
            let cols = L.min(hd - c0);
            for (r, acc) in acc.iter().enumerate().take(tq - i0) {
                std::ptr::copy_nonoverlapping(
                    acc.as_ptr(),
                    out.add((i0 + r) * d + h * hd + c0),
                    cols,
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{L, QB};

    /// `acc[r] = sum_c a[r * lda + c] * b[c * ldb .. + L]` for `c < k`: `QB` rows of `a` times a
    /// `k x L` panel of `b` (both the score tile, `q k^T`, and the output tile, `p v`).
    #[inline(always)]
    pub(super) unsafe fn tile(
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        k: usize,
        acc: &mut [[f32; L]; QB],
    ) {
        debug_assert!(a.len() >= (QB - 1) * lda + k && b.len() >= (k.max(1) - 1) * ldb + L);
        let mut r = [_mm512_setzero_ps(); QB];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for c in 0..k {
            let bv = _mm512_loadu_ps(bp.add(c * ldb));
            for (i, r) in r.iter_mut().enumerate() {
                *r = _mm512_fmadd_ps(_mm512_set1_ps(*ap.add(i * lda + c)), bv, *r);
            }
        }
        for (i, r) in r.iter().enumerate() {
            _mm512_storeu_ps(acc[i].as_mut_ptr(), *r);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Naive f64 attention of `[B, T, 3D]`.
    fn naive(
        qkv: &[f32],
        b: usize,
        t: usize,
        d: usize,
        heads: usize,
        causal: bool,
        tq: usize,
    ) -> Vec<f32> {
        let hd = d / heads;
        let mut out = vec![0f32; b * tq * d];
        for bi in 0..b {
            for h in 0..heads {
                for i in 0..tq {
                    let at = |j: usize, part: usize, c: usize| {
                        qkv[(bi * t + j) * 3 * d + part * d + h * hd + c] as f64
                    };
                    let n = if causal { i + 1 } else { t };
                    let s: Vec<f64> = (0..n)
                        .map(|j| {
                            (0..hd).map(|c| at(i, 0, c) * at(j, 1, c)).sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..hd {
                        let v: f64 = (0..n).map(|j| e[j] / z * at(j, 2, c)).sum();
                        out[(bi * tq + i) * d + h * hd + c] = v as f32;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_attention_on_odd_shapes() {
        for &(b, t, heads, hd, causal, first) in &[
            (1, 1, 1, 1, false, false),
            (2, 7, 3, 5, true, false),
            (3, 50, 2, 64, false, true),
            (1, 77, 8, 64, true, false),
            (2, 13, 4, 16, false, false),
        ] {
            let d = heads * hd;
            let qkv: Vec<f32> = (0..b * t * 3 * d)
                .map(|i| ((i * 7919 % 1000) as f32 / 250.0) - 2.0)
                .collect();
            let tq = if first { 1 } else { t };
            let got = super::packed_attention(&qkv, b, t, heads, causal, first);
            let want = naive(&qkv, b, t, d, heads, causal, tq);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 2e-5,
                "b={b} t={t} heads={heads} hd={hd} causal={causal}: {worst}"
            );
        }
    }
}
