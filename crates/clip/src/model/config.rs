//! Hyper-parameters, inferred from tensor shapes exactly as the reference `clip.model.build_model`
//! does, and the table of every tensor (name and shape) the inferred architecture needs.

use std::collections::BTreeSet;

use clip_checkpoint::{Activation, ArchHints, StateDict, TextPool, VisionPool};

use super::error::ModelError;

/// The image tower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisionConfig {
    /// `VisionTransformer` (checkpoint has `visual.proj`).
    Vit {
        /// Residual stream width (`visual.conv1.weight.shape[0]`).
        width: usize,
        /// Transformer blocks.
        layers: usize,
        /// Attention heads (width / 64 unless the checkpoint's config says otherwise).
        heads: usize,
        /// Side of a square patch in pixels (the stride of `conv1`).
        patch: usize,
        /// Side of the square input image in pixels.
        resolution: usize,
        /// Hidden width of the blocks' MLP (`4 * width` in CLIP; SigLIP's configs choose).
        mlp_width: usize,
        /// Whether a class token leads the patch tokens (CLIP; SigLIP has none).
        class_token: bool,
        /// Whether the patch embedding has a bias (SigLIP's `Conv2d` does, CLIP's does not).
        patch_bias: bool,
        /// Whether `ln_pre` normalises the tokens before the blocks (open_clip `no_ln_pre`).
        ln_pre: bool,
        /// How the tokens become one feature.
        pool: VitPool,
        /// Whether `ln_post` comes after pooling (open_clip `final_ln_after_pool`).
        ln_after_pool: bool,
        /// Whether the pooled feature is projected by `visual.proj` (CLIP) or is the embedding
        /// itself (SigLIP's head output).
        proj: bool,
    },
    /// `ModifiedResNet`: `layers` blocks per stage, stem `width`, attention-pool `heads`.
    ResNet {
        /// Bottleneck blocks in each of the four stages.
        layers: [usize; 4],
        /// Channels of the stem (the stages have 4x, 8x, 16x, 32x after expansion).
        width: usize,
        /// Heads of the attention pool.
        heads: usize,
        /// Side of the square input image in pixels.
        resolution: usize,
    },
}

/// How a ViT's tokens become one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VitPool {
    /// The class token, or the mean of the patch tokens (open_clip `pool_type`).
    Token(VisionPool),
    /// SigLIP's `MultiheadAttentionPoolingHead` (`visual.attn_pool.*`): a learned probe attends
    /// over the tokens, then a residual MLP; its MLP hidden width.
    AttentionProbe {
        /// Hidden width of the head's MLP.
        mlp_width: usize,
    },
}

/// How the pooled text feature becomes the embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProjection {
    /// `x @ text_projection` (`[width, embed]`, no bias): CLIP.
    Matrix,
    /// `nn.Linear` `text_projection.weight` `[embed, width]` with a bias: SigLIP's text head,
    /// open_clip `proj_bias`.
    Linear,
}

/// The text tower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextConfig {
    /// Residual stream width (`ln_final.weight.shape[0]`).
    pub width: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads (width / 64 unless the checkpoint's config says otherwise).
    pub heads: usize,
    /// Tokens per text (`positional_embedding.shape[0]`).
    pub context_length: usize,
    /// Rows of the token embedding; every id must be below it.
    pub vocab_size: usize,
    /// Hidden width of the blocks' MLP.
    pub mlp_width: usize,
    /// Whether position `p` attends to `0..=p` only (CLIP) or to every position (SigLIP).
    pub causal: bool,
    /// Which position is pooled.
    pub pool: TextPool,
    /// How the pooled feature is projected.
    pub projection: TextProjection,
}

/// Everything needed to build a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The image tower.
    pub vision: VisionConfig,
    /// The text tower.
    pub text: TextConfig,
    /// Width of the joint embedding space (`text_projection.shape[1]`).
    pub embed_dim: usize,
    /// MLP activation of every transformer block (both towers).
    pub activation: Activation,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// Whether the checkpoint has a `logit_bias` (SigLIP's sigmoid loss): logits are
    /// `scale * cos + bias`, probabilities sigmoids.
    pub logit_bias: bool,
}

