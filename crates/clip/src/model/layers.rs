//! Building blocks shared by the towers: LayerNorm, Linear (`x @ W^T + b` in the model's precision),
//! the MLP activation, packed-projection multi-head attention and `ResidualAttentionBlock`.

use candle_core::{DType, Device, Tensor, D};
use clip_checkpoint::Activation;

use super::error::{Context, ModelError};
use super::footprint::{footprint, Footprint};
use super::weights::Weights;
use crate::kernels::{self, AttentionKernels, PackedMatrix, Queries};
use rayon::prelude::*;

pub(crate) use fused::with_f32;

type Result<T> = std::result::Result<T, ModelError>;

/// `nn.LayerNorm` over the last dimension, computed in two passes (mean, then the variance of
/// the centred values) like torch, not as `E[x^2] - E[x]^2`.
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    /// Epsilon: `nn.LayerNorm`'s 1e-5 in CLIP, the config's (1e-6) in SigLIP.
    eps: f64,
}

footprint!(LayerNorm: weight, bias);

impl LayerNorm {
    /// `{prefix}.weight` and `{prefix}.bias`, in f32.
    pub fn load(w: &Weights, prefix: &str, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.tensor(&format!("{prefix}.weight"))?,
            bias: w.tensor(&format!("{prefix}.bias"))?,
            eps,
        })
    }

    /// The normalised `x` (the fused pass on f32 CPU tensors, candle ops elsewhere).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if let Some(y) = fused::layer_norm(x, &self.weight, &self.bias, self.eps as f32)? {
            return Ok(y);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let inv = (var + self.eps)?.sqrt()?.recip()?;
        xc.broadcast_mul(&inv)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// How a weight matrix is stored in the checkpoint.
#[derive(Clone, Copy)]
pub(crate) enum Layout {
    /// `nn.Linear.weight`, `[out, in]` (also a conv kernel flattened to `[out, in]`).
    OutIn,
    /// A projection used as `x @ p`, `[in, out]`.
    InOut,
}

/// `x @ W + b` over the last dimension (any leading dimensions), in the model's
/// [`Precision`](crate::Precision): [`crate::kernels`] on `W` packed once, or, for f32 on CPUs
/// without AVX-512 ([`kernels::runs_packed`]), candle's GEMM on `W` transposed once to a
/// contiguous `[in, out]`.
pub(crate) enum Linear {
    /// candle's GEMM on a contiguous `[in, out]` f32 matrix.
    F32 {
        /// `[in, out]`.
        w: Tensor,
        /// `[out]`.
        b: Option<Tensor>,
    },
    /// The packed kernels, the bias applied in their epilogue.
    Packed {
        /// `[in, out]`, packed.
        w: PackedMatrix,
        /// `[out]`.
        b: Option<Vec<f32>>,
    },
}

impl Footprint for Linear {
    fn weight_bytes(&self) -> usize {
        match self {
            Linear::F32 { w, b } => w.weight_bytes() + b.weight_bytes(),
            Linear::Packed { w, b } => w.bytes() + b.as_ref().map_or(0, |b| b.weight_bytes()),
        }
    }
}

impl Linear {
    /// The `[k, n]` product matrix: checkpoint tensor `name` (any shape whose elements are
    /// laid out as `[n, k]` for `OutIn`, `[k, n]` for `InOut`), and an optional bias `[n]`.
    pub fn from_tensor(
        w: &Weights,
        name: &str,
        layout: Layout,
        (k, n): (usize, usize),
        bias: Option<&str>,
    ) -> Result<Self> {
        if !kernels::runs_packed(w.precision(), w.isa()) && matches!(layout, Layout::OutIn) {
            // Read straight into candle's `[in, out]` (the checkpoint's transposed reader).
            let v = w.values_transposed_as(name, (n, k))?;
            let b = bias.map(|b| w.tensor(b)).transpose()?;
            return Ok(Linear::F32 {
                w: Tensor::from_vec(v, (k, n), w.device()).ctx(name)?,
                b,
            });
        }
        let values = w.values(name)?;
        let bias = bias.map(|b| w.values(b)).transpose()?;
        Self::from_values(w, name, values, layout, (k, n), bias)
    }

