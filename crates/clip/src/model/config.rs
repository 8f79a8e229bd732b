//! Hyper-parameters, inferred from tensor shapes exactly as the reference `clip.model.build_model`
//! does, and the table of every tensor (name and shape) the inferred architecture needs.

use std::collections::BTreeSet;

use clip_checkpoint::{Activation, ArchHints, StateDict};

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
}

/// Everything needed to build a CLIP model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// The image tower.
    pub vision: VisionConfig,
    /// The text tower.
    pub text: TextConfig,
    /// Width of the joint embedding space (`text_projection.shape[1]`).
    pub embed_dim: usize,
    /// MLP activation of every transformer block (both towers).
    pub activation: Activation,
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
        let (vision, embed_dim) = if state.contains("visual.proj") {
            const CONV: &str = "[width, 3, patch, patch]";
            let width = dim(state, "visual.conv1.weight", 4, 0, CONV)?;
            let patch = dim(state, "visual.conv1.weight", 4, 3, CONV)?;
            let layers = state
                .names()
                .filter(|k| k.starts_with("visual.") && k.ends_with(".attn.in_proj_weight"))
                .count();
            let positions = dim(
                state,
                "visual.positional_embedding",
                2,
                0,
                "[grid * grid + 1, width]",
            )?;
            if patch == 0 {
                let s = shape_of(state, "visual.conv1.weight")?;
                return Err(ModelError::shape("visual.conv1.weight", s, CONV));
            }
            if positions < 2 {
                let s = shape_of(state, "visual.positional_embedding")?;
                return Err(ModelError::shape(
                    "visual.positional_embedding",
                    s,
                    "[grid * grid + 1, width]",
                ));
            }
            let resolution = patch * round_sqrt(positions - 1);
            let embed = dim(state, "visual.proj", 2, 1, "[width, embed_dim]")?;
            if layers == 0 {
                return Err(ModelError::missing(
                    "visual.transformer.resblocks.0.attn.in_proj_weight",
                ));
            }
            let heads = heads_for("vision transformer", width, hints.vision_heads, width / 64)?;
            (
                VisionConfig::Vit {
                    width,
                    layers,
                    heads,
                    patch,
                    resolution,
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
        };
        Ok(ModelConfig {
            vision,
            text,
            embed_dim,
            activation: hints.activation,
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
                ..
            } => {
                let grid = resolution / patch;
                t.push(("visual.conv1.weight".into(), vec![w, 3, patch, patch]));
                t.push(("visual.class_embedding".into(), vec![w]));
                t.push((
                    "visual.positional_embedding".into(),
                    vec![grid * grid + 1, w],
                ));
                push_norm(&mut t, "visual.ln_pre", w);
                for i in 0..layers {
                    push_block(&mut t, &format!("visual.transformer.resblocks.{i}"), w);
                }
                push_norm(&mut t, "visual.ln_post", w);
                t.push(("visual.proj".into(), vec![w, e]));
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
            push_block(&mut t, &format!("transformer.resblocks.{i}"), tc.width);
        }
        push_norm(&mut t, "ln_final", tc.width);
        t.push(("text_projection".into(), vec![tc.width, e]));
        t.push(("logit_scale".into(), vec![]));
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

fn push_block(t: &mut Vec<(String, Vec<usize>)>, p: &str, w: usize) {
    push_norm(t, &format!("{p}.ln_1"), w);
    t.push((format!("{p}.attn.in_proj_weight"), vec![3 * w, w]));
    t.push((format!("{p}.attn.in_proj_bias"), vec![3 * w]));
    t.push((format!("{p}.attn.out_proj.weight"), vec![w, w]));
    t.push((format!("{p}.attn.out_proj.bias"), vec![w]));
    push_norm(t, &format!("{p}.ln_2"), w);
    t.push((format!("{p}.mlp.c_fc.weight"), vec![4 * w, w]));
    t.push((format!("{p}.mlp.c_fc.bias"), vec![4 * w]));
    t.push((format!("{p}.mlp.c_proj.weight"), vec![w, 4 * w]));
    t.push((format!("{p}.mlp.c_proj.bias"), vec![w]));
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
                resolution: 224
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
                vocab_size: 49408
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