/// The shape of a tensor, or `NotFound` / wrong rank as errors.
fn shape_of<'a>(state: &'a StateDict, name: &str) -> Result<&'a [usize], ModelError> {
    state
        .get(name)
        .map(|t| t.shape())
        .ok_or_else(|| ModelError::missing(name))
}

/// `shape[axis]` of a tensor that must have `rank` dimensions (`what` describes them for errors).
fn dim(
    state: &StateDict,
    name: &str,
    rank: usize,
    axis: usize,
    what: &str,
) -> Result<usize, ModelError> {
    let s = shape_of(state, name)?;
    if s.len() != rank {
        return Err(ModelError::shape(name, s, what));
    }
    Ok(s[axis])
}

/// Number of distinct `<prefix><index>.` indices (the reference: `len(set(k.split(".")[2] ...))`).
fn count_blocks(state: &StateDict, prefix: &str) -> usize {
    state
        .names()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next())
        .collect::<BTreeSet<_>>()
        .len()
}

fn heads_for(
    what: &str,
    width: usize,
    hint: Option<usize>,
    default: usize,
) -> Result<usize, ModelError> {
    let heads = hint.unwrap_or(default);
    if width.checked_rem(heads) != Some(0) {
        return Err(ModelError::config(format!(
            "{what} width {width} cannot be split into {heads} attention heads{}",
            if hint.is_some() {
                " (from the checkpoint's config)"
            } else {
                " (heads = width / 64, as the reference infers)"
            }
        )));
    }
    Ok(heads)
}

/// `round(sqrt(n))`, as Python's `round((n) ** 0.5)`.
fn round_sqrt(n: usize) -> usize {
    (n as f64).sqrt().round() as usize
}