    /// As [`Linear::from_tensor`], from values already read (`name` only labels errors): for a
    /// matrix that is part of a checkpoint tensor, such as the key/value rows of a packed
    /// attention projection.
    pub fn from_values(
        w: &Weights,
        name: &str,
        values: Vec<f32>,
        layout: Layout,
        (k, n): (usize, usize),
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        let (p, isa) = (w.precision(), w.isa());
        if values.len() != k * n || bias.as_ref().is_some_and(|b| b.len() != n) {
            return Err(ModelError::config(format!(
                "{name}: {} values (bias {:?}) do not form a {k} x {n} matrix",
                values.len(),
                bias.as_ref().map(Vec::len)
            )));
        }
        if !kernels::runs_packed(p, isa) {
            // candle's GEMM wants a contiguous `[in, out]`; a transposed view runs slower.
            let v = match layout {
                Layout::OutIn => (0..k * n)
                    .map(|idx| values[(idx % n) * k + idx / n])
                    .collect(),
                Layout::InOut => values,
            };
            let b = bias
                .map(|b| Tensor::from_vec(b, n, w.device()))
                .transpose()
                .ctx(name)?;
            return Ok(Linear::F32 {
                w: Tensor::from_vec(v, (k, n), w.device()).ctx(name)?,
                b,
            });
        }
        let packed = match layout {
            Layout::OutIn => PackedMatrix::pack(k, n, p, isa, |i, j| values[j * k + i]),
            Layout::InOut => PackedMatrix::pack(k, n, p, isa, |i, j| values[i * n + j]),
        };
        Ok(Linear::Packed { w: packed, b: bias })
    }

    /// A checkpoint matrix `name` (`[out, in]` or `[in, out]` per `layout`) and optional bias.
    pub fn load_matrix(
        w: &Weights,
        name: &str,
        layout: Layout,
        bias: Option<&str>,
    ) -> Result<Self> {
        let (k, n) = match (w.shape(name)?, layout) {
            (&[o, i], Layout::OutIn) => (i, o),
            (&[i, o], Layout::InOut) => (i, o),
            (shape, _) => return Err(ModelError::shape(name, shape, "a matrix")),
        };
        Self::from_tensor(w, name, layout, (k, n), bias)
    }

    /// `nn.Linear` weights `{prefix}.weight` (`[out, in]`) and `{prefix}.bias`.
    pub fn load(w: &Weights, prefix: &str) -> Result<Self> {
        Self::load_matrix(
            w,
            &format!("{prefix}.weight"),
            Layout::OutIn,
            Some(&format!("{prefix}.bias")),
        )
    }

    /// Width of the output (`n`).
    pub fn out_dim(&self) -> usize {
        match self {
            Linear::F32 { w, .. } => w.dims()[1],
            Linear::Packed { w, .. } => w.n(),
        }
    }

