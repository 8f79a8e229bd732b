//! Format detection and the one entry point, [`load_checkpoint`]. Files are recognised by their
//! content (a `.pt` may be a zip, a TorchScript archive or a legacy pickle; a `.bin` may be
//! anything), folders by their config file. Every loader ends in the same name mapping
//! (`names.rs`), so the model sees one layout whatever the source.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::safetensors_file::read_safetensors;
use crate::{huggingface, names, openclip, siglip, torch_legacy, torch_zip};
use crate::{ArchHints, Checkpoint, CheckpointError, Family, StateDict, TokenizerSource};

/// The on-disk formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// OpenAI-named state dict in a `.safetensors` file.
    Safetensors,
    /// `torch.save(state_dict)` zip archive (`.pt`, `.pth`, `.bin`).
    TorchZip,
    /// TorchScript archive (OpenAI's released `ViT-B-32.pt` ...).
    TorchScript,
    /// Pre-zip `torch.save` file (torch < 1.6): pickles followed by raw storages.
    TorchLegacy,
    /// Hugging Face folder (`CLIPModel` or `SiglipModel`).
    HuggingFace,
    /// OpenCLIP folder (`open_clip_config.json` + weights).
    OpenClip,
}

/// What a loader found, before names are mapped.
pub(crate) struct Loaded {
    pub format: CheckpointFormat,
    pub state: StateDict,
    pub hints: ArchHints,
    pub family: Family,
    pub preprocess: Option<clip_image::Preprocess>,
    pub tokenizer: TokenizerSource,
}

impl Loaded {
    /// A CLIP checkpoint with CLIP's tokenizer and the preprocessing its weights imply.
    pub(crate) fn clip(format: CheckpointFormat, state: StateDict, hints: ArchHints) -> Self {
        Self {
            format,
            state,
            hints,
            family: Family::Clip,
            preprocess: None,
            tokenizer: TokenizerSource::Clip,
        }
    }
}

/// Loads any supported checkpoint (file or folder), detecting the format from its content.
///
/// Bare files carry no config: their hints are the OpenAI defaults (QuickGELU, heads inferred
/// from widths as the reference `build_model` does).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let meta = std::fs::metadata(path).map_err(|e| CheckpointError::io(path, e))?;
    let loaded = if meta.is_dir() {
        load_folder(path)?
    } else {
        let (format, state) = read_file(path)?;
        Loaded::clip(format, state, ArchHints::default())
    };
    let state = names::to_openai(path, loaded.state)?;
    if state.is_empty() {
        return Err(CheckpointError::invalid(
            path,
            "no tensors / not a CLIP checkpoint",
        ));
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        format: loaded.format,
        state,
        hints: loaded.hints,
        family: loaded.family,
        preprocess: loaded.preprocess,
        tokenizer: loaded.tokenizer,
    })
}

/// An OpenCLIP folder wins over a Hugging Face one: hub repos of open_clip models often carry
/// both, and only `open_clip_config.json` says which activation the weights were trained with.
fn load_folder(dir: &Path) -> Result<Loaded, CheckpointError> {
    if dir.join(openclip::CONFIG).is_file() {
        return openclip::load(dir);
    }
    let config = dir.join("config.json");
    if config.is_file() {
        let json = read_json(&config)?;
        if siglip::is_siglip(&json) {
            return siglip::load(dir, &json);
        }
        if json.get("model_type").and_then(serde_json::Value::as_str) == Some("siglip2") {
            return Err(CheckpointError::invalid(
                &config,
                "SigLIP 2 NaFlex (model_type \"siglip2\", variable patch grids) is not supported; \
                 the fixed-resolution SigLIP 2 releases (model_type \"siglip\") are",
            ));
        }
        return huggingface::load(dir);
    }
    if huggingface::WEIGHTS.iter().any(|w| dir.join(w).is_file()) {
        return Err(CheckpointError::invalid(
            dir,
            "Hugging Face folder without config.json",
        ));
    }
    Err(CheckpointError::invalid(
        dir,
        "not a checkpoint folder: no config.json (Hugging Face) or open_clip_config.json (OpenCLIP)",
    ))
}