impl ModelConfig {
    /// Infers the architecture from OpenAI-named tensors, as `clip.model.build_model` does
    /// (heads = width / 64 for the text tower and ViTs, width * 32 / 64 for the ResNet
    /// attention pool), with `hints` overriding heads and activation where a config said so.
    /// `hints.vision_heads` sets the ViT heads or, for a ResNet, the attention-pool heads.
    /// The embedding width is read from the image tower's projection (so a wrong
    /// `text_projection` is reported as that tensor's shape error).
    pub fn infer(state: &StateDict, hints: &ArchHints) -> Result<ModelConfig, ModelError> {
        let probe = state.contains("visual.attn_pool.probe");
        let (vision, embed_dim) = if state.contains("visual.proj") || probe {
            const CONV: &str = "[width, 3, patch, patch]";
            let width = dim(state, "visual.conv1.weight", 4, 0, CONV)?;
            let patch = dim(state, "visual.conv1.weight", 4, 3, CONV)?;
            let layers = state
                .names()
                .filter(|k| k.starts_with("visual.") && k.ends_with(".attn.in_proj_weight"))
                .filter(|k| k.starts_with("visual.transformer."))
                .count();
            let class_token = state.contains("visual.class_embedding");
            let cls = usize::from(class_token);
            let pos_shape = if class_token {
                "[grid * grid + 1, width]"
            } else {
                "[grid * grid, width]"
            };
            let positions = dim(state, "visual.positional_embedding", 2, 0, pos_shape)?;
            if patch == 0 {
                let s = shape_of(state, "visual.conv1.weight")?;
                return Err(ModelError::shape("visual.conv1.weight", s, CONV));
            }
            if positions < cls + 1 {
                let s = shape_of(state, "visual.positional_embedding")?;
                return Err(ModelError::shape(
                    "visual.positional_embedding",
                    s,
                    pos_shape,
                ));
            }
            let resolution = patch * round_sqrt(positions - cls);
            if layers == 0 {
                return Err(ModelError::missing(
                    "visual.transformer.resblocks.0.attn.in_proj_weight",
                ));
            }
            let mlp_width = dim(
                state,
                "visual.transformer.resblocks.0.mlp.c_fc.weight",
                2,
                0,
                "[mlp_width, width]",
            )?;
            let heads = heads_for("vision transformer", width, hints.vision_heads, width / 64)?;
            let pool = if probe {
                VitPool::AttentionProbe {
                    mlp_width: dim(
                        state,
                        "visual.attn_pool.mlp.c_fc.weight",
                        2,
                        0,
                        "[mlp_width, width]",
                    )?,
                }
            } else {
                VitPool::Token(hints.vision_pool)
            };
            let proj = state.contains("visual.proj");
            let embed = if proj {
                dim(state, "visual.proj", 2, 1, "[width, embed_dim]")?
            } else {
                width
            };
            (
                VisionConfig::Vit {
                    width,
                    layers,
                    heads,
                    patch,
                    resolution,
                    mlp_width,
                    class_token,
                    patch_bias: state.contains("visual.conv1.bias"),
                    ln_pre: state.contains("visual.ln_pre.weight"),
                    pool,
                    ln_after_pool: hints.vision_ln_after_pool,
                    proj,
                },
                embed,
            )
        } else if state.names().any(|k| k.starts_with("visual.layer1.")) {
            let mut layers = [0usize; 4];
            for (b, n) in layers.iter_mut().enumerate() {
                *n = count_blocks(state, &format!("visual.layer{}.", b + 1));
                if *n == 0 {
                    return Err(ModelError::missing(format!(
                        "visual.layer{}.0.conv1.weight",
                        b + 1
                    )));
                }
            }
            let width = dim(
                state,
                "visual.layer1.0.conv1.weight",
                4,
                0,
                "[width, width, 1, 1]",
            )?;
            let pe = "visual.attnpool.positional_embedding";
            let positions = dim(state, pe, 2, 0, "[grid * grid + 1, width * 32]")?;
            let grid = round_sqrt(positions.saturating_sub(1));
            if positions < 2 || grid * grid + 1 != positions {
                return Err(ModelError::shape(
                    pe,
                    shape_of(state, pe)?,
                    "[grid * grid + 1, width * 32]",
                ));
            }
            let embed = dim(
                state,
                "visual.attnpool.c_proj.weight",
                2,
                0,
                "[embed_dim, width * 32]",
            )?;
            if width < 2 {
                return Err(ModelError::config(format!(
                    "ResNet width {width} is too small"
                )));
            }
            let heads = heads_for(
                "ResNet attention pool",
                width * 32,
                hints.vision_heads,
                width * 32 / 64,
            )?;
            (
                VisionConfig::ResNet {
                    layers,
                    width,
                    heads,
                    resolution: grid * 32,
                },
                embed,
            )
        } else {
            return Err(ModelError::missing("visual.proj"));
        };

        let context_length = dim(
            state,
            "positional_embedding",
            2,
            0,
            "[context_length, width]",
        )?;
        let vocab_size = dim(state, "token_embedding.weight", 2, 0, "[vocab_size, width]")?;
        let width = dim(state, "ln_final.weight", 1, 0, "[width]")?;
        let layers = count_blocks(state, "transformer.resblocks.");
        if layers == 0 {
            return Err(ModelError::missing(
                "transformer.resblocks.0.attn.in_proj_weight",
            ));
        }
        let heads = heads_for("text transformer", width, hints.text_heads, width / 64)?;
        let mlp_width = dim(
            state,
            "transformer.resblocks.0.mlp.c_fc.weight",
            2,
            0,
            "[mlp_width, width]",
        )?;
        let projection = if state.contains("text_projection.weight") {
            TextProjection::Linear
        } else {
            TextProjection::Matrix
        };
        if context_length == 0 || vocab_size == 0 || embed_dim == 0 {
            return Err(ModelError::config(format!(
                "degenerate sizes: context length {context_length}, vocabulary {vocab_size}, embedding {embed_dim}"
            )));
        }
        let text = TextConfig {
            width,
            layers,
            heads,
            context_length,
            vocab_size,
            mlp_width,
            causal: hints.causal_text,
            pool: hints.text_pool,
            projection,
        };
        Ok(ModelConfig {
            vision,
            text,
            embed_dim,
            activation: hints.activation,
            layer_norm_eps: hints.layer_norm_eps,
            logit_bias: state.contains("logit_bias"),
        })
    }

