//! CLIP checkpoints of every format people have on disk, read into one in-memory form:
//! a [`StateDict`] of raw tensors under the **OpenAI names** (`visual.conv1.weight`,
//! `transformer.resblocks.0.attn.in_proj_weight`, ...) plus the few architecture facts that the
//! weights cannot tell ([`ArchHints`]: activation, head counts from a config file).
//!
//! This crate knows nothing about the model maths (no candle): it only finds, maps and validates
//! bytes, so every loader shares one output type and the model never knows where weights came from.
//!
//! [`load_checkpoint`] detects the format from the content: safetensors, `torch.save` zips,
//! TorchScript archives (OpenAI's releases), legacy pre-zip `torch.save` files, Hugging Face
//! `CLIPModel` folders and OpenCLIP folders. Pickles go through a restricted reader of our own
//! (`pickle/`) that resolves only an allowlist of torch globals and never runs anything, so a
//! hostile checkpoint is refused, not executed. Tensor bytes are memory-mapped wherever the file
//! stores them plainly (safetensors, stored zip entries).

#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod format;
mod huggingface;
mod names;
mod openclip;
mod pickle;
mod safetensors_file;
mod tensor;
mod torch_legacy;
mod torch_tensor;
mod torch_zip;
mod torchscript;

pub use error::CheckpointError;
pub use format::{load_checkpoint, CheckpointFormat};
pub use tensor::{DType, StateDict, TensorData};

use std::path::PathBuf;

/// The MLP activation of the transformer blocks. The weights do not say which one was trained:
/// OpenAI checkpoints use QuickGELU, OpenCLIP configs without `quick_gelu: true` use exact GELU.
/// Deserialises from (and [`Activation::as_str`] gives) the Hugging Face config names, which the
/// model registry files of `clip-hub` use too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI, HF `quick_gelu`).
    #[default]
    QuickGelu,
    /// `0.5 x (1 + erf(x / sqrt 2))` (`nn.GELU`, HF `gelu`).
    Gelu,
}

impl Activation {
    /// The Hugging Face config name: `quick_gelu` or `gelu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::QuickGelu => "quick_gelu",
            Activation::Gelu => "gelu",
        }
    }
}

/// Architecture facts that come from a config file rather than from tensor shapes.
/// `None` means "infer as the reference `build_model` does" (heads = width / 64).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchHints {
    /// The MLP activation (QuickGELU unless a config says otherwise).
    pub activation: Activation,
    /// Attention heads of the image tower, when a config gives them.
    pub vision_heads: Option<usize>,
    /// Attention heads of the text tower, when a config gives them.
    pub text_heads: Option<usize>,
}

/// A loaded checkpoint: OpenAI-named tensors plus hints, and where they came from.
#[derive(Debug)]
pub struct Checkpoint {
    /// The file or folder it was loaded from.
    pub path: PathBuf,
    /// The format detected from the content.
    pub format: CheckpointFormat,
    /// The tensors, under OpenAI names.
    pub state: StateDict,
    /// What the config file said (defaults for bare files).
    pub hints: ArchHints,
}