    /// `x @ w + b`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_with(x, Epilogue::None)
    }

    /// `act(x @ w + b)`, the bias and the activation applied in one pass where possible.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
        self.forward_with(x, Epilogue::Act(act))
    }

    /// `residual + (x @ w + b)`, in one pass where possible.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_with(x, Epilogue::Residual(residual))
    }

    /// `x @ w + b` then `epi`, fused wherever the path allows.
    fn forward_with(&self, x: &Tensor, epi: Epilogue) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let (lead, k) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let mut out = lead.to_vec();
        out.push(self.out_dim());
        match self {
            Linear::F32 { w, b } => {
                let y = x.reshape((rows, k[0]))?.matmul(w)?;
                if let Some(y) = fused::epilogue(&y, b.as_ref(), &epi)? {
                    return y.reshape(out);
                }
                let mut y = y;
                if let Some(b) = b {
                    y = y.broadcast_add(b)?;
                }
                let y = y.reshape(out)?;
                match epi {
                    Epilogue::None => Ok(y),
                    Epilogue::Act(a) => activate(&y, a),
                    Epilogue::Residual(r) => r + y,
                }
            }
            Linear::Packed { w, b } => {
                let residual = match epi {
                    Epilogue::Residual(r) => Some(r.to_dtype(DType::F32)?.contiguous()?),
                    _ => None,
                };
                let base = kernels::Epilogue {
                    bias: b.as_deref(),
                    quick_gelu: matches!(epi, Epilogue::Act(Activation::QuickGelu)),
                    residual: None,
                };
                let x = x.to_dtype(DType::F32)?;
                let y = fused::with_f32(&x, |xs| match &residual {
                    Some(r) => fused::with_f32(r, |rs| {
                        let epi = kernels::Epilogue {
                            residual: Some(rs),
                            ..base
                        };
                        w.matmul(xs, rows, &epi)
                    }),
                    None => Ok(Some(w.matmul(xs, rows, &base))),
                })?;
                let mut y = match y {
                    Some(y) => y?,
                    None => None,
                }
                .ok_or_else(|| {
                    candle_core::Error::Msg("packed linear layers run on the CPU".into())
                })?;
                if let Epilogue::Act(a) = epi {
                    if a != Activation::QuickGelu {
                        fused::activate_in_place(&mut y, a);
                    }
                }
                Tensor::from_vec(y, out, x.device())
            }
        }
    }
}

/// What follows a matmul in [`Linear::forward_with`] (after the bias).
pub(crate) enum Epilogue<'a> {
    /// Nothing.
    None,
    /// The MLP activation.
    Act(Activation),
    /// `residual + y`.
    Residual(&'a Tensor),
}

/// Fused CPU kernels for the element-wise parts of a block: one pass and one output buffer
/// instead of one candle op (and one fresh buffer) per step. Same formulas, same order of f32
/// operations as the candle-op fallbacks. Each returns `None` where it does not apply (not on the
/// CPU, not f32), and the caller takes the candle-op path.
mod fused {
    use candle_core::{DType, Storage, Tensor};
    use clip_checkpoint::Activation;
    use rayon::prelude::*;

    use super::Epilogue;

    /// Elements per parallel task: enough work to amortise the task, small enough to balance.
    const MIN_ELEMS_PER_TASK: usize = 1 << 15;