    /// Side of the square input image in pixels.
    pub fn image_resolution(&self) -> usize {
        match self.vision {
            VisionConfig::Vit { resolution, .. } | VisionConfig::ResNet { resolution, .. } => {
                resolution
            }
        }
    }

    /// Every tensor the architecture reads, with its exact shape, in a fixed order
    /// (vision tower, text tower, `logit_scale`). Other tensors of a checkpoint are ignored.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut t: Vec<(String, Vec<usize>)> = Vec::new();
        let e = self.embed_dim;
        match self.vision {
            VisionConfig::Vit {
                width: w,
                layers,
                patch,
                resolution,
                mlp_width,
                class_token,
                patch_bias,
                ln_pre,
                pool,
                proj,
                ..
            } => {
                let grid = resolution / patch;
                t.push(("visual.conv1.weight".into(), vec![w, 3, patch, patch]));
                if patch_bias {
                    t.push(("visual.conv1.bias".into(), vec![w]));
                }
                if class_token {
                    t.push(("visual.class_embedding".into(), vec![w]));
                }
                t.push((
                    "visual.positional_embedding".into(),
                    vec![grid * grid + usize::from(class_token), w],
                ));
                if ln_pre {
                    push_norm(&mut t, "visual.ln_pre", w);
                }
                for i in 0..layers {
                    let p = format!("visual.transformer.resblocks.{i}");
                    push_block(&mut t, &p, w, mlp_width);
                }
                push_norm(&mut t, "visual.ln_post", w);
                if let VitPool::AttentionProbe { mlp_width } = pool {
                    let p = "visual.attn_pool";
                    t.push((format!("{p}.probe"), vec![1, 1, w]));
                    push_attention(&mut t, &format!("{p}.attn"), w);
                    push_norm(&mut t, &format!("{p}.ln"), w);
                    push_mlp(&mut t, &format!("{p}.mlp"), w, mlp_width);
                }
                if proj {
                    t.push(("visual.proj".into(), vec![w, e]));
                }
            }
            VisionConfig::ResNet {
                layers,
                width: w,
                resolution,
                ..
            } => {
                t.push(("visual.conv1.weight".into(), vec![w / 2, 3, 3, 3]));
                push_bn(&mut t, "visual.bn1", w / 2);
                t.push(("visual.conv2.weight".into(), vec![w / 2, w / 2, 3, 3]));
                push_bn(&mut t, "visual.bn2", w / 2);
                t.push(("visual.conv3.weight".into(), vec![w, w / 2, 3, 3]));
                push_bn(&mut t, "visual.bn3", w);
                for (stage, block) in resnet_blocks(layers, w) {
                    let p = format!("visual.layer{}.{}", stage + 1, block.index);
                    let planes = block.planes;
                    t.push((
                        format!("{p}.conv1.weight"),
                        vec![planes, block.inplanes, 1, 1],
                    ));
                    push_bn(&mut t, &format!("{p}.bn1"), planes);
                    t.push((format!("{p}.conv2.weight"), vec![planes, planes, 3, 3]));
                    push_bn(&mut t, &format!("{p}.bn2"), planes);
                    t.push((format!("{p}.conv3.weight"), vec![planes * 4, planes, 1, 1]));
                    push_bn(&mut t, &format!("{p}.bn3"), planes * 4);
                    if block.downsample {
                        t.push((
                            format!("{p}.downsample.0.weight"),
                            vec![planes * 4, block.inplanes, 1, 1],
                        ));
                        push_bn(&mut t, &format!("{p}.downsample.1"), planes * 4);
                    }
                }
                let c = w * 32;
                let grid = resolution / 32;
                t.push((
                    "visual.attnpool.positional_embedding".into(),
                    vec![grid * grid + 1, c],
                ));
                for n in ["q_proj", "k_proj", "v_proj"] {
                    t.push((format!("visual.attnpool.{n}.weight"), vec![c, c]));
                    t.push((format!("visual.attnpool.{n}.bias"), vec![c]));
                }
                t.push(("visual.attnpool.c_proj.weight".into(), vec![e, c]));
                t.push(("visual.attnpool.c_proj.bias".into(), vec![e]));
            }
        }
        let tc = &self.text;
        t.push((
            "token_embedding.weight".into(),
            vec![tc.vocab_size, tc.width],
        ));
        t.push((
            "positional_embedding".into(),
            vec![tc.context_length, tc.width],
        ));
        for i in 0..tc.layers {
            let p = format!("transformer.resblocks.{i}");
            push_block(&mut t, &p, tc.width, tc.mlp_width);
        }
        push_norm(&mut t, "ln_final", tc.width);
        match tc.projection {
            TextProjection::Matrix => t.push(("text_projection".into(), vec![tc.width, e])),
            TextProjection::Linear => {
                t.push(("text_projection.weight".into(), vec![e, tc.width]));
                t.push(("text_projection.bias".into(), vec![e]));
            }
        }
        t.push(("logit_scale".into(), vec![]));
        if self.logit_bias {
            t.push(("logit_bias".into(), vec![]));
        }
        t
    }
}

