//! The text tower: token + positional embedding, causal transformer, `ln_final` and
//! `@ text_projection` at the end-of-text position (`argmax` of the token ids).

use candle_core::{DType, Device, Tensor};
use clip_checkpoint::Activation;

use super::config::TextConfig;
use super::error::{Context, ModelError};
use super::footprint::footprint;
use super::layers::{LayerNorm, Layout, Linear, Transformer};
use super::weights::Weights;
use crate::kernels::Queries;

/// The text tower, built from the checkpoint's top-level tensors.
pub(crate) struct TextTransformer {
    token_embedding: Tensor, // [V, D], as stored (rows widen exactly to f32 when gathered)
    positional_embedding: Tensor, // [C, D]
    transformer: Transformer,
    ln_final: LayerNorm,
    text_projection: Linear, // [D, E]
}

footprint!(TextTransformer: token_embedding, positional_embedding, transformer, ln_final, text_projection);

impl TextTransformer {
    /// Builds the tower from the validated tensors, its linear layers in `w`'s precision.
    pub fn load(w: &Weights, cfg: &TextConfig, act: Activation) -> Result<Self, ModelError> {
        Ok(Self {
            token_embedding: w.tensor_as_stored("token_embedding.weight")?,
            positional_embedding: w.tensor("positional_embedding")?,
            transformer: Transformer::load(
                w,
                "transformer.resblocks",
                cfg.width,
                cfg.layers,
                cfg.heads,
                act,
            )?,
            ln_final: LayerNorm::load(w, "ln_final")?,
            text_projection: Linear::load_matrix(w, "text_projection", Layout::InOut, None)?,
        })
    }

    /// Token ids `[B][L]` (validated: `L <= context`, ids `< vocab`) -> `[B, E]`.
    ///
    /// The causal mask makes the output at position `p` depend on positions `0..=p` only, so each
    /// row needs only its first `eot + 1` positions, and only the end-of-text position's output:
    /// the rows run unpadded, back to back (the linear layers see `sum(eot + 1)` rows, attention
    /// stays within each caption), and the last block computes the end-of-text rows alone. Same
    /// numbers as the full context, without the padding work.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor, ModelError> {
        let ctx = "encode_text";
        if ids.is_empty() {
            let e = self.text_projection.out_dim();
            return Tensor::zeros((0, e), DType::F32, device).ctx(ctx);
        }
        // torch.argmax: first position of the largest id (the EOT token for CLIP tokens).
        let lens: Vec<usize> = ids
            .iter()
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best + 1
            })
            .collect();
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
            .forward(x, &lens, true, Queries::Last)
            .ctx("text transformer")?; // [B, D]: the end-of-text rows
        let x = self.ln_final.forward(&x).ctx("ln_final")?;
        let out = self.text_projection.forward(&x).ctx("text_projection")?;
        debug_assert_eq!(out.dtype(), DType::F32);
        Ok(out)
    }
}
