//! Which embedding space a loaded model defines. Two vectors are comparable only when the same
//! weights, in the same precision, embedded the same preprocessed pixels; every store of vectors
//! (the class-embedding cache, the index, the server's view of it) keys them by this one
//! fingerprint, so results never depend on what ran before.
//!
//! The weights are identified by their bytes (BLAKE3 of the checkpoint file, or of every file of
//! a checkpoint folder with its relative name), not by path, size or time: a moved checkpoint keeps
//! its space, a different one written to the same path gets a new one.

use std::path::{Path, PathBuf};

use clip::image::DecodeOptions;
use clip::{Clip, Family, Precision};

/// Bump when decoding or preprocessing code changes the pixels a model sees for the same file.
pub const PREPROCESS_VERSION: u32 = 1;

/// A checkpoint that could not be read to fingerprint it.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot fingerprint the checkpoint: {source}", path.display())]
pub struct FingerprintError {
    /// The file or folder that failed.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The identity of a loaded model's embedding space, without the image decoding options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFingerprint {
    /// BLAKE3 of the checkpoint's bytes, hex.
    digest: String,
    family: Family,
    precision: Precision,
    /// [`clip::image::Preprocess::describe`] of the model's preprocessing.
    preprocessing: String,
    /// Whether `preprocessing` is CLIP's own transform at the model's resolution (then it stays
    /// out of the ids, which keeps indexes made before families existed valid).
    clip_preprocessing: bool,
    dim: usize,
}

impl ModelFingerprint {
    /// The fingerprint of `clip`: hashes its checkpoint's bytes (memory-mapped, so a checkpoint in
    /// the page cache is hashed without copying it).
    pub fn of(clip: &Clip) -> Result<Self, FingerprintError> {
        Self::compute(
            clip.source(),
            clip.family(),
            clip.precision(),
            &clip.preprocessing().describe(),
            *clip.preprocessing() == clip::image::Preprocess::clip(clip.resolution()),
            clip.embed_dim(),
        )
    }

    fn compute(
        source: &Path,
        family: Family,
        precision: Precision,
        preprocessing: &str,
        clip_preprocessing: bool,
        dim: usize,
    ) -> Result<Self, FingerprintError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FingerprintError { path, source }
        };
        let abs = std::fs::canonicalize(source).map_err(err(source))?;
        let mut hasher = blake3::Hasher::new();
        hash_tree(&abs, &abs, &mut hasher)?;
        Ok(Self {
            digest: hasher.finalize().to_hex().to_string(),
            family,
            precision,
            preprocessing: preprocessing.to_string(),
            clip_preprocessing,
            dim,
        })
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The precision the model was loaded in (a reduced precision is a space of its own: its
    /// vectors differ slightly from the f32 ones).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The key of the model alone (texts are embedded without any image decoding): weights,
    /// family, precision, preprocessing and width.
    pub fn model_key(&self) -> String {
        format!(
            "{}-{}-{}-{}-d{}",
            self.digest,
            self.family.as_str(),
            self.precision,
            blake3::hash(self.preprocessing.as_bytes()).to_hex(),
            self.dim
        )
    }

    /// The id of the space of image vectors made by this model from images decoded with
    /// `decode`: EXIF rotation and the fast JPEG path give other pixels, so other spaces.
    /// CLIP checkpoints with CLIP's own preprocessing, decoded as the reference decodes, in f32,
    /// keep the plain id `<digest>-pp<version>-d<dim>`.
    pub fn image_space(&self, decode: &DecodeOptions) -> String {
        let exif = if decode.apply_exif_orientation {
            "-exif"
        } else {
            ""
        };
        let fast = decode
            .jpeg_min_side
            .map(|n| format!("-fastjpeg{n}"))
            .unwrap_or_default();
        let precision = match self.precision {
            Precision::F32 => String::new(),
            p => format!("-{p}"),
        };
        let model = if self.family == Family::Clip && self.clip_preprocessing {
            String::new()
        } else {
            let spec = format!("{}\0{}", self.family.as_str(), self.preprocessing);
            format!(
                "-{}-{}",
                self.family.as_str(),
                &blake3::hash(spec.as_bytes()).to_hex()[..8]
            )
        };
        format!(
            "{}-pp{PREPROCESS_VERSION}{exif}{fast}{precision}{model}-d{}",
            &self.digest[..16],
            self.dim
        )
    }
}

/// Hashes every regular file under `path` (sorted, each with its relative name) so a folder
/// checkpoint gets one fingerprint.
fn hash_tree(
    root: &Path,
    path: &Path,
    hasher: &mut blake3::Hasher,
) -> Result<(), FingerprintError> {
    let err = |source| FingerprintError {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        entries.sort();
        for entry in entries {
            hash_tree(root, &entry, hasher)?;
        }
    } else {
        let rel = path.strip_prefix(root).unwrap_or(path);
        hasher.update(rel.as_os_str().as_encoded_bytes());
        hasher.update(&[0]);
        hasher.update_mmap(path).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(path: &Path, precision: Precision) -> ModelFingerprint {
        let pre = clip::image::Preprocess::clip(224);
        ModelFingerprint::compute(path, Family::Clip, precision, &pre.describe(), true, 32).unwrap()
    }

    #[test]
    fn decoding_and_precision_make_spaces_of_their_own() {
        let model = clip_fixtures::committed("models/tiny-vit.safetensors");
        let id = |decode: DecodeOptions, p: Precision| fingerprint(&model, p).image_space(&decode);
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

    #[test]
    fn the_bytes_not_the_path_identify_the_weights() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
        std::fs::write(&a, b"weights one").unwrap();
        std::fs::write(&b, b"weights one").unwrap();
        let key = |p: &Path| fingerprint(p, Precision::F32).model_key();
        assert_eq!(key(&a), key(&b));
        // Same path, same size, other bytes: another model.
        let before = key(&a);
        std::fs::write(&a, b"weights two").unwrap();
        assert_ne!(key(&a), before);
        assert_ne!(
            fingerprint(&a, Precision::Int8).model_key(),
            fingerprint(&a, Precision::F32).model_key()
        );
        let missing = ModelFingerprint::compute(
            &dir.path().join("none"),
            Family::Clip,
            Precision::F32,
            "",
            true,
            1,
        )
        .unwrap_err();
        assert!(missing.to_string().contains("none"), "{missing}");
    }
}
