//! Random-weight models of the released architectures, built in memory (no download): for
//! benchmarks, where speed and memory do not depend on the values. The hyper-parameters are those
//! of `clip.available_models()`, plus SigLIP 2 base (`google/siglip2-base-patch16-224`'s config);
//! the tensors are exactly the ones an OpenAI checkpoint of that
//! architecture holds (names and shapes from [`ModelConfig::expected_tensors`]), filled from a
//! deterministic seed, so [`ModelConfig::infer`] gives the requested configuration back.

use std::path::PathBuf;

use clip_checkpoint::{
    Activation, ArchHints, Checkpoint, CheckpointFormat, DType, Family, StateDict, TensorData,
    TextPool, TokenizerSource, VisionPool,
};

use super::config::{ModelConfig, TextConfig, TextProjection, VisionConfig, VitPool};

/// Names accepted by [`arch_config`], as `clip.available_models()` spells them.
pub const ARCHITECTURES: &[&str] = &[
    "RN50",
    "RN101",
    "RN50x4",
    "RN50x16",
    "RN50x64",
    "ViT-B/32",
    "ViT-B/16",
    "ViT-L/14",
    "ViT-L/14@336px",
    "siglip2-base-patch16-224",
];

fn text(width: usize) -> TextConfig {
    TextConfig {
        width,
        layers: 12,
        heads: width / 64,
        context_length: 77,
        vocab_size: 49408,
        mlp_width: 4 * width,
        causal: true,
        pool: TextPool::Argmax,
        projection: TextProjection::Matrix,
    }
}

/// SigLIP 2 base patch16-224 (`google/siglip2-base-patch16-224`'s `config.json`).
fn siglip2_base() -> ModelConfig {
    ModelConfig {
        vision: VisionConfig::Vit {
            width: 768,
            layers: 12,
            heads: 12,
            patch: 16,
            resolution: 224,
            mlp_width: 3072,
            class_token: false,
            patch_bias: true,
            ln_pre: false,
            pool: VitPool::AttentionProbe { mlp_width: 3072 },
            ln_after_pool: false,
            proj: false,
        },
        text: TextConfig {
            width: 768,
            layers: 12,
            heads: 12,
            context_length: 64,
            vocab_size: 256_000,
            mlp_width: 3072,
            causal: false,
            pool: TextPool::Last,
            projection: TextProjection::Linear,
        },
        embed_dim: 768,
        activation: Activation::GeluTanh,
        layer_norm_eps: 1e-6,
        logit_bias: true,
    }
}

/// The configuration of a released architecture (`None` for an unknown name).
pub fn arch_config(name: &str) -> Option<ModelConfig> {
    let vit = |width: usize, layers: usize, patch: usize, resolution: usize| VisionConfig::Vit {
        width,
        layers,
        heads: width / 64,
        patch,
        resolution,
        mlp_width: 4 * width,
        class_token: true,
        patch_bias: false,
        ln_pre: true,
        pool: VitPool::Token(VisionPool::ClassToken),
        ln_after_pool: false,
        proj: true,
    };
    let rn = |layers: [usize; 4], width: usize, resolution: usize| VisionConfig::ResNet {
        layers,
        width,
        heads: width * 32 / 64,
        resolution,
    };
    let (vision, embed_dim, text_width) = match name {
        "RN50" => (rn([3, 4, 6, 3], 64, 224), 1024, 512),
        "RN101" => (rn([3, 4, 23, 3], 64, 224), 512, 512),
        "RN50x4" => (rn([4, 6, 10, 6], 80, 288), 640, 640),
        "RN50x16" => (rn([6, 8, 18, 8], 96, 384), 768, 768),
        "RN50x64" => (rn([3, 15, 36, 10], 128, 448), 1024, 1024),
        "ViT-B/32" => (vit(768, 12, 32, 224), 512, 512),
        "ViT-B/16" => (vit(768, 12, 16, 224), 512, 512),
        "ViT-L/14" => (vit(1024, 24, 14, 224), 768, 768),
        "ViT-L/14@336px" => (vit(1024, 24, 14, 336), 768, 768),
        "siglip2-base-patch16-224" => return Some(siglip2_base()),
        _ => return None,
    };
    Some(ModelConfig {
        vision,
        text: text(text_width),
        embed_dim,
        activation: Activation::QuickGelu,
        layer_norm_eps: 1e-5,
        logit_bias: false,
    })
}

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Little-endian f32 bytes of `n` values `f(rng)`.
fn fill(n: usize, rng: &mut Rng, mut f: impl FnMut(&mut Rng) -> f32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(n * 4);
    for _ in 0..n {
        bytes.extend_from_slice(&f(rng).to_le_bytes());
    }
    bytes
}

