//! Which embedding space a vector lives in. Two vectors are comparable only when the same weights
//! embedded the same preprocessed pixels, so the key is a fingerprint of the checkpoint's bytes
//! (not its path: a moved checkpoint keeps its space, a retrained one at the same path does not)
//! plus the preprocessing version.

use std::path::{Path, PathBuf};

use clip::image::DecodeOptions;
use clip::Precision;

use crate::IndexError;

/// Bump when decoding or preprocessing changes the pixels a model sees for the same file.
pub const PREPROCESS_VERSION: u32 = 1;

/// An embedding space: a model's weights + the preprocessing that fed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// The key vectors are stored under.
    pub id: String,
    /// The model as the user named it (shown in `--status`).
    pub model: String,
    /// The checkpoint's absolute path, so `search` can reload the model without `--model`.
    pub model_path: PathBuf,
    pub dim: usize,
}

impl Space {
    /// The space of the checkpoint at `model_path` (file or folder) with embedding size `dim`,
    /// fed images decoded with `decode`: EXIF rotation and the fast JPEG path give other pixels,
    /// so other spaces. A reduced `precision` is a space of its own too (its vectors differ from
    /// the f32 ones by up to 0.5% in cosine). The reference's decoding in f32 keeps the plain id.
    pub fn of_checkpoint(
        model_path: &Path,
        dim: usize,
        decode: &DecodeOptions,
        precision: Precision,
    ) -> Result<Self, IndexError> {
        let abs = std::fs::canonicalize(model_path).map_err(IndexError::io(model_path))?;
        let mut hasher = blake3::Hasher::new();
        hash_tree(&abs, &abs, &mut hasher)?;
        let digest = hasher.finalize().to_hex();
        let exif = if decode.apply_exif_orientation {
            "-exif"
        } else {
            ""
        };
        let fast = decode
            .jpeg_min_side
            .map(|n| format!("-fastjpeg{n}"))
            .unwrap_or_default();
        let precision = match precision {
            Precision::F32 => String::new(),
            p => format!("-{p}"),
        };
        Ok(Self {
            id: format!(
                "{}-pp{PREPROCESS_VERSION}{exif}{fast}{precision}-d{dim}",
                &digest[..16]
            ),
            model: model_path.display().to_string(),
            model_path: abs,
            dim,
        })
    }
}

/// Hashes every regular file under `path` (sorted, with its relative name) so a folder checkpoint
/// gets one fingerprint.
fn hash_tree(root: &Path, path: &Path, hasher: &mut blake3::Hasher) -> Result<(), IndexError> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(IndexError::io(path))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(IndexError::io(path))?;
        entries.sort();
        for entry in entries {
            hash_tree(root, &entry, hasher)?;
        }
    } else {
        let rel = path.strip_prefix(root).unwrap_or(path);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update_mmap(path).map_err(IndexError::io(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clip::image::DecodeOptions;
    use clip::Precision;

    use super::{Space, PREPROCESS_VERSION};

    #[test]
    fn decoding_and_precision_make_spaces_of_their_own() {
        let model = clip_fixtures::committed("models/tiny-vit.safetensors");
        let id = |decode: DecodeOptions, p: Precision| {
            Space::of_checkpoint(&model, 32, &decode, p).unwrap().id
        };
        let plain = id(DecodeOptions::default(), Precision::F32);
        assert!(
            plain.ends_with(&format!("-pp{PREPROCESS_VERSION}-d32")),
            "{plain}"
        );
        let exif = DecodeOptions {
            apply_exif_orientation: true,
            ..Default::default()
        };
        let fast = DecodeOptions {
            jpeg_min_side: Some(224),
            ..Default::default()
        };
        let others = [
            id(exif, Precision::F32),
            id(fast, Precision::F32),
            id(DecodeOptions::default(), Precision::Int8),
            id(DecodeOptions::default(), Precision::Bf16),
            id(fast, Precision::Int8),
        ];
        for (i, a) in others.iter().enumerate() {
            assert_ne!(a, &plain);
            for b in &others[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Same inputs, same space.
        assert_eq!(id(fast, Precision::Int8), others[4]);
    }
}
