//! CLIP checkpoints of every format people have on disk, read into one in-memory form:
//! a [`StateDict`] of raw tensors under the **OpenAI names** (`visual.conv1.weight`,
//! `transformer.resblocks.0.attn.in_proj_weight`, ...) plus what the weights cannot tell: the
//! [`Family`], the architecture facts of a config file ([`ArchHints`]: activation, heads, pooling),
//! the preprocessing a folder describes and where its tokenizer lives ([`TokenizerSource`]).
//!
//! This crate knows nothing about the model maths (no candle): it only finds, maps and validates
//! bytes, so every loader shares one output type and the model never knows where weights came from.
//!
//! [`load_checkpoint`] detects the format from the content: safetensors, `torch.save` zips,
//! TorchScript archives (OpenAI's releases), legacy pre-zip `torch.save` files, Hugging Face
//! `CLIPModel` and `SiglipModel` folders and OpenCLIP folders. Pickles go through a restricted reader of our own
//! (`pickle/`) that resolves only an allowlist of torch globals and never runs anything, so a
//! hostile checkpoint is refused, not executed. Tensor bytes are memory-mapped wherever the file
//! stores them plainly (safetensors, stored zip entries).

#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod error;
mod format;
mod huggingface;
mod names;
mod openclip;
mod pickle;
mod preprocessing;
mod safetensors_file;
mod siglip;
mod tensor;
mod torch_legacy;
mod torch_tensor;
mod torch_zip;
mod torchscript;

pub use arch::{Activation, ArchHints, Family, TextPool, TokenizerSource, VisionPool};
pub use error::CheckpointError;
pub use format::{load_checkpoint, CheckpointFormat};
pub use tensor::{DType, StateDict, TensorData};

use std::path::PathBuf;

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
    /// The family whose reference defines the numbers.
    pub family: Family,
    /// How images become the model's input, when the checkpoint describes it (`None`: CLIP's
    /// transform at the image tower's resolution, which the weights tell).
    pub preprocess: Option<clip_image::Preprocess>,
    /// Where the tokenizer comes from.
    pub tokenizer: TokenizerSource,
}
