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
pub use format::{load_checkpoint, Format};
pub use tensor::{DType, StateDict, TensorData};

use std::path::PathBuf;

/// The MLP activation of the transformer blocks. The weights do not say which one was trained:
/// OpenAI checkpoints use QuickGELU, OpenCLIP configs without `quick_gelu: true` use exact GELU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI, HF `quick_gelu`).
    #[default]
    QuickGelu,
    /// `0.5 x (1 + erf(x / sqrt 2))` (`nn.GELU`, HF `gelu`).
    Gelu,
}

/// Architecture facts that come from a config file rather than from tensor shapes.
/// `None` means "infer as the reference `build_model` does" (heads = width / 64).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchHints {
    pub activation: Activation,
    pub vision_heads: Option<usize>,
    pub text_heads: Option<usize>,
}

/// A loaded checkpoint: OpenAI-named tensors plus hints, and where they came from.
#[derive(Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub format: Format,
    pub state: StateDict,
    pub hints: ArchHints,
}
