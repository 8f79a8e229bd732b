//! The ViT image tower of CLIP, open_clip and SigLIP: patchify (a convolution as one matmul),
//! class token where the family has one, positional embedding, `ln_pre` where present, the
//! transformer, then pooling (class token, mean of the patch tokens, or SigLIP's attention-pooling
//! head) with `ln_post` before or after it, and `@ proj` where present.

use candle_core::Tensor;
use clip_checkpoint::VisionPool;

use super::attention_pool::AttentionPool;
use super::config::{VisionConfig, VitPool};
use super::error::ModelError;
use super::footprint::{footprint, Footprint};
use super::layers::{BlockShape, LayerNorm, Layout, Linear, Transformer};
use super::weights::Weights;
use crate::kernels::Queries;

/// How the tokens become one feature (with the head's weights where there is one).
enum Pool {
    ClassToken,
    Average,
    Probe(Box<AttentionPool>),
}

impl Footprint for Pool {
    fn weight_bytes(&self) -> usize {
        match self {
            Pool::Probe(p) => p.weight_bytes(),
            _ => 0,
        }
    }
}

/// The ViT image tower, built from `visual.*` tensors.
pub(crate) struct VisionTransformer {
    patch_embed: Linear,             // [3*P*P, W]
    class_embedding: Option<Tensor>, // [1, 1, W]
    positional_embedding: Tensor,    // [1, G*G (+1), W]
    ln_pre: Option<LayerNorm>,
    transformer: Transformer,
    ln_post: LayerNorm,
    pool: Pool,
    ln_after_pool: bool,
    proj: Option<Linear>, // [W, E]
    width: usize,
    patch: usize,
    resolution: usize,
}

footprint!(VisionTransformer: patch_embed, class_embedding, positional_embedding, ln_pre, transformer, ln_post, pool, proj);

impl VisionTransformer {
    /// Builds the tower from the validated `visual.*` tensors, its linear layers in `w`'s
    /// precision. `config` must be a [`VisionConfig::Vit`].
    pub fn load(
        w: &Weights,
        config: &VisionConfig,
        act: clip_checkpoint::Activation,
        eps: f64,
    ) -> Result<Self, ModelError> {
        let VisionConfig::Vit {
            width,
            layers,
            heads,
            patch,
            resolution,
            class_token,
            patch_bias,
            ln_pre,
            pool,
            ln_after_pool,
            proj,
            ..
        } = *config
        else {
            return Err(ModelError::config("not a vision transformer"));
        };
        let grid = resolution / patch;
        // conv1.weight [W, 3, P, P] read as the [out, in] matrix [W, 3*P*P]: patch vectors are
        // laid out (channel, row, column) like the kernel.
        let k = 3 * patch * patch;
        let ctx = |e| ModelError::Candle {
            context: "visual weights".into(),
            source: e,
        };
        let bias = patch_bias.then_some("visual.conv1.bias");
        let patch_embed =
            Linear::from_tensor(w, "visual.conv1.weight", Layout::OutIn, (k, width), bias)?;
        let class_embedding = if class_token {
            Some(
                w.tensor("visual.class_embedding")?
                    .reshape((1, 1, width))
                    .map_err(ctx)?,
            )
        } else {
            None
        };
        let positional_embedding = w
            .tensor("visual.positional_embedding")?
            .reshape((1, grid * grid + usize::from(class_token), width))
            .map_err(ctx)?;
        let shape = BlockShape {
            width,
            heads,
            act,
            eps,
        };
        let pool = match pool {
            VitPool::Token(VisionPool::ClassToken) => Pool::ClassToken,
            VitPool::Token(VisionPool::Average) => Pool::Average,
            VitPool::AttentionProbe { .. } => Pool::Probe(Box::new(AttentionPool::load(w, shape)?)),
        };
        Ok(Self {
            patch_embed,
            class_embedding,
            positional_embedding,
            ln_pre: ln_pre
                .then(|| LayerNorm::load(w, "visual.ln_pre", eps))
                .transpose()?,
            transformer: Transformer::load(w, "visual.transformer.resblocks", layers, shape)?,
            ln_post: LayerNorm::load(w, "visual.ln_post", eps)?,
            pool,
            ln_after_pool,
            proj: proj
                .then(|| Linear::load_matrix(w, "visual.proj", Layout::InOut, None))
                .transpose()?,
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
            let x = match &self.class_embedding {
                Some(cls) => Tensor::cat(&[&cls.broadcast_as((b, 1, w))?, &tokens], 1)?,
                None => tokens,
            };
            let x = x.broadcast_add(&self.positional_embedding)?;
            match &self.ln_pre {
                Some(ln) => ln.forward(&x)?,
                None => x,
            }
        };
        let t = x.dim(1)?;
        let x = x.reshape((b * t, w))?;
        // LayerNorm is per token, so for the class token only its row need leave the last block.
        let queries = match self.pool {
            Pool::ClassToken => Queries::First,
            _ => Queries::All,
        };
        let x = self.transformer.forward(x, &vec![t; b], false, queries)?;
        let pooled = match &self.pool {
            Pool::ClassToken => self.ln_post.forward(&x)?, // [B, W]
            Pool::Average => {
                let x = x.reshape((b, t, w))?;
                let x = if self.ln_after_pool {
                    x
                } else {
                    self.ln_post.forward(&x)?
                };
                // open_clip's `x[:, 1:].mean(dim=1)`: the class token is not averaged.
                let cls = usize::from(self.class_embedding.is_some());
                let mean = x.narrow(1, cls, t - cls)?.mean(1)?;
                if self.ln_after_pool {
                    self.ln_post.forward(&mean)?
                } else {
                    mean
                }
            }
            Pool::Probe(head) => head.forward(&self.ln_post.forward(&x.reshape((b, t, w))?)?)?,
        };
        match &self.proj {
            Some(proj) => proj.forward(&pooled),
            None => Ok(pooled),
        }
    }
}
