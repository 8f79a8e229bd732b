//! Multi-head self-attention read straight from the packed `qkv` projection `[B, T, 3D]`.
//!
//! candle's path split the heads into three contiguous copies, ran two batched GEMMs on tiny
//! `T x 64` matrices, materialised an additive causal mask and copied the heads back: six passes
//! over the activations per layer for a small share of the FLOPs. Here one task per (image or
//! text, head) keeps its keys transposed in L1 and writes its output slice in place. Causal
//! attention skips the masked positions (their `exp(-inf)` terms are exactly 0 in the reference
//! too).

use std::cell::RefCell;

use rayon::prelude::*;

use crate::drive::OutPtr;
use crate::precision::{Isa, Precision};

/// Which positions of each sequence are queries (every position is a key and a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queries {
    /// Every position: one output row per input row.
    All,
    /// Only position 0 (the vision tower's class token): one output row per sequence.
    First,
    /// Only the last position (the text tower's end-of-text token, sequences cut right after it):
    /// one output row per sequence.
    Last,
}

/// The arithmetic of attention's two products, `q k^T` and `p v` (the softmax is f32 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    /// f32: the reference's numbers.
    F32,
    /// q (scaled), k, the probabilities and v rounded to bf16, f32 sums (`vdpbf16ps`: two
    /// products a lane where an f32 FMA does one), where AVX512-BF16 is present; f32 elsewhere.
    /// For the bf16 and int8 modes, whose linear layers round their inputs at least as much.
    Bf16,
}

impl Products {
    /// The products a model in `precision` uses.
    pub fn for_precision(precision: Precision) -> Products {
        match precision {
            Precision::Bf16 | Precision::Int8 => Products::Bf16,
            Precision::F32 | Precision::F16 => Products::F32,
        }
    }
}

/// The code attention runs: the vector instructions of the model's kernel set (as far as the CPU
/// has them; a model built on forced fallback kernels runs fallback attention too, which is how
/// the tests reach it on any machine) and the arithmetic of its products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionKernels {
    /// The most the vector code may use (still checked against the CPU's features per call, so
    /// any value is safe to name).
    pub isa: Isa,
    /// The arithmetic of the two products.
    pub products: Products,
}

impl AttentionKernels {
    /// Attention for a model whose linear layers run `precision` on `isa`. Its vector code is
    /// f32 whatever the precision, so by default it runs the CPU's best f32 level (a bf16 model
    /// on a CPU without AVX512-BF16 has AVX2 linear layers but AVX-512 attention); a kernel set
    /// other than the precision's default (forced, as the tests force fallbacks) is followed.
    pub fn for_model(precision: Precision, isa: Isa) -> AttentionKernels {
        AttentionKernels {
            isa: if isa == Isa::detect(precision) {
                Isa::detect(Precision::F32)
            } else {
                isa
            },
            products: Products::for_precision(precision),
        }
    }
}