/// A state dict of random f32 tensors for `config`: every tensor of
/// [`ModelConfig::expected_tensors`], with values in a sane range (weights uniform with
/// std ~ 1/sqrt(fan_in), norm scales 1, biases and shifts small, BatchNorm variances 1,
/// `logit_scale` = ln(100)), so activations stay finite through every layer.
pub fn random_state_dict(config: &ModelConfig, seed: u64) -> StateDict {
    let mut rng = Rng(seed);
    let mut state = StateDict::new();
    for (name, shape) in config.expected_tensors() {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        // uniform(-a, a) has std a / sqrt(3).
        let a = (3.0 / fan_in as f32).sqrt();
        let leaf = name.rsplit('.').next().unwrap_or(&name);
        let is_norm = name.contains("ln_") || name.contains(".bn") || name.contains("downsample.1");
        let bytes = if name == "logit_scale" {
            fill(n, &mut rng, |_| 100f32.ln())
        } else if name == "logit_bias" {
            fill(n, &mut rng, |_| -10.0)
        } else if leaf == "running_var" {
            fill(n, &mut rng, |_| 1.0)
        } else if leaf == "running_mean" {
            fill(n, &mut rng, |r| 0.01 * r.uniform())
        } else if is_norm && leaf == "weight" {
            fill(n, &mut rng, |r| 1.0 + 0.01 * r.uniform())
        } else if leaf == "bias" {
            fill(n, &mut rng, |r| 0.01 * r.uniform())
        } else if shape.len() >= 2 {
            fill(n, &mut rng, |r| a * r.uniform())
        } else {
            // class / positional embeddings of rank 1, etc.
            fill(n, &mut rng, |r| 0.02 * r.uniform())
        };
        state.insert(name, TensorData::owned(DType::F32, shape, bytes));
    }
    state
}

/// A [`Checkpoint`] of random weights for a released architecture (`None` for an unknown name),
/// as if loaded from `random:<name>`.
pub fn random_checkpoint(name: &str, seed: u64) -> Option<Checkpoint> {
    let config = arch_config(name)?;
    Some(Checkpoint {
        path: PathBuf::from(format!("random:{name}")),
        format: CheckpointFormat::Safetensors,
        state: random_state_dict(&config, seed),
        hints: hints_for(&config),
        family: if config.logit_bias {
            Family::Siglip
        } else {
            Family::Clip
        },
        preprocess: None,
        tokenizer: TokenizerSource::Clip,
    })
}

/// The config-file facts that give `config` back from its tensors.
fn hints_for(config: &ModelConfig) -> ArchHints {
    ArchHints {
        activation: config.activation,
        vision_heads: match config.vision {
            VisionConfig::Vit { heads, .. } | VisionConfig::ResNet { heads, .. } => Some(heads),
        },
        text_heads: Some(config.text.heads),
        layer_norm_eps: config.layer_norm_eps,
        causal_text: config.text.causal,
        text_pool: config.text.pool,
        vision_pool: VisionPool::ClassToken,
        vision_ln_after_pool: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_weights_infer_back_to_the_requested_architecture() {
        for name in ARCHITECTURES {
            let want = arch_config(name).unwrap();
            // Shapes only: a tiny seed-independent check of every architecture's table would
            // need the full tensors; build the full dict for the two small families' smallest.
            if matches!(*name, "ViT-B/32" | "RN50" | "siglip2-base-patch16-224") {
                // One block per tower and a small vocabulary: the same layout, a fraction of
                // the memory.
                let mut want = want;
                want.text.layers = 1;
                want.text.vocab_size = 1000;
                if let VisionConfig::Vit { layers, .. } = &mut want.vision {
                    *layers = 1;
                }
                let state = random_state_dict(&want, 7);
                let got = ModelConfig::infer(&state, &hints_for(&want)).unwrap();
                assert_eq!(got, want, "{name}");
                assert_eq!(state.len(), want.expected_tensors().len());
            }
        }
        assert!(arch_config("ViT-H/14").is_none());
    }

    #[test]
    fn same_seed_same_weights() {
        let c = arch_config("ViT-B/32").unwrap();
        let mut small = c.clone();
        small.text.layers = 1;
        if let VisionConfig::Vit { layers, .. } = &mut small.vision {
            *layers = 1;
        }
        let a = random_state_dict(&small, 1);
        let b = random_state_dict(&small, 1);
        let name = "visual.transformer.resblocks.0.attn.in_proj_weight";
        assert_eq!(a.get(name).unwrap().bytes(), b.get(name).unwrap().bytes());
    }
}
