//! SigLIP's `MultiheadAttentionPoolingHead` (transformers `modeling_siglip.py`): a learned probe
//! attends over the image tokens with `nn.MultiheadAttention`, then `x + mlp(layernorm(x))`; the
//! probe's output is the image embedding.

use candle_core::Tensor;

use super::error::ModelError;
use super::footprint::footprint;
use super::layers::{attention, BlockShape, LayerNorm, Layout, Linear};
use super::weights::Weights;

/// The head, built from `visual.attn_pool.*`.
pub(crate) struct AttentionPool {
    /// The probe's query, `probe @ Wq^T + bq`: it depends on no input, so it is computed once.
    query: Tensor, // [1, 1, W]
    /// The key and value rows of the packed input projection, `[W, 2W]`.
    kv_proj: Linear,
    out_proj: Linear,
    ln: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
    shape: BlockShape,
}

footprint!(AttentionPool: query, kv_proj, out_proj, ln, c_fc, c_proj);

impl AttentionPool {
    /// Loads the head for a tower of `shape` (width, heads, activation and epsilon are the
    /// tower's: transformers builds the head from the vision config).
    pub fn load(w: &Weights, shape: BlockShape) -> Result<Self, ModelError> {
        let p = "visual.attn_pool";
        let width = shape.width;
        let in_w = w.values(&format!("{p}.attn.in_proj_weight"))?; // [3W, W]
        let in_b = w.values(&format!("{p}.attn.in_proj_bias"))?; // [3W]
        let probe = w.values(&format!("{p}.probe"))?; // [1, 1, W]
        let (wq, wkv) = in_w.split_at(width * width);
        let (bq, bkv) = in_b.split_at(width);
        // torch's F.linear for one row: a dot product per output, in f32.
        let query: Vec<f32> = wq
            .chunks(width)
            .zip(bq)
            .map(|(row, b)| row.iter().zip(&probe).map(|(a, x)| a * x).sum::<f32>() + b)
            .collect();
        let name = format!("{p}.attn.in_proj_weight");
        let kv_proj = Linear::from_values(
            w,
            &name,
            wkv.to_vec(),
            Layout::OutIn,
            (width, 2 * width),
            Some(bkv.to_vec()),
        )?;
        let query =
            Tensor::from_vec(query, (1, 1, width), w.device()).map_err(|e| ModelError::Candle {
                context: name,
                source: e,
            })?;
        Ok(Self {
            query,
            kv_proj,
            out_proj: Linear::load(w, &format!("{p}.attn.out_proj"))?,
            ln: LayerNorm::load(w, &format!("{p}.ln"), shape.eps)?,
            c_fc: Linear::load(w, &format!("{p}.mlp.c_fc"))?,
            c_proj: Linear::load(w, &format!("{p}.mlp.c_proj"))?,
            shape,
        })
    }

    /// Tokens `[B, T, W]` (after `post_layernorm`) -> `[B, W]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, w) = x.dims3()?;
        let kv = self.kv_proj.forward(x)?; // [B, T, 2W]
        let k = kv.narrow(2, 0, w)?.contiguous()?;
        let v = kv.narrow(2, w, w)?.contiguous()?;
        let q = self.query.broadcast_as((b, 1, w))?.contiguous()?;
        let a = attention(&q, &k, &v, self.shape.heads)?; // [B, 1, W]
        let h = self.out_proj.forward(&a.reshape((b, w))?)?;
        let m = self
            .c_fc
            .forward_act(&self.ln.forward(&h)?, self.shape.act)?;
        self.c_proj.forward_residual(&m, &h)
    }
}