fn push_norm(t: &mut Vec<(String, Vec<usize>)>, p: &str, w: usize) {
    t.push((format!("{p}.weight"), vec![w]));
    t.push((format!("{p}.bias"), vec![w]));
}

fn push_bn(t: &mut Vec<(String, Vec<usize>)>, p: &str, c: usize) {
    for n in ["weight", "bias", "running_mean", "running_var"] {
        t.push((format!("{p}.{n}"), vec![c]));
    }
}

/// `nn.MultiheadAttention`'s packed input projection and output projection.
fn push_attention(t: &mut Vec<(String, Vec<usize>)>, p: &str, w: usize) {
    t.push((format!("{p}.in_proj_weight"), vec![3 * w, w]));
    t.push((format!("{p}.in_proj_bias"), vec![3 * w]));
    t.push((format!("{p}.out_proj.weight"), vec![w, w]));
    t.push((format!("{p}.out_proj.bias"), vec![w]));
}

fn push_mlp(t: &mut Vec<(String, Vec<usize>)>, p: &str, w: usize, hidden: usize) {
    t.push((format!("{p}.c_fc.weight"), vec![hidden, w]));
    t.push((format!("{p}.c_fc.bias"), vec![hidden]));
    t.push((format!("{p}.c_proj.weight"), vec![w, hidden]));
    t.push((format!("{p}.c_proj.bias"), vec![w]));
}

fn push_block(t: &mut Vec<(String, Vec<usize>)>, p: &str, w: usize, hidden: usize) {
    push_norm(t, &format!("{p}.ln_1"), w);
    push_attention(t, &format!("{p}.attn"), w);
    push_norm(t, &format!("{p}.ln_2"), w);
    push_mlp(t, &format!("{p}.mlp"), w, hidden);
}

/// One Bottleneck of `ModifiedResNet._make_layer`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSpec {
    /// Index within its stage (the `N` of `visual.layerS.N`).
    pub index: usize,
    /// Input channels.
    pub inplanes: usize,
    /// Channels of the first two convolutions (the output has `4 * planes`).
    pub planes: usize,
    /// Average-pool stride (2 in the first block of stages 2-4, else 1).
    pub stride: usize,
    /// Whether the identity path is projected (`downsample`: average pool when strided, 1 x 1
    /// convolution, BatchNorm).
    pub downsample: bool,
}

