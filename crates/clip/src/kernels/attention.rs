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
    head_body(qkv, t, d, heads, h, causal, tq, out)
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
    head_body(qkv, t, d, heads, h, causal, tq, out)
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
    head_body(qkv, t, d, heads, h, causal, tq, out)
}

/// One head of one item: `qkv` `[T, 3D]`, output rows `[Tq, D]` at `out`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn head_body(
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
    // Keys transposed, `[hd, T]`: a query's scores are then `hd` contiguous multiply-adds.
    let mut kt = vec![0f32; hd * t];
    for j in 0..t {
        let k = &qkv[j * d3 + d + h * hd..][..hd];
        for (c, &v) in k.iter().enumerate() {
            kt[c * t + j] = v;
        }
    }
    let mut s = vec![0f32; t];
    let mut o = vec![0f32; hd];
    for i in 0..tq {
        let n = if causal { i + 1 } else { t };
        let q = &qkv[i * d3 + h * hd..][..hd];
        let s = &mut s[..n];
        s.fill(0.0);
        for (c, &qc) in q.iter().enumerate() {
            // The reference scales q before the product (`q * scale`, then `q @ k^T`).
            let qc = qc * scale;
            for (sj, &kj) in s.iter_mut().zip(&kt[c * t..c * t + n]) {
                *sj += qc * kj;
            }
        }
        let max = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut sum = 0f32;
        for x in s.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        o.fill(0.0);
        for (j, &e) in s.iter().enumerate() {
            let p = e / sum;
            let v = &qkv[j * d3 + 2 * d + h * hd..][..hd];
            for (oc, &vc) in o.iter_mut().zip(v) {
                *oc += p * vc;
            }
        }
        std::ptr::copy_nonoverlapping(o.as_ptr(), out.add(i * d + h * hd), hd);
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
