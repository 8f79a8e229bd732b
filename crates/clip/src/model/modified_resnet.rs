//! `ModifiedResNet`: 3-conv stem (BN + ReLU each) and 2x2 average pool, Bottleneck stages with
//! anti-aliased strides (average pool after conv2; downsample = AvgPool -> 1x1 conv -> BN), and
//! `AttentionPool2d` (mean token as the query). BatchNorm is in eval mode (running statistics,
//! eps 1e-5).

use candle_core::{Tensor, D};

use super::config::resnet_blocks;
use super::conv::{not_f32_cpu, Conv2d, Finish};
use super::error::{Context, ModelError};
use super::footprint::footprint;
use super::layers::{attention, with_f32, Linear};
use super::weights::Weights;

type Result<T> = std::result::Result<T, ModelError>;

const BN_EPS: f64 = 1e-5;

/// A bias-free convolution followed by an eval-mode BatchNorm, applied as torch's CPU kernel
/// does: `conv(x) * alpha + beta` with, in f32, `alpha = weight * (1 / sqrt(running_var + eps))`
/// and `beta = bias - running_mean * alpha`. (Folding the scale into the kernel is faster but
/// moves the rounding: on the tiny ResNet goldens it moves the outputs measurably further from
/// the reference.)
struct ConvBn {
    kernel: Conv2d,
    alpha: Vec<f32>, // [out]
    beta: Vec<f32>,  // [out]
    padding: usize,
}

footprint!(ConvBn: kernel, alpha, beta);

impl ConvBn {
    fn load(w: &Weights, conv: &str, bn: &str, padding: usize) -> Result<Self> {
        let gamma = w.values(&format!("{bn}.weight"))?;
        let bias = w.values(&format!("{bn}.bias"))?;
        let mean = w.values(&format!("{bn}.running_mean"))?;
        let var = w.values(&format!("{bn}.running_var"))?;
        let out = gamma.len();
        if let Some(v) = var.iter().find(|&&v| v + (BN_EPS as f32) <= 0.0) {
            return Err(ModelError::config(format!(
                "tensor {bn}.running_var holds a negative variance ({v})"
            )));
        }
        let mut alpha = Vec::with_capacity(out);
        let mut beta = Vec::with_capacity(out);
        for o in 0..out {
            let invstd = 1.0f32 / (var[o] + BN_EPS as f32).sqrt();
            let a = invstd * gamma[o];
            alpha.push(a);
            beta.push(bias[o] - mean[o] * a);
        }
        let name = format!("{conv}.weight");
        let weight = w.tensor(&name)?;
        let kernel = Conv2d::new(&weight).ctx(&name)?;
        Ok(Self {
            kernel,
            alpha,
            beta,
            padding,
        })
    }

    /// `conv(x) * alpha + beta`, then `+ residual` if given, then ReLU if `relu`: one pass, as
    /// the convolution's results are copied out (see [`Finish`]).
    fn forward(
        &self,
        x: &Tensor,
        stride: usize,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> candle_core::Result<Tensor> {
        let run = |residual: Option<&[f32]>| {
            let finish = Finish {
                alpha: &self.alpha,
                beta: &self.beta,
                residual,
                relu,
            };
            self.kernel.forward(x, self.padding, stride, &finish)
        };
        match residual {
            Some(r) => with_f32(r, |rs| run(Some(rs)))?.ok_or_else(not_f32_cpu)?,
            None => run(None),
        }
    }
}

/// `Bottleneck`: 1 x 1, 3 x 3 (then the anti-aliasing average pool), 1 x 1 convolutions, the
/// identity (or its `downsample`) added before the last ReLU.
struct Bottleneck {
    c1: ConvBn,
    c2: ConvBn,
    c3: ConvBn,
    downsample: Option<ConvBn>,
    stride: usize,
}

footprint!(Bottleneck: c1, c2, c3, downsample);

impl Bottleneck {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let out = self.c1.forward(x, 1, None, true)?;
        let mut out = self.c2.forward(&out, 1, None, true)?;
        if self.stride > 1 {
            out = out.avg_pool2d(self.stride)?;
        }
        let identity = match &self.downsample {
            Some(ds) => {
                let x = if self.stride > 1 {
                    x.avg_pool2d(self.stride)?
                } else {
                    x.clone()
                };
                ds.forward(&x, 1, None, false)?
            }
            None => x.clone(),
        };
        self.c3.forward(&out, 1, Some(&identity), true)
    }
}