    /// Runs `f` on the contiguous f32 CPU data of `t` (made contiguous if needed).
    pub(crate) fn with_f32<R>(
        t: &Tensor,
        f: impl FnOnce(&[f32]) -> R,
    ) -> candle_core::Result<Option<R>> {
        if t.dtype() != DType::F32 || !t.device().is_cpu() {
            return Ok(None);
        }
        let t = t.contiguous()?;
        let (storage, layout) = t.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            return Ok(None);
        };
        let Some((a, b)) = layout.contiguous_offsets() else {
            return Ok(None);
        };
        let v = cpu.as_slice::<f32>()?;
        Ok(Some(f(&v[a..b])))
    }

    /// Rows of `cols` values per parallel task (at least one).
    fn rows_per_task(cols: usize) -> usize {
        (MIN_ELEMS_PER_TASK / cols.max(1)).max(1)
    }

    /// QuickGELU in candle's order of f32 operations.
    fn quick_gelu(x: f32) -> f32 {
        // x * sigmoid(1.702 x), sigmoid(z) = 1 / (exp(-z) + 1): candle's affine + sigmoid + mul.
        let z = x * 1.702 + 0.0;
        x * (1.0 / ((-z).exp() + 1.0))
    }

    /// The tanh-approximated GELU as `x * sigmoid(2u)`, `u = sqrt(2/pi) (x + 0.044715 x^3)`:
    /// the same function as `0.5 x (1 + tanh(u))` without the subtraction that loses precision
    /// near 0, on [`exp_f32`]. libm's `tanhf` was a quarter of a SigLIP tower's time; this stays
    /// within 2e-6 (relative) of the exact function and vectorises.
    fn gelu_tanh(x: f32) -> f32 {
        #[allow(clippy::excessive_precision)]
        const SQRT_TWO_OVER_PI: f32 = 0.79788456080286535587989211986876373;
        let u = SQRT_TWO_OVER_PI * x * (1.0 + 0.044715 * x * x);
        x / (1.0 + exp_f32(-2.0 * u))
    }

    /// `e^x` in f32 without a libm call, so that loops over it vectorise: Cephes' `expf`
    /// (range reduction by `ln 2` in two parts, a degree-6 polynomial, the power of two put in
    /// the exponent bits), within 2 ulp over the clamped range; rounding to the nearest integer
    /// by the 1.5 * 2^23 trick, which needs no SSE4.1.
    #[allow(clippy::excessive_precision)] // Cephes' coefficients, as published
    fn exp_f32(x: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
        let x = x.clamp(-87.0, 88.0);
        let n = (x * LOG2E + ROUND) - ROUND;
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4_f32;
        p = p * r + 1.398_2e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 5.000_000_1e-1;
        let y = p * r * r + r + 1.0;
        y * f32::from_bits(((n as i32 + 127) as u32) << 23)
    }

    #[cfg(test)]
    #[test]
    fn fast_gelu_tanh_stays_close_to_the_exact_function() {
        let reference = |x: f32| {
            let x = f64::from(x);
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            0.5 * x * (1.0 + u.tanh())
        };
        let mut worst = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let (ours, want) = (f64::from(gelu_tanh(x)), reference(x));
            worst = worst.max((ours - want).abs() / want.abs().max(1e-3));
        }
        assert!(worst < 2e-6, "relative error {worst}");
        for x in [-1e4f32, -100.0, 100.0, 1e4] {
            assert!(gelu_tanh(x).is_finite());
        }
        let e = (-86..=87).map(|i| {
            let x = i as f32 + 0.37;
            ((f64::from(exp_f32(x)) - f64::from(x).exp()) / f64::from(x).exp()).abs()
        });
        assert!(e.fold(0f64, f64::max) < 1e-6);
    }

    /// candle's `gelu_erf` on one f32, with candle's own `erf`.
    fn gelu_erf(x: f32) -> f32 {
        (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * x
    }

    /// The activation of one value, the same f32 operations as candle's op for it.
    pub(super) fn act_fn(act: Activation) -> fn(f32) -> f32 {
        match act {
            Activation::QuickGelu => quick_gelu,
            Activation::Gelu => gelu_erf,
            Activation::GeluTanh => gelu_tanh,
        }
    }

    /// `act` applied in place, in parallel. candle runs its unary ops on one thread, which made
    /// the MLP activation a large share of the time of towers whose activation is not fused into
    /// the GEMM's epilogue (SigLIP's tanh GELU, open_clip's exact GELU).
    pub(super) fn activate_in_place(v: &mut [f32], act: Activation) {
        let f = act_fn(act);
        v.par_chunks_mut(MIN_ELEMS_PER_TASK)
            .for_each(|c| c.iter_mut().for_each(|x| *x = f(*x)));
    }

    /// `y + b` (row-broadcast) then the epilogue, for a `[rows, n]` matmul output `y`.
    pub(super) fn epilogue(
        y: &Tensor,
        b: Option<&Tensor>,
        epi: &Epilogue,
    ) -> candle_core::Result<Option<Tensor>> {
        if matches!(epi, Epilogue::None) && b.is_none() {
            return Ok(Some(y.clone()));
        }
        let (rows, n) = y.dims2()?;
        let bias = match b {
            Some(b) => match with_f32(b, |s| s.to_vec())? {
                Some(v) if v.len() == n => Some(v),
                _ => return Ok(None),
            },
            None => None,
        };
        let residual = match epi {
            Epilogue::Residual(r) => {
                if r.elem_count() != rows * n || r.dtype() != DType::F32 || !r.device().is_cpu() {
                    return Ok(None);
                }
                Some(r.contiguous()?)
            }
            _ => None,
        };
        let act = match epi {
            Epilogue::Act(a) => Some(act_fn(*a)),
            _ => None,
        };
        let out = with_f32(y, |ys| -> candle_core::Result<Vec<f32>> {
            let mut out = vec![0f32; ys.len()];
            let chunk = rows_per_task(n) * n;
            let mut body = |res: Option<&[f32]>| {
                out.par_chunks_mut(chunk).enumerate().for_each(|(ci, o)| {
                    let start = ci * chunk;
                    let yc = &ys[start..start + o.len()];
                    for (r, (orow, yrow)) in o.chunks_mut(n).zip(yc.chunks(n)).enumerate() {
                        match &bias {
                            Some(bv) => {
                                for ((o, &y), &b) in orow.iter_mut().zip(yrow).zip(bv) {
                                    *o = y + b;
                                }
                            }
                            None => orow.copy_from_slice(yrow),
                        }
                        if let Some(f) = act {
                            for o in orow.iter_mut() {
                                *o = f(*o);
                            }
                        }
                        if let Some(res) = res {
                            let off = start + r * n;
                            for (o, &x) in orow.iter_mut().zip(&res[off..off + n]) {
                                // candle: residual + y (the same sum: f32 addition commutes)
                                *o += x;
                            }
                        }
                    }
                });
            };
            match &residual {
                Some(r) => match with_f32(r, |rs| body(Some(rs)))? {
                    Some(()) => {}
                    None => return Err(candle_core::Error::Msg("residual not on the CPU".into())),
                },
                None => body(None),
            }
            Ok(out)
        })?;
        match out {
            Some(out) => Ok(Some(Tensor::from_vec(out?, (rows, n), y.device())?)),
            None => Ok(None),
        }
    }

    /// A sum in 16 interleaved partial sums (vectorisable; a strict left-to-right f32 sum is not),
    /// added pairwise at the end. Differs from the sequential sum by rounding only.
    fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
        const LANES: usize = 16;
        let mut acc = [0f32; LANES];
        let chunks = xs.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a += f(x);
            }
        }
        for (a, &x) in acc.iter_mut().zip(rest) {
            *a += f(x);
        }
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                acc[i] += acc[i + width];
            }
        }
        acc[0]
    }

    /// LayerNorm over the last dimension in two passes (mean, then the variance of the centred
    /// values), as the candle-op path.
    pub(super) fn layer_norm(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f32,
    ) -> candle_core::Result<Option<Tensor>> {
        let n = match x.dims().last() {
            Some(&n) if n > 0 => n,
            _ => return Ok(None),
        };
        let (Some(wv), Some(bv)) = (with_f32(w, |s| s.to_vec())?, with_f32(b, |s| s.to_vec())?)
        else {
            return Ok(None);
        };
        if wv.len() != n || bv.len() != n {
            return Ok(None);
        }
        let out = with_f32(x, |xs| {
            let mut out = vec![0f32; xs.len()];
            let chunk = rows_per_task(n) * n;
            out.par_chunks_mut(chunk)
                .zip(xs.par_chunks(chunk))
                .for_each(|(o, xc)| {
                    for (orow, xrow) in o.chunks_mut(n).zip(xc.chunks(n)) {
                        let mean = lane_sum(xrow, |x| x) / n as f32;
                        for (o, &x) in orow.iter_mut().zip(xrow) {
                            *o = x - mean;
                        }
                        let var = lane_sum(orow, |c| c * c) / n as f32;
                        let inv = 1.0 / (var + eps).sqrt();
                        for ((o, &w), &b) in orow.iter_mut().zip(&wv).zip(&bv) {
                            *o = *o * inv * w + b;
                        }
                    }
                });
            out
        })?;
        match out {
            Some(out) => Ok(Some(Tensor::from_vec(out, x.dims(), x.device())?)),
            None => Ok(None),
        }
    }
}

