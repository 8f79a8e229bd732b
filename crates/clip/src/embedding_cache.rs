//! On-disk cache of class embeddings. Embedding 80 templates x 1000 labels takes minutes on a CPU,
//! and a classifier or moderation policy is usually run again and again with the same prompts,
//! so the ensembled embeddings are stored under the cache directory, keyed by a SHA-256 of the
//! model's identity (resolved path, size and modification time of its files) and the exact prompts.
//! A changed checkpoint or prompt gives a new key; an unreadable entry is recomputed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::similarity::Embeddings;
use crate::{Clip, ClipError};

/// Bumped whenever the stored format or the ensembling maths changes, so old entries are ignored.
const FORMAT: &[u8] = b"clip-rs class embeddings v1\0";

/// A folder of cached ensembled embeddings (`<root>/class-embeddings/<sha256>.bin`).
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            dir: root.as_ref().join("class-embeddings"),
        }
    }

    /// Where the entry for this model and these prompt groups lives.
    pub fn entry_path(&self, clip: &Clip, groups: &[Vec<String>]) -> PathBuf {
        self.dir.join(format!("{}.bin", key(clip, groups)))
    }

    /// The stored embeddings for `groups` under this model, or `compute()`'s result, then stored.
    /// Failing to write the cache only costs time next run, so it is not an error.
    pub fn get_or_compute(
        &self,
        clip: &Clip,
        groups: &[Vec<String>],
        compute: impl FnOnce() -> Result<Embeddings, ClipError>,
    ) -> Result<Embeddings, ClipError> {
        let path = self.entry_path(clip, groups);
        if let Some(hit) = read_entry(&path, groups.len(), clip.embed_dim()) {
            return Ok(hit);
        }
        let fresh = compute()?;
        let _ = write_entry(&path, &fresh);
        Ok(fresh)
    }
}

fn key(clip: &Clip, groups: &[Vec<String>]) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT);
    model_identity(clip.source(), &mut h);
    h.update((clip.embed_dim() as u64).to_le_bytes());
    // Length-prefixed so that no two different prompt lists hash the same bytes.
    h.update((groups.len() as u64).to_le_bytes());
    for group in groups {
        h.update((group.len() as u64).to_le_bytes());
        for prompt in group {
            h.update((prompt.len() as u64).to_le_bytes());
            h.update(prompt.as_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolved path, size and modification time of the checkpoint file, or of every file directly
/// inside a checkpoint folder: cheap to compute (no hashing of gigabytes) yet changed by any
/// replacement of the weights.
fn model_identity(source: &Path, h: &mut Sha256) {
    let path = source
        .canonicalize()
        .unwrap_or_else(|_| source.to_path_buf());
    h.update(path.to_string_lossy().as_bytes());
    let mut files = vec![path.clone()];
    if path.is_dir() {
        files = fs::read_dir(&path)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
    }
    for file in files {
        h.update(file.to_string_lossy().as_bytes());
        if let Ok(meta) = fs::metadata(&file) {
            h.update(meta.len().to_le_bytes());
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .unwrap_or_default();
            h.update(mtime.as_nanos().to_le_bytes());
        }
    }
}

/// Entry layout: magic, rows (u64 LE), dim (u64 LE), rows*dim f32 LE.
fn read_entry(path: &Path, rows: usize, dim: usize) -> Option<Embeddings> {
    let bytes = fs::read(path).ok()?;
    let body = bytes.strip_prefix(FORMAT)?;
    let (r, rest) = body.split_at_checked(8)?;
    let (d, data) = rest.split_at_checked(8)?;
    let as_usize = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap()) as usize;
    if as_usize(r) != rows || as_usize(d) != dim || data.len() != rows * dim * 4 {
        return None;
    }
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Some(Embeddings::new(dim, values))
}

/// Written to a temporary file then renamed, so a concurrent reader never sees half an entry.
fn write_entry(path: &Path, e: &Embeddings) -> std::io::Result<()> {
    fs::create_dir_all(path.parent().expect("entry has a parent"))?;
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