/// Attention output (before `out_proj`) of `qkv`: the rows of every sequence back to back,
/// `[sum(lens), 3D]` (q, k, v blocks of `D = heads * hd` each), sequence `i` `lens[i]` rows long:
/// softmax(q k^T / sqrt(hd)) v per head within each sequence. `causal`: position `p` attends to
/// `0..=p`. Returns `[sum(lens), D]` for [`Queries::All`], `[lens.len(), D]` otherwise.
/// `kernels`: see [`AttentionKernels`].
///
/// Sequences of different lengths need no padding: the text tower runs each caption on its own
/// length, the linear layers on the concatenated rows.
pub fn packed_attention(
    qkv: &[f32],
    lens: &[usize],
    heads: usize,
    causal: bool,
    queries: Queries,
    kernels: AttentionKernels,
) -> Vec<f32> {
    let rows: usize = lens.iter().sum();
    let d3 = qkv.len() / rows.max(1);
    let d = d3 / 3;
    assert_eq!(qkv.len(), rows * 3 * d, "qkv is not [sum(lens), 3D]");
    assert!(
        heads > 0 && d.is_multiple_of(heads),
        "width {d} is not a multiple of {heads} heads"
    );
    assert!(
        queries == Queries::All || lens.iter().all(|&t| t > 0),
        "an empty sequence has no first or last position"
    );
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |at, &t| {
            let s = *at;
            *at += t;
            Some(s)
        })
        .collect();
    let out_rows = match queries {
        Queries::All => rows,
        _ => lens.len(),
    };
    let mut out = vec![0f32; out_rows * d];
    let ptr = OutPtr(out.as_mut_ptr());
    (0..lens.len() * heads).into_par_iter().for_each(|bh| {
        let (i, h) = (bh / heads, bh % heads);
        let (start, t) = (starts[i], lens[i]);
        let one = &qkv[start * d3..][..t * d3];
        let (q0, tq, row) = match queries {
            Queries::All => (0, t, start),
            Queries::First => (0, 1, i),
            Queries::Last => (t - 1, 1, i),
        };
        let (span, dims) = (Span { t, q0, tq }, Dims { d, heads });
        if h + 1 < heads {
            prefetch_head(one, t, dims, h + 1);
        }
        // SAFETY: `one` is sequence `i`'s `[t, 3d]` rows; its output rows `row..row + tq` lie
        // inside `out` (`[out_rows, d]`: `start + t <= rows` for all queries, `i < lens.len()`
        // for one), and every task writes the `hd` columns of head `h` in its own sequence's
        // rows only, so no two tasks write the same element.
        unsafe { head(one, span, dims, h, causal, kernels, ptr.get().add(row * d)) };
    });
    out
}

