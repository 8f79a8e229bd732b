//! The text tower: token + positional embedding, the transformer (causal in CLIP, bidirectional in
//! SigLIP and open_clip's `no_causal_mask`), `ln_final` and the projection at the pooled position
//! (CLIP's end-of-text token, the `argmax` of the ids; SigLIP's last position).

use candle_core::{DType, Device, Tensor};
use clip_checkpoint::{Activation, TextPool};

use super::config::{TextConfig, TextProjection};
use super::error::{Context, ModelError};
use super::footprint::footprint;
use super::layers::{BlockShape, LayerNorm, Layout, Linear, Transformer};
use super::weights::Weights;
use crate::kernels::Queries;

/// The text tower, built from the checkpoint's top-level tensors.
pub(crate) struct TextTransformer {
    token_embedding: Tensor, // [V, D], as stored (rows widen exactly to f32 when gathered)
    positional_embedding: Tensor, // [C, D]
    transformer: Transformer,
    ln_final: LayerNorm,
    text_projection: Linear, // [D, E]
    causal: bool,
    pool: TextPool,
}

footprint!(TextTransformer: token_embedding, positional_embedding, transformer, ln_final, text_projection);

impl TextTransformer {
    /// Builds the tower from the validated tensors, its linear layers in `w`'s precision.
    pub fn load(
        w: &Weights,
        cfg: &TextConfig,
        act: Activation,
        eps: f64,
    ) -> Result<Self, ModelError> {
        let shape = BlockShape {
            width: cfg.width,
            heads: cfg.heads,
            act,
            eps,
        };
        let text_projection = match cfg.projection {
            TextProjection::Matrix => {
                Linear::load_matrix(w, "text_projection", Layout::InOut, None)?
            }
            TextProjection::Linear => Linear::load(w, "text_projection")?,
        };
        Ok(Self {
            token_embedding: w.tensor_as_stored("token_embedding.weight")?,
            positional_embedding: w.tensor("positional_embedding")?,
            transformer: Transformer::load(w, "transformer.resblocks", cfg.layers, shape)?,
            ln_final: LayerNorm::load(w, "ln_final", eps)?,
            text_projection,
            causal: cfg.causal,
            pool: cfg.pool,
        })
    }

    /// Token ids `[B][L]` (validated: `L <= context`, ids `< vocab`) -> `[B, E]`.
    ///
    /// With the causal mask the output at position `p` depends on positions `0..=p` only, so each
    /// row needs only its first `pooled + 1` positions, and only the pooled position's output:
    /// the rows run unpadded, back to back (the linear layers see `sum(pooled + 1)` rows,
    /// attention stays within each caption), and the last block computes the pooled rows alone.
    /// Same numbers as the full context, without the padding work. Bidirectional towers see every
    /// position (padding included, as the reference feeds it), and the last block computes the
    /// pooled row when it is the first or last.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor, ModelError> {
        let ctx = "encode_text";
        if ids.is_empty() {
            let e = self.text_projection.out_dim();
            return Tensor::zeros((0, e), DType::F32, device).ctx(ctx);
        }
        let pooled: Vec<usize> = ids
            .iter()
            .map(|row| match self.pool {
                // torch.argmax: first position of the largest id (CLIP's end-of-text token).
                TextPool::Argmax => {
                    let mut best = 0;
                    for (i, &v) in row.iter().enumerate() {
                        if v > row[best] {
                            best = i;
                        }
                    }
                    best
                }
                TextPool::First => 0,
                TextPool::Last => row.len() - 1,
            })
            .collect();
        let lens: Vec<usize> = if self.causal {
            pooled.iter().map(|&p| p + 1).collect()
        } else {
            ids.iter().map(Vec::len).collect()
        };
        let queries = match (self.causal, self.pool) {
            (true, _) | (false, TextPool::Last) => Queries::Last,
            (false, TextPool::First) => Queries::First,
            (false, TextPool::Argmax) => Queries::All,
        };
        let flat: Vec<u32> = ids
            .iter()
            .zip(&lens)
            .flat_map(|(row, &t)| row[..t].iter().copied())
            .collect();
        let positions: Vec<u32> = lens.iter().flat_map(|&t| 0..t as u32).collect();
        let n = flat.len();
        let flat = Tensor::from_vec(flat, n, device).ctx(ctx)?;
        let positions = Tensor::from_vec(positions, n, device).ctx(ctx)?;
        let x = self
            .token_embedding
            .index_select(&flat, 0)
            .and_then(|x| x.to_dtype(DType::F32))
            .ctx(ctx)?; // [N, D]
        let pos = self
            .positional_embedding
            .index_select(&positions, 0)
            .ctx(ctx)?;
        let x = (x + pos).ctx(ctx)?;
        let x = self
            .transformer
            .forward(x, &lens, self.causal, queries)
            .ctx("text transformer")?;
        let x = if queries == Queries::All {
            // Every row came out: pick each text's pooled one.
            let mut start = 0;
            let rows: Vec<u32> = lens
                .iter()
                .zip(&pooled)
                .map(|(&t, &p)| {
                    let r = start + p;
                    start += t;
                    r as u32
                })
                .collect();
            let rows = Tensor::from_vec(rows, ids.len(), device).ctx(ctx)?;
            x.index_select(&rows, 0).ctx(ctx)?
        } else {
            x
        }; // [B, D]
        let x = self.ln_final.forward(&x).ctx("ln_final")?;
        let out = self.text_projection.forward(&x).ctx("text_projection")?;
        debug_assert_eq!(out.dtype(), DType::F32);
        Ok(out)
    }
}
