//! What a checkpoint says about itself beyond its tensors: the family whose reference defines its
//! numbers, the architecture facts that shapes cannot tell ([`ArchHints`]), and where its
//! tokenizer comes from ([`TokenizerSource`]). Loaders fill these from the folder's config files;
//! bare weight files get OpenAI CLIP's defaults.

use std::path::PathBuf;

/// The model family a checkpoint belongs to: which reference package defines its numbers.
/// Deserialises from (and [`Family::as_str`] gives) `clip` / `siglip`, as the model registry
/// files of `clip-hub` spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// CLIP's architecture (`clip/model.py`, open_clip's `CLIP`): OpenAI's releases and the
    /// Hugging Face and OpenCLIP folders of the same towers. Probabilities by softmax.
    #[default]
    Clip,
    /// SigLIP and SigLIP 2 (transformers' `SiglipModel`): attention-pooled image tower,
    /// bidirectional text tower pooled at the last position, probabilities by sigmoid.
    Siglip,
}

impl Family {
    /// A short stable name (`clip`, `siglip`), as printed and hashed into fingerprints.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Clip => "clip",
            Family::Siglip => "siglip",
        }
    }
}

/// The MLP activation of the transformer blocks. The weights do not say which one was trained:
/// OpenAI checkpoints use QuickGELU, OpenCLIP configs without `quick_gelu: true` use exact GELU,
/// SigLIP the tanh approximation. Deserialises from (and [`Activation::as_str`] gives) the Hugging
/// Face config names, which the model registry files of `clip-hub` use too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI, HF `quick_gelu`).
    #[default]
    QuickGelu,
    /// `0.5 x (1 + erf(x / sqrt 2))` (`nn.GELU`, HF `gelu`).
    Gelu,
    /// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))` (HF `gelu_pytorch_tanh`, SigLIP).
    #[serde(rename = "gelu_pytorch_tanh")]
    GeluTanh,
}

impl Activation {
    /// The Hugging Face config name: `quick_gelu`, `gelu` or `gelu_pytorch_tanh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::QuickGelu => "quick_gelu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
        }
    }

    /// The activation a Hugging Face `hidden_act` names, if we implement it.
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Activation::QuickGelu),
            "gelu" => Some(Activation::Gelu),
            "gelu_pytorch_tanh" | "gelu_new" => Some(Activation::GeluTanh),
            _ => None,
        }
    }
}

/// Which position of the text tower's output becomes the text's feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextPool {
    /// The position of the largest id (`text.argmax(-1)`: CLIP's end-of-text token).
    #[default]
    Argmax,
    /// The first position (open_clip `pool_type: "first"`).
    First,
    /// The last position of the padded context (SigLIP; open_clip `pool_type: "last"`).
    Last,
}

/// How the image tower's tokens become one feature, when it has no attention-pooling head (a
/// head, SigLIP's `MultiheadAttentionPoolingHead`, is recognised from its weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VisionPool {
    /// The class token (CLIP; open_clip `pool_type: "tok"`).
    #[default]
    ClassToken,
    /// The mean of the patch tokens, class token excluded (open_clip `pool_type: "avg"`).
    Average,
}

/// Architecture facts that come from a config file rather than from tensor shapes. Heads `None`
/// means "infer as the reference `build_model` does" (heads = width / 64). The defaults are
/// OpenAI CLIP's, so a bare weights file needs no config.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchHints {
    /// The MLP activation (QuickGELU unless a config says otherwise).
    pub activation: Activation,
    /// Attention heads of the image tower, when a config gives them.
    pub vision_heads: Option<usize>,
    /// Attention heads of the text tower, when a config gives them.
    pub text_heads: Option<usize>,
    /// Epsilon of every LayerNorm (`nn.LayerNorm`'s 1e-5; SigLIP's configs say 1e-6).
    pub layer_norm_eps: f64,
    /// Whether text attention is causal (CLIP) or bidirectional (SigLIP, open_clip
    /// `no_causal_mask`).
    pub causal_text: bool,
    /// Which text position is pooled.
    pub text_pool: TextPool,
    /// How image tokens are pooled (without an attention-pooling head).
    pub vision_pool: VisionPool,
    /// open_clip `final_ln_after_pool` of the image tower: `ln_post` after pooling instead of
    /// before (only changes the numbers of average pooling).
    pub vision_ln_after_pool: bool,
}

impl Default for ArchHints {
    fn default() -> Self {
        Self {
            activation: Activation::QuickGelu,
            vision_heads: None,
            text_heads: None,
            layer_norm_eps: 1e-5,
            causal_text: true,
            text_pool: TextPool::Argmax,
            vision_pool: VisionPool::ClassToken,
            vision_ln_after_pool: false,
        }
    }
}

/// Where a model's tokenizer comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenizerSource {
    /// CLIP's BPE, built into the binary (OpenAI and open_clip checkpoints).
    #[default]
    Clip,
    /// The tokenizer files of a checkpoint folder (`tokenizer.json` with its
    /// `tokenizer_config.json`, or SentencePiece's `spiece.model`).
    Folder(PathBuf),
}