/// Reads one weights file of any format (names as stored).
pub(crate) fn read_file(path: &Path) -> Result<(CheckpointFormat, StateDict), CheckpointError> {
    let mut head = Vec::with_capacity(9);
    regular_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| CheckpointError::io(path, e))?;
    file.take(9)
        .read_to_end(&mut head)
        .map_err(|e| CheckpointError::io(path, e))?;
    let is_safetensors_name = path.extension().is_some_and(|e| e == "safetensors");
    // safetensors: a little-endian u64 header length (far below 2^40) then the JSON header. Checked
    // before pickles, whose PROTO byte 0x80 may also be the low byte of a header length.
    let safetensors = head.len() == 9 && head[5..8] == [0, 0, 0] && head[8] == b'{';
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        torch_zip::read(path)
    } else if safetensors {
        Ok((CheckpointFormat::Safetensors, read_safetensors(path)?))
    } else if head.first() == Some(&0x80) {
        // pickle PROTO opcode: a legacy torch.save file, or some other (refused) pickle
        Ok((CheckpointFormat::TorchLegacy, torch_legacy::read(path)?))
    } else if is_safetensors_name {
        // not recognisable, but named so: the safetensors reader says what is wrong with it
        Ok((CheckpointFormat::Safetensors, read_safetensors(path)?))
    } else {
        Err(CheckpointError::invalid(
            path,
            "not a PyTorch zip/TorchScript/pickle file (nor safetensors)",
        ))
    }
}

/// The metadata of `path` if it is a regular file: a FIFO would block the reader forever, a
/// device never end, so anything else is refused before it is opened.
pub(crate) fn regular_file(path: &Path) -> Result<std::fs::Metadata, CheckpointError> {
    let meta = std::fs::metadata(path).map_err(|e| CheckpointError::io(path, e))?;
    if meta.is_file() {
        return Ok(meta);
    }
    let kind = if meta.is_dir() {
        "a folder"
    } else {
        "a FIFO, device or socket"
    };
    Err(CheckpointError::invalid(
        path,
        format!("not a regular file ({kind})"),
    ))
}

/// A small JSON config file.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, CheckpointError> {
    const MAX: u64 = 16 << 20;
    let len = regular_file(path)?.len();
    if len > MAX {
        return Err(CheckpointError::invalid(
            path,
            format!("config file of {len} bytes is too large"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CheckpointError::invalid(path, format!("invalid JSON: {e}")))
}

/// A checkpoint folder's parts: the hints its config file (`config`, present: the caller checked)
/// gives, and the first of `weights` (in the writer's order of preference) that exists. `kind`
/// names the folder in errors.
pub(crate) fn read_folder(
    dir: &Path,
    config: &str,
    weights: &[&str],
    kind: &str,
    hints: fn(&serde_json::Value) -> Result<ArchHints, String>,
) -> Result<(ArchHints, PathBuf), CheckpointError> {
    let config_path = dir.join(config);
    let hints =
        hints(&read_json(&config_path)?).map_err(|e| CheckpointError::invalid(&config_path, e))?;
    Ok((hints, find_weights(dir, weights, kind)?))
}

/// The first of `weights` (in the writer's order of preference) that is a file in `dir`; `kind`
/// names the folder in the error.
pub(crate) fn find_weights(
    dir: &Path,
    weights: &[&str],
    kind: &str,
) -> Result<PathBuf, CheckpointError> {
    weights
        .iter()
        .map(|w| dir.join(w))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CheckpointError::invalid(
                dir,
                format!(
                    "{kind} folder without weights (looked for {})",
                    weights.join(", ")
                ),
            )
        })
}
