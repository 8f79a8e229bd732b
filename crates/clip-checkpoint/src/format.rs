//! Format detection and the one entry point, [`load_checkpoint`].

use std::path::Path;

use crate::safetensors_file::read_safetensors;
use crate::{ArchHints, Checkpoint, CheckpointError};

/// The on-disk formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI-named state dict in a `.safetensors` file.
    Safetensors,
    /// `torch.save(state_dict)` zip archive (`.pt`, `.pth`, `.bin`).
    TorchZip,
    /// TorchScript archive (OpenAI's released `ViT-B-32.pt` ...).
    TorchScript,
    /// Hugging Face `CLIPModel` folder.
    HuggingFace,
    /// OpenCLIP folder (`open_clip_config.json` + weights).
    OpenClip,
}

/// Loads any supported checkpoint (file or folder), detecting the format from its content.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    // Placeholder until the full loader set lands: safetensors only.
    let state = read_safetensors(path)?;
    if state.is_empty() {
        return Err(CheckpointError::invalid(path, "no tensors: not a CLIP checkpoint"));
    }
    Ok(Checkpoint { path: path.to_path_buf(), format: Format::Safetensors, state, hints: ArchHints::default() })
}