/// The MLP activation.
pub(crate) fn activate(x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    match act {
        // x * sigmoid(1.702 x), sigmoid = 1 / (1 + exp(-x)) as torch.
        Activation::QuickGelu => x.mul(&candle_nn::ops::sigmoid(&x.affine(1.702, 0.0)?)?),
        Activation::Gelu => x.gelu_erf(),
        // candle's `gelu` is the tanh approximation, torch's `gelu(approximate="tanh")`.
        Activation::GeluTanh => x.gelu(),
    }
}

/// `[B, T, H*hd]` -> `[B*H, T, hd]` (contiguous).
fn split_heads(x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b * heads, t, d / heads))
}

/// Scaled dot-product attention of `q [B, Tq, D]` over `k, v [B, T, D]` with `heads` heads;
/// returns `[B, Tq, D]` before the output projection. (The transformer blocks run the fused
/// [`kernels::packed_attention`]; this serves the ResNet's attention pool, whose query is the
/// pooled feature, not a row of a packed projection.)
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
) -> candle_core::Result<Tensor> {
    let (b, tq, d) = q.dims3()?;
    let hd = d / heads;
    let scale = 1.0 / (hd as f64).sqrt();
    let q = split_heads(&q.affine(scale, 0.0)?, heads)?;
    let k = split_heads(k, heads)?;
    let v = split_heads(v, heads)?;
    let scores = q.matmul(&k.t()?)?;
    let p = candle_nn::ops::softmax_last_dim(&scores)?;
    let o = p.matmul(&v)?; // [B*H, Tq, hd]
    o.reshape((b, heads, tq, hd))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, tq, d))
}

