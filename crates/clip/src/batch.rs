//! The one path from image files to embeddings that every command shares: find the files,
//! split them into shards, decode and preprocess a batch in parallel (decoding is the CPU-heavy
//! part and independent per file), run the model on the batch, and report per-file failures
//! without stopping the run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rayon::prelude::*;

use crate::image::{decode_file, sniff, DecodeOptions, ImageError};
use crate::similarity::Embeddings;
use crate::{Clip, ClipError};

/// File extensions taken as images without opening them (lower case). Other files are opened and
/// kept when their first bytes are an image signature ([`sniff`]).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "bmp", "dib", "tif", "tiff",
];

/// Every image file under `dir`, recursively, in sorted path order (so that ids and shards are
/// the same on every machine). Hidden entries (`.name`) are skipped; symbolic links to files are
/// followed, links to folders are not (no cycles).
pub fn find_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(dir, &mut out)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() && looks_like_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `path` is taken as an image: a known extension, or else an image signature in its
/// first bytes (an unreadable file is not). Decoding decides whether it really is one.
pub fn looks_like_image(path: &Path) -> bool {
    let known = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    known || {
        let mut head = [0u8; 16];
        std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .is_ok_and(|n| sniff(&head[..n]).is_some())
    }
}

/// `--shard i/N`: item `k` of a sorted list belongs to shard `k % N`, so `N` machines given the
/// same list split it without overlap or gap, and each shard is spread over the whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole set.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn contains(&self, item: usize) -> bool {
        item % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid shard {s:?}: expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The outcome of one batch of [`embed_image_files`]. Indices are into the `paths` given.
pub struct ImageBatch {
    /// Files embedded, in order; row `r` of `embeddings` belongs to `paths[embedded[r]]`.
    pub embedded: Vec<usize>,
    /// Raw `encode_image` outputs (not normalised).
    pub embeddings: Embeddings,
    /// Files that could not be read or decoded, with the reason (which names the file).
    pub failed: Vec<(usize, ImageError)>,
}

/// Decodes and embeds `paths` batch by batch (the model's batch size), handing each batch to
/// `on_batch` as soon as it is done so that callers can stream results and show progress.
/// An unreadable file lands in [`ImageBatch::failed`]; a model error stops the run.
pub fn embed_image_files<E: From<ClipError>>(
    clip: &Clip,
    paths: &[PathBuf],
    opts: &DecodeOptions,
    mut on_batch: impl FnMut(ImageBatch) -> Result<(), E>,
) -> Result<(), E> {
    let batch_size = clip.batch_size();
    for (b, chunk) in paths.chunks(batch_size).enumerate() {
        let decoded: Vec<Result<Vec<f32>, ImageError>> = chunk
            .par_iter()
            .map(|p| decode_file(p, opts).map(|img| clip.preprocess(&img)))
            .collect();
        let (mut embedded, mut pixels, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for (k, d) in decoded.into_iter().enumerate() {
            match d {
                Ok(p) => {
                    embedded.push(b * batch_size + k);
                    pixels.push(p);
                }
                Err(e) => failed.push((b * batch_size + k, e)),
            }
        }
        let embeddings = clip.encode_pixels(&pixels)?;
        on_batch(ImageBatch {
            embedded,
            embeddings,
            failed,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        let shards: Vec<Shard> = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for item in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.contains(item)).count(), 1);
        }
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains(bad), "{bad}");
        }
    }
}