/// Asks for head `h`'s q, k and v columns of a sequence's `t` rows (`[t, 3d]`) to L2: the next
/// head's, which the same thread computes next, while this one computes (its rows lie 3d floats
/// apart, a stride the hardware prefetchers do not follow).
fn prefetch_head(qkv: &[f32], t: usize, Dims { d, heads }: Dims, h: usize) {
    let hd = d / heads;
    #[cfg(target_arch = "x86_64")]
    for j in 0..t {
        for part in 0..3 {
            let cols = &qkv[j * 3 * d + part * d + h * hd..][..hd];
            for line in cols.iter().step_by(16) {
                // SAFETY: a prefetch is a hint that never faults; the address is inside `qkv`.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
                    _mm_prefetch::<_MM_HINT_T1>(line as *const f32 as *const i8);
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (qkv, t, hd, h);
}

/// One sequence of `t` positions whose queries are positions `q0..q0 + tq`.
#[derive(Clone, Copy)]
struct Span {
    t: usize,
    q0: usize,
    tq: usize,
}

/// Width `d` of the model, split into `heads` heads.
#[derive(Clone, Copy)]
struct Dims {
    d: usize,
    heads: usize,
}

thread_local! {
    /// Each thread's scratch for [`head_body`], reused across heads, layers and calls (four fresh
    /// zeroed buffers per head were a measurable share of an image's time).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Dispatches one head to the vector code of the kernel set, as far as this CPU runs it (the
/// loops are written to auto-vectorise; the f32 arithmetic is the same in every version but the
/// softmax's `exp`: AVX-512 evaluates it in vectors, see [`crate::epilogue`]), or, for
/// [`Products::Bf16`] on CPUs with AVX512-BF16, to the bf16 products.
///
/// # Safety
/// `qkv` must be one sequence's `[t, 3d]` rows (`s.t = t`, `s.q0 + s.tq <= t`), `d` a multiple of
/// `heads`, `h < heads`; `out` must be valid for writes of columns `h * hd..(h + 1) * hd` of
/// `s.tq` rows at stride `d`, which nothing else accesses during the call. The CPU's features
/// are checked here, whatever `kernels` names.
unsafe fn head(
    qkv: &[f32],
    s: Span,
    dims: Dims,
    h: usize,
    causal: bool,
    kernels: AttentionKernels,
    out: *mut f32,
) {
    SCRATCH.with_borrow_mut(|scratch| {
        #[cfg(target_arch = "x86_64")]
        {
            // The kernel set caps the code; the CPU's features are still checked (a caller may
            // name any set), at the cost of a cached flag each.
            let (isa, bf16) = (kernels.isa, kernels.products == Products::Bf16);
            let avx512 = isa >= Isa::Avx512
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma");
            if avx512 && bf16 && is_x86_feature_detected!("avx512bf16") {
                // SAFETY: avx512f, avx512bw, avx512vl and avx512bf16, every feature `head_bf16`
                // enables, detected just above; the rest is the caller's contract.
                return unsafe { avx512::head_bf16(qkv, s, dims, h, causal, scratch, out) };
            }
            if avx512 {
                // SAFETY: avx512f, avx2 and fma, every feature `head_avx512` enables, detected
                // just above; the rest is the caller's contract.
                return unsafe { head_avx512(qkv, s, dims, h, causal, scratch, out) };
            }
            if isa >= Isa::Avx2
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
            {
                // SAFETY: avx2 and fma detected just above; the rest is the caller's contract.
                return unsafe { head_avx2(qkv, s, dims, h, causal, scratch, out) };
            }
        }
        // SAFETY: the caller's contract; the portable body needs no CPU feature.
        unsafe { head_body::<false>(qkv, s, dims, h, causal, scratch, out) }
    })
}

/// [`head_body`] with the AVX-512 loops.
///
/// # Safety
/// The CPU must have avx512f, avx2 and fma; the rest as for [`head`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn head_avx512(
    qkv: &[f32],
    s: Span,
    dims: Dims,
    h: usize,
    causal: bool,
    scratch: &mut Vec<f32>,
    out: *mut f32,
) {
    // SAFETY: avx512f is enabled here; the rest is the caller's contract.
    unsafe { head_body::<true>(qkv, s, dims, h, causal, scratch, out) }
}

/// [`head_body`]'s portable loops compiled for AVX2, so that they vectorise 8 lanes wide.
///
/// # Safety
/// The CPU must have avx2 and fma; the rest as for [`head`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_avx2(
    qkv: &[f32],
    s: Span,
    dims: Dims,
    h: usize,
    causal: bool,
    scratch: &mut Vec<f32>,
    out: *mut f32,
) {
    // SAFETY: the caller's contract; the portable body needs no CPU feature.
    unsafe { head_body::<false>(qkv, s, dims, h, causal, scratch, out) }
}

/// Queries per register tile.
const QB: usize = 8;
/// Lanes per vector: keys per score tile, head columns per output tile.
const L: usize = 16;

/// One head of one sequence: `qkv` `[T, 3D]`, output rows `[Tq, D]` (queries `q0..q0 + Tq`) at
/// `out`.
///
/// Register-tiled like a small GEMM: scores for `QB` queries x `L` keys accumulate in `QB`
/// vectors over the head dimension, outputs for `QB` queries x `L` columns over the keys. Keys
/// are transposed into the scratch and queries scaled there, both zero-padded to whole tiles;
/// values are read in place (copied, padded, only when the head width is not whole vectors).
///
/// # Safety
/// With `AVX512`, the CPU must have avx512f (inlined into [`head_avx512`]); the rest as for
/// [`head`].
#[inline(always)]
unsafe fn head_body<const AVX512: bool>(
    qkv: &[f32],
    Span { t, q0, tq }: Span,
    Dims { d, heads }: Dims,
    h: usize,
    causal: bool,
    scratch: &mut Vec<f32>,
    out: *mut f32,
) {
    let hd = d / heads;
    let d3 = 3 * d;
    let scale = 1.0 / (hd as f32).sqrt();
    let tp = t.next_multiple_of(L);
    let tqp = tq.next_multiple_of(QB);
    let hp = hd.next_multiple_of(L);
    let copy_v = hd % L != 0;
    // Keys transposed `[hd, tp]`, queries scaled `[tqp, hd]`, probabilities `[QB, tp]`, and
    // (`copy_v`) values `[t, hp]`.
    let need = hd * tp + tqp * hd + QB * tp + if copy_v { t * hp } else { 0 };
    if scratch.len() < need {
        scratch.resize(need, 0.0);
    }
    let (kt, rest) = scratch.split_at_mut(hd * tp);
    let (q, rest) = rest.split_at_mut(tqp * hd);
    let (p, v) = rest.split_at_mut(QB * tp);
    let keys = &qkv[d + h * hd..];
    #[cfg(target_arch = "x86_64")]
    if AVX512 {
        // SAFETY: avx512f (the caller's contract with `AVX512`); the extents, `keys` holding
        // `(t - 1) * d3 + hd` values and `kt` `hd` rows of `tp >= t` (a multiple of 16), are
        // asserted inside.
        unsafe { avx512::transpose(keys, d3, (t, hd), kt, tp) };
    }
    if !AVX512 {
        for c in 0..hd {
            let row = &mut kt[c * tp..][..tp];
            for (dst, &x) in row.iter_mut().zip(keys[c..].iter().step_by(d3)) {
                *dst = x;
            }
            row[t..].fill(0.0);
        }
    }
    let (v, ldv) = if copy_v {
        for j in 0..t {
            let row = &mut v[j * hp..][..hp];
            row[..hd].copy_from_slice(&qkv[j * d3 + 2 * d + h * hd..][..hd]);
            row[hd..].fill(0.0);
        }
        (&v[..t * hp], hp)
    } else {
        (&qkv[2 * d + h * hd..], d3)
    };
    let queries = qkv[q0 * d3 + h * hd..].chunks(d3);
    for (dst, src) in q.chunks_exact_mut(hd).zip(queries).take(tq) {
        for (o, &x) in dst.iter_mut().zip(&src[..hd]) {
            // The reference scales q before the product (`q * scale`, then `q @ k^T`).
            *o = x * scale;
        }
    }
    q[tq * hd..].fill(0.0);
    for i0 in (0..tq).step_by(QB) {
        let rows = QB.min(tq - i0);
        // Keys any query of this block may see.
        let n = if causal { (q0 + i0 + QB).min(t) } else { t };
        let np = n.next_multiple_of(L);
        // Scores `[QB, np]`.
        for j0 in (0..np).step_by(L) {
            let mut acc = [[0f32; L]; QB];
            let qb = &q[i0 * hd..(i0 + QB) * hd];
            #[cfg(target_arch = "x86_64")]
            if AVX512 {
                // SAFETY: avx512f as above. `qb` holds `QB` rows of `hd`; `kt[j0..]` holds
                // `(hd - 1) * tp + 16` values for `j0 + 16 <= np <= tp`.
                unsafe { avx512::tile(qb, hd, &kt[j0..], tp, hd, &mut acc) };
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
        // Softmax per query over its visible keys; masked and padded keys get weight 0 (and the
        // rows past the last query too, so the product below reads only finite numbers).
        for r in 0..QB {
            let row = &mut p[r * tp..r * tp + np];
            if r >= rows {
                row.fill(0.0);
                continue;
            }
            let visible = if causal { q0 + i0 + r + 1 } else { t };
            #[cfg(target_arch = "x86_64")]
            if AVX512 {
                // SAFETY: avx512f as above; the function reads and writes inside its slice.
                unsafe { avx512::softmax(&mut row[..visible]) };
            }
            if !AVX512 {
                softmax(&mut row[..visible]);
            }
            row[visible..].fill(0.0);
        }
        // Outputs `[QB, hd]` = P `[QB, n]` x V `[n, hd]`, one vector of columns at a time.
        for c0 in (0..hp).step_by(L) {
            let mut acc = [[0f32; L]; QB];
            #[cfg(target_arch = "x86_64")]
            if AVX512 {
                // SAFETY: avx512f as above. `p` holds `QB` rows of `tp >= n`; `v[c0..]` holds
                // `(n - 1) * ldv + 16` values: key rows `j < n <= t` of `ldv`, columns
                // `c0..c0 + 16` inside each (the copy's `hp` padded columns, or in place
                // `c0 + 16 <= hd` columns of the row's `h * hd..` values part, `hd` a multiple of
                // 16 then).
                unsafe { avx512::tile(p, tp, &v[c0..], ldv, n, &mut acc) };
            }
            if !AVX512 {
                for j in 0..n {
                    let vv: &[f32; L] = v[j * ldv + c0..][..L].try_into().unwrap();
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let pr = p[r * tp + j];
                        for l in 0..L {
                            acc[l] += pr * vv[l];
                        }
                    }
                }
            }
            let cols = L.min(hd - c0);
            for (r, acc) in acc.iter().enumerate().take(rows) {
                // SAFETY: output row `i0 + r < tq`, columns `h * hd + c0..+ cols <= (h + 1) *
                // hd`: the caller's part of `out`; `acc` is a local row of `L >= cols`.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        acc.as_ptr(),
                        out.add((i0 + r) * d + h * hd + c0),
                        cols,
                    )
                };
            }
        }
    }
}

/// `row = exp(row - max) / sum`, in place.
#[inline(always)]
fn softmax(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0f32;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in row.iter_mut() {
        *x /= sum;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Dims, Span, L, QB};
    use crate::epilogue::exp;
    use crate::simd::{lanes, load16};
    use crate::transpose::transpose16;

    /// [`super::head_body`] with bf16 products: keys as `[hd / 2][tp]` pairs of head columns
    /// (transposed 16 x 16 through registers), scaled queries as `[tqp][hd / 2]` pairs, each
    /// block's probabilities as `[QB][tp / 2]` pairs of keys and values as `[tp / 2][hv]` pairs
    /// of keys; `vdpbf16ps` sums both halves of a pair into an f32 lane.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw, avx512vl and avx512bf16; the rest as for
    /// [`super::head`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) unsafe fn head_bf16(
        qkv: &[f32],
        Span { t, q0, tq }: Span,
        Dims { d, heads }: Dims,
        h: usize,
        causal: bool,
        scratch: &mut Vec<f32>,
        out: *mut f32,
    ) {
        let hd = d / heads;
        let d3 = 3 * d;
        let scale = _mm512_set1_ps(1.0 / (hd as f32).sqrt());
        let (hp, tp, tqp, hv) = (
            hd.div_ceil(2),
            t.next_multiple_of(2 * L),
            tq.next_multiple_of(QB),
            hd.next_multiple_of(L),
        );
        // u32 pairs: keys `[hp][tp]`, queries `[tqp][hp]`, values `[tp / 2][hv]`, probabilities
        // `[QB][tp / 2]`; then f32 probabilities `[QB][tp]`.
        let words = hp * tp + tqp * hp + tp / 2 * hv + QB * tp / 2;
        if scratch.len() < words + QB * tp {
            scratch.resize(words + QB * tp, 0.0);
        }
        let (pairs, p) = scratch.split_at_mut(words);
        let pairs: &mut [u32] = bytemuck::cast_slice_mut(pairs);
        let (kt, rest) = pairs.split_at_mut(hp * tp);
        let (q, rest) = rest.split_at_mut(tqp * hp);
        let (v, pp) = rest.split_at_mut(tp / 2 * hv);
        let row = |j: usize, part: usize| &qkv[j * d3 + part * d + h * hd..][..hd];
        // A pair vector of 32 consecutive values of `x` from `i` (zeros past its end).
        // SAFETY: avx512f is enabled here, and `load16`'s masked loads stay inside `x`; the
        // transmute reinterprets 512 bits as 512 bits.
        let pair32 = |x: &[f32], i: usize, s: __m512| unsafe {
            let (lo, hi) = (load16(x, i), load16(x, i + L));
            let v = _mm512_cvtne2ps_pbh(_mm512_mul_ps(hi, s), _mm512_mul_ps(lo, s));
            std::mem::transmute::<__m512bh, __m512i>(v)
        };
        let one = _mm512_set1_ps(1.0);
        for j0 in (0..tp).step_by(L) {
            for c0 in (0..hp).step_by(L) {
                let block: [__m512; L] = std::array::from_fn(|r| {
                    if j0 + r < t {
                        _mm512_castsi512_ps(pair32(row(j0 + r, 1), 2 * c0, one))
                    } else {
                        _mm512_setzero_ps()
                    }
                });
                // SAFETY: avx512f is enabled here.
                let cols = unsafe { transpose16(block) };
                for (i, col) in cols.iter().enumerate().take(hp - c0) {
                    // SAFETY: key pair row `c0 + i < hp` of `kt` (`[hp][tp]`), its 16 columns
                    // from `j0`, `j0 + 16 <= tp`.
                    unsafe {
                        _mm512_storeu_ps(kt.as_mut_ptr().add((c0 + i) * tp + j0) as *mut f32, *col)
                    };
                }
            }
        }
        for i in 0..tqp {
            for c0 in (0..hp).step_by(L) {
                let v = if i < tq {
                    pair32(row(q0 + i, 0), 2 * c0, scale)
                } else {
                    _mm512_setzero_si512()
                };
                // SAFETY: query row `i < tqp` of `q` (`[tqp][hp]`), the mask writing its pairs
                // `c0..hp` only.
                unsafe {
                    let at = q.as_mut_ptr().add(i * hp + c0) as *mut i32;
                    _mm512_mask_storeu_epi32(at, lanes(hp - c0), v);
                }
            }
        }
        // Value rows 2j and 2j + 1 interleaved: lane c of pair row j holds column c of both.
        // SAFETY: the transmute reinterprets 256 bits as 256 bits.
        let half = |x: __m512| unsafe {
            _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(
                _mm512_cvtneps_pbh(x),
            ))
        };
        for j in 0..tp / 2 {
            for c0 in (0..hv).step_by(L) {
                // SAFETY: avx512f is enabled here, and `load16`'s masked loads stay inside the
                // value row.
                let at = |r: usize| unsafe {
                    if r < t {
                        load16(row(r, 2), c0)
                    } else {
                        _mm512_setzero_ps()
                    }
                };
                let (lo, hi) = (half(at(2 * j)), half(at(2 * j + 1)));
                let pair = _mm512_or_si512(lo, _mm512_slli_epi32::<16>(hi));
                // SAFETY: pair row `j < tp / 2` of `v` (`[tp / 2][hv]`), its 16 columns from
                // `c0`, `c0 + 16 <= hv`.
                unsafe { _mm512_storeu_si512(v.as_mut_ptr().add(j * hv + c0) as *mut _, pair) };
            }
        }
        for i0 in (0..tq).step_by(QB) {
            let rows = QB.min(tq - i0);
            let n = if causal { (q0 + i0 + QB).min(t) } else { t };
            let np = n.next_multiple_of(L);
            for j0 in (0..np).step_by(L) {
                // SAFETY: avx512f and avx512bf16 are enabled here; the extents are asserted
                // inside.
                let acc = unsafe { tile_bf16(&q[i0 * hp..(i0 + QB) * hp], hp, &kt[j0..], tp, hp) };
                for (r, acc) in acc.iter().enumerate() {
                    // SAFETY: row `r < QB` of the probabilities (`[QB][tp]`), its 16 columns
                    // from `j0`, `j0 + 16 <= np <= tp`.
                    unsafe { _mm512_storeu_ps(p.as_mut_ptr().add(r * tp + j0), *acc) };
                }
            }
            for r in 0..QB {
                let prow = &mut p[r * tp..r * tp + np];
                if r < rows {
                    let visible = if causal { q0 + i0 + r + 1 } else { t };
                    // SAFETY: avx512f is enabled here; the function stays inside its slice.
                    unsafe { softmax(&mut prow[..visible]) };
                    prow[visible..].fill(0.0);
                } else {
                    prow.fill(0.0);
                }
                // Pairs of keys (zeros past `np`, whose values are zero pairs too).
                let prow = &p[r * tp..r * tp + np];
                for j0 in (0..tp / 2).step_by(L) {
                    let pair = pair32(prow, 2 * j0, one);
                    // SAFETY: row `r < QB` of the probability pairs (`[QB][tp / 2]`), its 16
                    // columns from `j0`, `j0 + 16 <= tp / 2` (`tp` is a multiple of 32).
                    unsafe {
                        _mm512_storeu_si512(pp.as_mut_ptr().add(r * tp / 2 + j0) as *mut _, pair)
                    };
                }
            }
            for c0 in (0..hd).step_by(L) {
                // SAFETY: avx512f and avx512bf16 are enabled here; the extents are asserted
                // inside.
                let acc = unsafe { tile_bf16(pp, tp / 2, &v[c0..], hv, np / 2) };
                let cols = lanes(hd - c0);
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    // SAFETY: output row `i0 + r < tq`, the mask writing columns
                    // `h * hd + c0..(h + 1) * hd` only: the caller's part of `out`.
                    unsafe {
                        _mm512_mask_storeu_ps(out.add((i0 + r) * d + h * hd + c0), cols, *acc)
                    };
                }
            }
        }
    }

    /// [`super::softmax`] in 16-lane vectors, `exp` included (Cephes's polynomial, ~1 ulp: the
    /// scalar libm calls were a large share of the attention's time).
    ///
    /// # Safety
    /// The CPU must have avx512f.
    #[inline(always)]
    pub(super) unsafe fn softmax(row: &mut [f32]) {
        let n = row.len();
        let at = row.as_mut_ptr();
        let mask = |i: usize| lanes(n - i);
        // SAFETY: avx512f is the caller's contract. Every access is at `i < n` of `row`, masked
        // to the `n - i` values left: inside the slice, which `at` borrows mutably.
        unsafe {
            let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
            for i in (0..n).step_by(L) {
                let x = _mm512_mask_loadu_ps(max, mask(i), at.add(i));
                max = _mm512_max_ps(max, x);
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
            let mut sum = _mm512_setzero_ps();
            for i in (0..n).step_by(L) {
                let m = mask(i);
                let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, at.add(i)), max));
                _mm512_mask_storeu_ps(at.add(i), m, e);
                sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
            }
            let sum = _mm512_set1_ps(_mm512_reduce_add_ps(sum));
            for i in (0..n).step_by(L) {
                let m = mask(i);
                let x = _mm512_maskz_loadu_ps(m, at.add(i));
                _mm512_mask_storeu_ps(at.add(i), m, _mm512_div_ps(x, sum));
            }
        }
    }

    /// `dst[c * ldd + j] = src[j * lds + c]` for `j < rows`, `c < cols`, and 0 for the columns
    /// `rows..` up to the next multiple of 16 (`dst` holds `cols` rows of at least that many):
    /// 16 x 16 blocks through registers (a scalar transpose of the keys, strided loads or stores
    /// either way, was a large share of the attention's time).
    ///
    /// # Safety
    /// The CPU must have avx512f. (The extents are asserted.)
    #[inline(always)]
    pub(super) unsafe fn transpose(
        src: &[f32],
        lds: usize,
        (rows, cols): (usize, usize),
        dst: &mut [f32],
        ldd: usize,
    ) {
        assert!(
            rows == 0
                || cols == 0
                || (src.len() >= (rows - 1) * lds + cols
                    && dst.len() >= (cols - 1) * ldd + rows.next_multiple_of(L)
                    && ldd >= rows.next_multiple_of(L))
        );
        for j0 in (0..rows).step_by(L) {
            for c0 in (0..cols).step_by(L) {
                let mask = lanes(cols - c0);
                // SAFETY: avx512f is the caller's contract. Source row `j0 + r < rows` starts
                // inside `src` (asserted: `(rows - 1) * lds + cols` values), and the mask reads
                // its columns `c0..cols` only.
                let out = unsafe {
                    let block: [__m512; L] = std::array::from_fn(|r| {
                        if j0 + r < rows {
                            _mm512_maskz_loadu_ps(mask, src.as_ptr().add((j0 + r) * lds + c0))
                        } else {
                            _mm512_setzero_ps()
                        }
                    });
                    transpose16(block)
                };
                for (c, v) in out.iter().enumerate().take(cols - c0) {
                    // SAFETY: avx512f as above. Destination row `c0 + c < cols`, its 16 columns
                    // from `j0`, `j0 + 16 <= rows.next_multiple_of(16) <= ldd`: inside `dst`
                    // (asserted: `(cols - 1) * ldd + rows.next_multiple_of(16)` values).
                    unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((c0 + c) * ldd + j0), *v) };
                }
            }
        }
    }

    /// [`tile`] on bf16 pairs: `acc[r] = sum_c a[r * lda + c] . b[c * ldb .. + L]` for `c < k`,
    /// each term the two products of a pair summed in f32 (`vdpbf16ps`).
    ///
    /// # Safety
    /// The CPU must have avx512f and avx512bf16. (The extents are asserted.)
    #[inline(always)]
    unsafe fn tile_bf16(a: &[u32], lda: usize, b: &[u32], ldb: usize, k: usize) -> [__m512; QB] {
        assert!(a.len() >= (QB - 1) * lda + k && b.len() >= (k.max(1) - 1) * ldb + L);
        // SAFETY: the features are the caller's contract. For `c < k` the reads, `L` values of
        // `b` from `c * ldb` and `a[r * lda + c]` for `r < QB`, are inside the slices (asserted
        // above); the transmutes reinterpret 512 bits as 512 bits.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); QB];
            let (ap, bp) = (a.as_ptr(), b.as_ptr());
            for c in 0..k {
                let bv: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(bp.add(c * ldb) as *const _));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*ap.add(r * lda + c) as i32));
                    *acc = _mm512_dpbf16_ps(*acc, av, bv);
                }
            }
            acc
        }
    }

    /// `acc[r] = sum_c a[r * lda + c] * b[c * ldb .. + L]` for `c < k`: `QB` rows of `a` times a
    /// `k x L` panel of `b` (both the score tile, `q k^T`, and the output tile, `p v`).
    ///
    /// # Safety
    /// The CPU must have avx512f; `a` must hold `(QB - 1) * lda + k` values and `b`
    /// `(k - 1) * ldb + L` (checked in debug builds only: this is the attention's innermost
    /// loop).
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
        // SAFETY: avx512f and the extents are the caller's contract: for `c < k`, `L` values of
        // `b` from `c * ldb` and `a[i * lda + c]` for `i < QB` lie inside the slices; each store
        // writes one whole `[f32; L]` row of `acc`.
        unsafe {
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
}