/// What every block of one tower shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockShape {
    /// Residual stream width.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub act: Activation,
    /// LayerNorm epsilon.
    pub eps: f64,
}

/// `ResidualAttentionBlock`: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`, with
/// `nn.MultiheadAttention`'s packed `in_proj_weight` `[3D, D]` (q, k, v) and `out_proj`.
pub(crate) struct ResidualAttentionBlock {
    ln_1: LayerNorm,
    in_proj: Linear,
    out_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
    heads: usize,
    width: usize,
    act: Activation,
    /// Attention's code: the model's kernel set, its products' arithmetic from the precision.
    attention: AttentionKernels,
}

footprint!(ResidualAttentionBlock: ln_1, in_proj, out_proj, ln_2, c_fc, c_proj);

impl ResidualAttentionBlock {
    /// The block `{prefix}` (`ln_1`, `attn`, `ln_2`, `mlp`), its linear layers in `w`'s
    /// precision and its attention on the matching [`AttentionKernels`].
    pub fn load(w: &Weights, prefix: &str, shape: BlockShape) -> Result<Self> {
        let in_proj = Linear::load_matrix(
            w,
            &format!("{prefix}.attn.in_proj_weight"),
            Layout::OutIn,
            Some(&format!("{prefix}.attn.in_proj_bias")),
        )?;
        Ok(Self {
            ln_1: LayerNorm::load(w, &format!("{prefix}.ln_1"), shape.eps)?,
            in_proj,
            out_proj: Linear::load(w, &format!("{prefix}.attn.out_proj"))?,
            ln_2: LayerNorm::load(w, &format!("{prefix}.ln_2"), shape.eps)?,
            c_fc: Linear::load(w, &format!("{prefix}.mlp.c_fc"))?,
            c_proj: Linear::load(w, &format!("{prefix}.mlp.c_proj"))?,
            heads: shape.heads,
            width: shape.width,
            act: shape.act,
            attention: AttentionKernels::for_model(w.precision(), w.isa()),
        })
    }

