//! On-disk cache of class embeddings. Embedding 80 templates x 1000 labels is 80,000 text forward
//! passes, and a classifier or moderation policy is usually run again and again with the same
//! prompts, so the ensembled embeddings are stored under the cache directory, keyed by a BLAKE3 of the
//! model's [`ModelFingerprint`] (its weights' bytes, precision, family and preprocessing) and the
//! exact prompts. Another model, precision or prompt list gives another key; an unreadable entry
//! is recomputed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clip::Embeddings;

use crate::fingerprint::ModelFingerprint;

/// Bumped whenever the stored format, the key or the ensembling maths changes, so old entries are
/// ignored.
const FORMAT: &[u8] = b"clip-rs class embeddings v2\0";

/// The cached class embeddings of one model (`<root>/class-embeddings/<key>.bin`).
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
    model: String,
    dim: usize,
}

impl EmbeddingCache {
    /// The cache of `model`'s class embeddings under the cache root `root`.
    pub fn new(root: impl AsRef<Path>, model: &ModelFingerprint) -> Self {
        Self {
            dir: root.as_ref().join("class-embeddings"),
            model: model.model_key(),
            dim: model.dim(),
        }
    }

    /// Where the entry for these prompt groups lives.
    pub fn entry_path(&self, groups: &[Vec<String>]) -> PathBuf {
        self.dir.join(format!("{}.bin", self.key(groups)))
    }

    /// The stored class embeddings of `groups`, if a complete entry exists.
    pub fn get(&self, groups: &[Vec<String>]) -> Option<Embeddings> {
        read_entry(&self.entry_path(groups), groups.len(), self.dim)
    }

    /// Stores the class embeddings of `groups`. Failing to write only costs time next run, so it
    /// is not an error.
    pub fn put(&self, groups: &[Vec<String>], classes: &Embeddings) {
        let _ = write_entry(&self.entry_path(groups), classes);
    }

    fn key(&self, groups: &[Vec<String>]) -> String {
        let mut h = blake3::Hasher::new();
        h.update(FORMAT);
        h.update(self.model.as_bytes());
        // Length-prefixed so that no two different prompt lists hash the same bytes.
        h.update(&(groups.len() as u64).to_le_bytes());
        for group in groups {
            h.update(&(group.len() as u64).to_le_bytes());
            for prompt in group {
                h.update(&(prompt.len() as u64).to_le_bytes());
                h.update(prompt.as_bytes());
            }
        }
        h.finalize().to_hex().to_string()
    }
}

/// Entry layout: magic, rows (u64 LE), dim (u64 LE), rows*dim f32 LE.
fn read_entry(path: &Path, rows: usize, dim: usize) -> Option<Embeddings> {
    let bytes = fs::read(path).ok()?;
    let body = bytes.strip_prefix(FORMAT)?;
    let (r, rest) = body.split_at_checked(8)?;
    let (d, data) = rest.split_at_checked(8)?;
    let as_usize = |b: &[u8]| Some(u64::from_le_bytes(b.try_into().ok()?) as usize);
    if as_usize(r)? != rows || as_usize(d)? != dim || data.len() != rows * dim * 4 || dim == 0 {
        return None;
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    values
        .iter()
        .all(|v| v.is_finite())
        .then(|| Embeddings::new(dim, values))
}

/// Written to a temporary file then renamed, so a concurrent reader never sees half an entry.
fn write_entry(path: &Path, e: &Embeddings) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut out = Vec::with_capacity(FORMAT.len() + 16 + e.as_slice().len() * 4);
    out.extend_from_slice(FORMAT);
    out.extend_from_slice(&(e.len() as u64).to_le_bytes());
    out.extend_from_slice(&(e.dim() as u64).to_le_bytes());
    e.as_slice()
        .iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    fs::File::create(&tmp)?.write_all(&out)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bad_ones_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache {
            dir: dir.path().to_path_buf(),
            model: "m".into(),
            dim: 2,
        };
        let groups = vec![vec!["a cat".to_string()], vec!["a dog".to_string()]];
        assert!(cache.get(&groups).is_none());
        let e = Embeddings::new(2, vec![1.0, 0.0, 0.0, 1.0]);
        cache.put(&groups, &e);
        assert_eq!(cache.get(&groups), Some(e));
        // Another model or other prompts miss.
        let other = EmbeddingCache {
            model: "n".into(),
            ..cache.clone()
        };
        assert!(other.get(&groups).is_none());
        assert!(cache.get(&groups[..1]).is_none());
        // A truncated entry is a miss, not an error.
        let path = cache.entry_path(&groups);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(cache.get(&groups).is_none());
    }
}