#[cfg(test)]
mod tests {
    use super::{packed_attention, AttentionKernels, Isa, Precision, Products, Queries};

    /// Naive f64 attention of back-to-back sequences `[sum(lens), 3D]`.
    fn naive(
        qkv: &[f32],
        lens: &[usize],
        d: usize,
        heads: usize,
        causal: bool,
        queries: Queries,
    ) -> Vec<f32> {
        let hd = d / heads;
        let mut out = Vec::new();
        let mut start = 0;
        for &t in lens {
            let positions: Vec<usize> = match queries {
                Queries::All => (0..t).collect(),
                Queries::First => vec![0],
                Queries::Last => vec![t - 1],
            };
            for i in positions {
                let mut row = vec![0f32; d];
                for h in 0..heads {
                    let at = |j: usize, part: usize, c: usize| {
                        qkv[(start + j) * 3 * d + part * d + h * hd + c] as f64
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
                        row[h * hd + c] = v as f32;
                    }
                }
                out.extend(row);
            }
            start += t;
        }
        out
    }

    #[test]
    fn matches_naive_attention_on_odd_shapes() {
        let lens = |n: usize, t: usize| vec![t; n];
        for (lens, heads, hd, causal, queries) in [
            (lens(1, 1), 1, 1, false, Queries::All),
            (lens(2, 7), 3, 5, true, Queries::All),
            (lens(3, 50), 2, 64, false, Queries::First),
            (lens(1, 77), 8, 64, true, Queries::All),
            (lens(2, 13), 4, 16, false, Queries::All),
            // Ragged: captions of different lengths back to back.
            (vec![5, 1, 17, 9], 2, 16, true, Queries::All),
            (vec![5, 1, 17, 9], 2, 16, true, Queries::Last),
            (vec![3, 20, 11], 3, 8, false, Queries::First),
            (vec![12, 2], 1, 64, true, Queries::Last),
        ] {
            let d = heads * hd;
            let rows: usize = lens.iter().sum();
            let qkv: Vec<f32> = (0..rows * 3 * d)
                .map(|i| ((i * 7919 % 1000) as f32 / 250.0) - 2.0)
                .collect();
            let want = naive(&qkv, &lens, d, heads, causal, queries);
            // bf16 products (where the CPU has them) round q, k, p and v to 8 bits of
            // mantissa: the outputs (of magnitude ~2 here) move by up to ~1e-2.
            let kernels = Isa::available(Precision::F32).into_iter().flat_map(|isa| {
                [(Products::F32, 2e-5), (Products::Bf16, 3e-2)]
                    .map(|(products, bar)| (AttentionKernels { isa, products }, bar))
            });
            for (kernels, bar) in kernels {
                let got = packed_attention(&qkv, &lens, heads, causal, queries, kernels);
                assert_eq!(got.len(), want.len());
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst < bar,
                    "lens={lens:?} heads={heads} hd={hd} causal={causal} {queries:?} \
                     {kernels:?}: {worst}"
                );
            }
        }
    }
}