/// The Bottleneck blocks of each stage, as `ModifiedResNet.__init__` creates them.
pub(crate) fn resnet_blocks(layers: [usize; 4], width: usize) -> Vec<(usize, BlockSpec)> {
    let mut out = Vec::new();
    let mut inplanes = width;
    for (stage, &n) in layers.iter().enumerate() {
        let planes = width << stage;
        let stride = if stage == 0 { 1 } else { 2 };
        for index in 0..n {
            let s = if index == 0 { stride } else { 1 };
            let downsample = s > 1 || inplanes != planes * 4;
            out.push((
                stage,
                BlockSpec {
                    index,
                    inplanes,
                    planes,
                    stride: s,
                    downsample,
                },
            ));
            inplanes = planes * 4;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clip_checkpoint::{load_checkpoint, TensorData};

    fn tiny_vit() -> StateDict {
        load_checkpoint(&clip_fixtures::committed("models/tiny-vit.safetensors"))
            .unwrap()
            .state
    }

    #[test]
    fn infers_tiny_vit_like_build_model() {
        let c = ModelConfig::infer(&tiny_vit(), &ArchHints::default()).unwrap();
        assert_eq!(
            c.vision,
            VisionConfig::Vit {
                width: 128,
                layers: 2,
                heads: 2,
                patch: 32,
                resolution: 224,
                mlp_width: 512,
                class_token: true,
                patch_bias: false,
                ln_pre: true,
                pool: VitPool::Token(VisionPool::ClassToken),
                ln_after_pool: false,
                proj: true,
            }
        );
        // Text heads = 64 / 64 = 1 (the model was trained with 2; the reference rebuilds it with 1).
        assert_eq!(
            c.text,
            TextConfig {
                width: 64,
                layers: 2,
                heads: 1,
                context_length: 77,
                vocab_size: 49408,
                mlp_width: 256,
                causal: true,
                pool: TextPool::Argmax,
                projection: TextProjection::Matrix,
            }
        );
        assert_eq!(
            (c.embed_dim, c.image_resolution(), c.activation),
            (32, 224, Activation::QuickGelu)
        );
        // The table is exactly the state dict of an OpenAI ViT checkpoint (names and shapes).
        let state = tiny_vit();
        let table = c.expected_tensors();
        assert_eq!(table.len(), state.len());
        for (n, s) in &table {
            assert_eq!(
                state.get(n).unwrap_or_else(|| panic!("{n}")).shape(),
                s.as_slice(),
                "{n}"
            );
        }
    }

    #[test]
    fn hints_override_heads_and_activation() {
        let hints = ArchHints {
            activation: Activation::Gelu,
            vision_heads: Some(4),
            text_heads: Some(2),
            ..ArchHints::default()
        };
        let c = ModelConfig::infer(&tiny_vit(), &hints).unwrap();
        assert!(matches!(c.vision, VisionConfig::Vit { heads: 4, .. }));
        assert_eq!((c.text.heads, c.activation), (2, Activation::Gelu));
        let bad = ArchHints {
            text_heads: Some(3),
            ..ArchHints::default()
        };
        let e = ModelConfig::infer(&tiny_vit(), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("text transformer width 64 cannot be split into 3 attention heads"),
            "{e}"
        );
    }

    #[test]
    fn missing_and_misshapen_inference_tensors() {
        let mut s = tiny_vit();
        s.remove("ln_final.weight");
        assert_eq!(
            ModelConfig::infer(&s, &ArchHints::default())
                .unwrap_err()
                .to_string(),
            "missing tensor ln_final.weight"
        );
        let mut s = tiny_vit();
        s.insert(
            "visual.conv1.weight",
            TensorData::from_f32(vec![2, 2], &[0.0; 4]),
        );
        let e = ModelConfig::infer(&s, &ArchHints::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "tensor visual.conv1.weight has shape [2, 2], expected [width, 3, patch, patch]"
        );
        let mut s = StateDict::new();
        s.insert("logit_scale", TensorData::from_f32(vec![], &[1.0]));
        assert_eq!(
            ModelConfig::infer(&s, &ArchHints::default())
                .unwrap_err()
                .to_string(),
            "missing tensor visual.proj"
        );
    }

    #[test]
    fn resnet_blocks_follow_make_layer() {
        // RN50: (3, 4, 6, 3), width 64: downsample on the first block of every stage.
        let b = resnet_blocks([3, 4, 6, 3], 64);
        assert_eq!(b.len(), 16);
        let firsts: Vec<_> = b
            .iter()
            .filter(|(_, s)| s.index == 0)
            .map(|(_, s)| (s.inplanes, s.planes, s.stride, s.downsample))
            .collect();
        assert_eq!(
            firsts,
            vec![
                (64, 64, 1, true),
                (256, 128, 2, true),
                (512, 256, 2, true),
                (1024, 512, 2, true)
            ]
        );
        assert!(b
            .iter()
            .filter(|(_, s)| s.index > 0)
            .all(|(_, s)| !s.downsample && s.stride == 1));
    }
}