    /// `x`: the rows of every sequence back to back, `[sum(lens), D]`; returns the rows of the
    /// `queries` positions (`[sum(lens), D]` for all, one row per sequence otherwise). `causal`:
    /// position `p` attends to `0..=p` only (the text tower). Every position is still a key and a
    /// value, so a first- or last-only block gives those rows of the full result while computing
    /// its out-projection and MLP on them alone.
    ///
    /// `x` is taken by value and every intermediate is dropped as soon as its consumer has run:
    /// the peak holds the residual stream and the MLP's hidden rows, not every buffer of the block
    /// (the LayerNorm output, `qkv` and the attention output lived to the end before, raising the
    /// peak by several activation-sized buffers).
    pub fn forward(
        &self,
        x: Tensor,
        lens: &[usize],
        causal: bool,
        queries: Queries,
    ) -> candle_core::Result<Tensor> {
        let a = {
            let qkv = self.in_proj.forward(&self.ln_1.forward(&x)?)?; // [N, 3D]
            fused::with_f32(&qkv, |s| {
                kernels::packed_attention(s, lens, self.heads, causal, queries, self.attention)
            })?
            .ok_or_else(|| candle_core::Error::Msg("attention runs on f32 CPU tensors".into()))?
        };
        let rows = a.len() / self.width;
        let a = Tensor::from_vec(a, (rows, self.width), x.device())?;
        let residual = match queries {
            Queries::All => x,
            _ => {
                let mut at = 0;
                let picked: Vec<u32> = lens
                    .iter()
                    .map(|&t| {
                        let row = if queries == Queries::First {
                            at
                        } else {
                            at + t - 1
                        };
                        at += t;
                        row as u32
                    })
                    .collect();
                let picked = x.index_select(&Tensor::from_vec(picked, rows, x.device())?, 0)?;
                drop(x);
                picked
            }
        };
        let x = self.out_proj.forward_residual(&a, &residual)?;
        drop((a, residual));
        let m = self.c_fc.forward_act(&self.ln_2.forward(&x)?, self.act)?;
        self.c_proj.forward_residual(&m, &x)
    }
}

/// A stack of blocks.
pub(crate) struct Transformer {
    /// `resblocks`, in order.
    pub blocks: Vec<ResidualAttentionBlock>,
}

footprint!(Transformer: blocks);

impl Transformer {
    /// Blocks `{prefix}.0..{prefix}.{layers}`.
    pub fn load(w: &Weights, prefix: &str, layers: usize, shape: BlockShape) -> Result<Self> {
        // Blocks are independent: converting (and packing) their weights in parallel spreads
        // the start-up over the cores.
        let blocks = (0..layers)
            .into_par_iter()
            .map(|i| ResidualAttentionBlock::load(w, &format!("{prefix}.{i}"), shape))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { blocks })
    }

    /// All blocks over the rows of back-to-back sequences `x` `[sum(lens), D]` (see
    /// [`ResidualAttentionBlock::forward`]); the last block computes only the `queries` rows.
    pub fn forward(
        &self,
        mut x: Tensor,
        lens: &[usize],
        causal: bool,
        queries: Queries,
    ) -> candle_core::Result<Tensor> {
        let n = self.blocks.len();
        for (i, b) in self.blocks.iter().enumerate() {
            let q = if i + 1 == n { queries } else { Queries::All };
            x = b.forward(x, lens, causal, q)?;
        }
        Ok(x)
    }
}

/// Ensures an input tensor is f32 on `device`.
pub(crate) fn to_f32(x: &Tensor, device: &Device, what: &str) -> Result<Tensor> {
    let x = if x.dtype() == DType::F32 {
        x.clone()
    } else {
        x.to_dtype(DType::F32).ctx(what)?
    };
    x.to_device(device).ctx(what)
}
