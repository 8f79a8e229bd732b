//! Which embedding space a vector lives in: the id comes from the model's fingerprint and the
//! image decoding ([`clip_tasks::fingerprint`]), so vectors of different weights, precisions,
//! preprocessing or decoding never mix, and a moved checkpoint keeps its vectors.

use std::path::PathBuf;

use clip::image::DecodeOptions;
use clip::Clip;
use clip_tasks::fingerprint::ModelFingerprint;

use crate::IndexError;

/// An embedding space: a model's weights + the preprocessing that fed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// The key vectors are stored under.
    pub id: String,
    /// The model as the user named it (shown in `--status`).
    pub model: String,
    /// The checkpoint's absolute path, so `search` can reload the model without `--model`.
    pub model_path: PathBuf,
    /// Width of the vectors.
    pub dim: usize,
}

impl Space {
    /// The space of images decoded with `decode` and embedded by `clip` (named `model` by the
    /// user). Hashes the checkpoint's bytes.
    pub fn of(clip: &Clip, model: &str, decode: &DecodeOptions) -> Result<Self, IndexError> {
        let fingerprint = ModelFingerprint::of(clip)?;
        let model_path =
            std::fs::canonicalize(clip.source()).map_err(IndexError::io(clip.source()))?;
        Ok(Self {
            id: fingerprint.image_space(decode),
            model: model.to_string(),
            model_path,
            dim: clip.embed_dim(),
        })
    }
}