/// The ResNet image tower, built from `visual.*` tensors, all in f32 on candle (see `load`).
pub(crate) struct ModifiedResNet {
    stem: [ConvBn; 3],
    blocks: Vec<Bottleneck>,
    positional_embedding: Tensor, // [1, G*G+1, C]
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    c_proj: Linear,
    heads: usize,
}

footprint!(ModifiedResNet: stem, blocks, positional_embedding, q_proj, k_proj, v_proj, c_proj);

impl ModifiedResNet {
    /// Builds the tower from the validated `visual.*` tensors (in f32 whatever `w`'s precision).
    pub fn load(
        w: &Weights,
        layers: [usize; 4],
        width: usize,
        heads: usize,
        resolution: usize,
    ) -> Result<Self> {
        // The whole ResNet runs in f32 on candle whatever the precision: its convolutions are
        // candle's, and its attention pool is precision-sensitive (its inputs are large: bf16
        // projections put a full-size RN50's image cosine to f32 under the 0.999 bar; even f32
        // summed k-sequentially by the packed kernels, instead of candle's blocked sums, landed
        // outside the 1e-5 relative bar that the reference's own f32 noise meets).
        let w = &w.candle_f32();
        let stem = [
            ConvBn::load(w, "visual.conv1", "visual.bn1", 1)?,
            ConvBn::load(w, "visual.conv2", "visual.bn2", 1)?,
            ConvBn::load(w, "visual.conv3", "visual.bn3", 1)?,
        ];
        let mut blocks = Vec::new();
        for (stage, spec) in resnet_blocks(layers, width) {
            let p = format!("visual.layer{}.{}", stage + 1, spec.index);
            let downsample = if spec.downsample {
                Some(ConvBn::load(
                    w,
                    &format!("{p}.downsample.0"),
                    &format!("{p}.downsample.1"),
                    0,
                )?)
            } else {
                None
            };
            blocks.push(Bottleneck {
                c1: ConvBn::load(w, &format!("{p}.conv1"), &format!("{p}.bn1"), 0)?,
                c2: ConvBn::load(w, &format!("{p}.conv2"), &format!("{p}.bn2"), 1)?,
                c3: ConvBn::load(w, &format!("{p}.conv3"), &format!("{p}.bn3"), 0)?,
                downsample,
                stride: spec.stride,
            });
        }
        let c = width * 32;
        let grid = resolution / 32;
        let positional_embedding = w
            .tensor("visual.attnpool.positional_embedding")?
            .reshape((1, grid * grid + 1, c))
            .ctx("visual.attnpool.positional_embedding")?;
        Ok(Self {
            stem,
            blocks,
            positional_embedding,
            q_proj: Linear::load(w, "visual.attnpool.q_proj")?,
            k_proj: Linear::load(w, "visual.attnpool.k_proj")?,
            v_proj: Linear::load(w, "visual.attnpool.v_proj")?,
            c_proj: Linear::load(w, "visual.attnpool.c_proj")?,
            heads,
        })
    }

    /// `[B, 3, R, R]` f32 -> `[B, E]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.stem[0].forward(x, 2, None, true)?;
        let x = self.stem[1].forward(&x, 1, None, true)?;
        let x = self.stem[2].forward(&x, 1, None, true)?;
        let mut x = x.avg_pool2d(2)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        // AttentionPool2d
        let (b, c, h, w) = x.dims4()?;
        let x = x.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?; // [B, HW, C]
        let mean = x.mean_keepdim(1)?;
        let x = Tensor::cat(&[&mean, &x], 1)?.broadcast_add(&self.positional_embedding)?;
        let q = self.q_proj.forward(&x.narrow(1, 0, 1)?)?;
        let k = self.k_proj.forward(&x)?;
        let v = self.v_proj.forward(&x)?;
        let o = attention(&q, &k, &v, self.heads)?; // [B, 1, C]
        self.c_proj.forward(&o)?.squeeze(D::Minus2)
    }
}
