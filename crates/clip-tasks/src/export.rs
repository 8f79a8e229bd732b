//! Writing embeddings in the layout clip-retrieval produces and autofaiss consumes:
//!
//! ```text
//! OUT/img_emb/img_emb_<i>.npy          float32 (or float16) [rows, dim]
//! OUT/metadata/metadata_<i>.jsonl      one {"id", "image_path"} per row, same order
//! OUT/text_emb/text_emb_<i>.npy        texts, likewise
//! OUT/text_metadata/metadata_<i>.jsonl one {"id", "caption"} per row
//! OUT/failed_<i>.jsonl                 one {"id", "path", "error"} per skipped file
//! ```
//!
//! `<i>` is the shard index, so the folders of N machines merge by copying. Metadata is JSON Lines
//! rather than parquet (no parquet writer in the dependency tree); `pandas.read_json(path,
//! lines=True)` reads it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clip::Embeddings;
use serde_json::Value;

use crate::npy::{Dtype, NpyWriter};

/// What is being exported: decides the folder and file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    /// `img_emb/` and `metadata/`.
    Image,
    /// `text_emb/` and `text_metadata/`.
    Text,
}

impl Modality {
    fn folders(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Modality::Image => ("img_emb", "img_emb", "metadata"),
            Modality::Text => ("text_emb", "text_emb", "text_metadata"),
        }
    }
}

/// One modality's embeddings and metadata for one shard, written in step.
pub struct EmbeddingSink {
    npy: NpyWriter,
    metadata: BufWriter<File>,
    npy_path: PathBuf,
}

impl EmbeddingSink {
    /// Creates `OUT/<emb>/<emb>_<shard>.npy` and its metadata file (folders included).
    pub fn create(
        out: &Path,
        modality: Modality,
        shard: usize,
        dim: usize,
        dtype: Dtype,
    ) -> std::io::Result<Self> {
        let (emb_dir, emb_name, meta_dir) = modality.folders();
        let npy_path = out.join(emb_dir).join(format!("{emb_name}_{shard}.npy"));
        let meta_path = out.join(meta_dir).join(format!("metadata_{shard}.jsonl"));
        for p in [&npy_path, &meta_path] {
            std::fs::create_dir_all(p.parent().expect("has a parent"))
                .map_err(|e| annotate(p, e))?;
        }
        Ok(Self {
            npy: NpyWriter::create(&npy_path, dim, dtype).map_err(|e| annotate(&npy_path, e))?,
            metadata: BufWriter::new(
                File::create(&meta_path).map_err(|e| annotate(&meta_path, e))?,
            ),
            npy_path,
        })
    }

    /// Appends rows and their metadata lines (one JSON object per row, same order).
    pub fn push(&mut self, embeddings: &Embeddings, metadata: &[Value]) -> std::io::Result<()> {
        assert_eq!(
            embeddings.len(),
            metadata.len(),
            "one metadata line per embedding"
        );
        self.npy
            .append(embeddings)
            .map_err(|e| annotate(&self.npy_path, e))?;
        for m in metadata {
            serde_json::to_writer(&mut self.metadata, m)?;
            self.metadata.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Finalises both files; returns the number of rows written.
    pub fn finish(mut self) -> std::io::Result<usize> {
        self.metadata.flush()?;
        let path = self.npy_path.clone();
        self.npy.finish().map_err(|e| annotate(&path, e))
    }
}

/// The path of the skipped-files log of a shard.
pub fn failed_path(out: &Path, shard: usize) -> PathBuf {
    out.join(format!("failed_{shard}.jsonl"))
}

fn annotate(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
