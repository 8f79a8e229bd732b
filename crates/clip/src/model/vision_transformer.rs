//! `VisionTransformer`: patchify (conv1 without bias, as one matmul), class token, positional
//! embedding, `ln_pre`, transformer, `ln_post` on the class token, `@ proj`.

use candle_core::Tensor;
use clip_checkpoint::Activation;

use super::error::ModelError;
use super::footprint::footprint;
use super::layers::{LayerNorm, Layout, Linear, Transformer};
use super::weights::Weights;
use crate::kernels::Queries;

/// The ViT image tower, built from `visual.*` tensors.
pub(crate) struct VisionTransformer {
    patch_embed: Linear,          // [3*P*P, W]
    class_embedding: Tensor,      // [1, 1, W]
    positional_embedding: Tensor, // [1, G*G+1, W]
    ln_pre: LayerNorm,
    transformer: Transformer,
    ln_post: LayerNorm,
    proj: Linear, // [W, E]
    width: usize,
    patch: usize,
    resolution: usize,
}

footprint!(VisionTransformer: patch_embed, class_embedding, positional_embedding, ln_pre, transformer, ln_post, proj);

impl VisionTransformer {
    /// Builds the tower from the validated `visual.*` tensors, its linear layers in `w`'s
    /// precision.
    pub fn load(
        w: &Weights,
        width: usize,
        layers: usize,
        heads: usize,
        patch: usize,
        resolution: usize,
        act: Activation,
    ) -> Result<Self, ModelError> {
        let grid = resolution / patch;
        // conv1.weight [W, 3, P, P] read as the [out, in] matrix [W, 3*P*P]: patch vectors are
        // laid out (channel, row, column) like the kernel.
        let k = 3 * patch * patch;
        let ctx = |e| ModelError::Candle {
            context: "visual weights".into(),
            source: e,
        };
        let patch_embed =
            Linear::from_tensor(w, "visual.conv1.weight", Layout::OutIn, (k, width), None)?;
        let class_embedding = w
            .tensor("visual.class_embedding")?
            .reshape((1, 1, width))
            .map_err(ctx)?;
        let positional_embedding = w
            .tensor("visual.positional_embedding")?
            .reshape((1, grid * grid + 1, width))
            .map_err(ctx)?;
        Ok(Self {
            patch_embed,
            class_embedding,
            positional_embedding,
            ln_pre: LayerNorm::load(w, "visual.ln_pre")?,
            transformer: Transformer::load(
                w,
                "visual.transformer.resblocks",
                width,
                layers,
                heads,
                act,
            )?,
            ln_post: LayerNorm::load(w, "visual.ln_post")?,
            proj: Linear::load_matrix(w, "visual.proj", Layout::InOut, None)?,
            width,
            patch,
            resolution,
        })
    }

    /// `[B, 3, R, R]` f32 -> `[B, E]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, _, _) = x.dims4()?;
        let (p, g, w) = (self.patch, self.resolution / self.patch, self.width);
        // The patch matrix and the embeddings before `ln_pre` are dropped before the blocks run
        // (the patch matrix alone is a whole reordered copy of the input).
        let x = {
            // [B, 3, G, P, G, P] -> [B, G, G, 3, P, P] -> [B, G*G, 3*P*P]
            let patches = x
                .reshape((b, 3, g, p, g, p))?
                .permute((0, 2, 4, 1, 3, 5))?
                .contiguous()?
                .reshape((b, g * g, 3 * p * p))?;
            let tokens = self.patch_embed.forward(&patches)?; // [B, G*G, W]
            let cls = self.class_embedding.broadcast_as((b, 1, w))?;
            let x = Tensor::cat(&[&cls, &tokens], 1)?.broadcast_add(&self.positional_embedding)?;
            self.ln_pre.forward(&x)?
        };
        let t = x.dim(1)?;
        let x = x.reshape((b * t, w))?;
        let x = self
            .transformer
            .forward(x, &vec![t; b], false, Queries::First)?; // [B, W]
        let x = self.ln_post.forward(&x)?;
        self.proj.forward(&x)
    }
}
