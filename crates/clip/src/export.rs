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
//! lines=True)` reads it. The `.npy` row count is only known at the end (files may fail), so the
//! header is written with room to spare and rewritten on [`NpyWriter::finish`].

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::similarity::Embeddings;

/// Element type of the exported `.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F16 => "<f2",
        }
    }
}

/// Fixed size of magic + version + header length + header: room for any 2-D shape.
const PREAMBLE: usize = 128;

/// A `.npy` of `[rows, dim]` written row batch by row batch.
pub struct NpyWriter {
    file: BufWriter<File>,
    dtype: Dtype,
    dim: usize,
    rows: usize,
}

impl NpyWriter {
    pub fn create(path: &Path, dim: usize, dtype: Dtype) -> std::io::Result<Self> {
        let mut file = BufWriter::new(File::create(path)?);
        file.write_all(&header(dtype, 0, dim))?;
        Ok(Self {
            file,
            dtype,
            dim,
            rows: 0,
        })
    }

    pub fn append(&mut self, e: &Embeddings) -> std::io::Result<()> {
        assert_eq!(
            e.dim(),
            self.dim,
            "embedding dimension changed within one export"
        );
        for &v in e.as_slice() {
            match self.dtype {
                Dtype::F32 => self.file.write_all(&v.to_le_bytes())?,
                Dtype::F16 => self.file.write_all(&half::f16::from_f32(v).to_le_bytes())?,
            }
        }
        self.rows += e.len();
        Ok(())
    }

    /// Writes the final shape into the header and flushes; returns the row count.
    pub fn finish(mut self) -> std::io::Result<usize> {
        self.file.seek(SeekFrom::Start(0))?;
        self.file
            .write_all(&header(self.dtype, self.rows, self.dim))?;
        self.file.flush()?;
        Ok(self.rows)
    }
}

/// npy v1.0 preamble padded to [`PREAMBLE`] bytes (a multiple of 64, as numpy aligns data).
fn header(dtype: Dtype, rows: usize, dim: usize) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}",
        dtype.descr()
    );
    dict.push_str(&" ".repeat(PREAMBLE - 10 - dict.len() - 1));
    dict.push('\n');
    let mut out = Vec::with_capacity(PREAMBLE);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// What is being exported: decides the folder and file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    Image,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_rewritten_with_the_final_shape() {
        let dir = std::env::temp_dir().join(format!("clip-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.npy");
        let mut w = NpyWriter::create(&path, 2, Dtype::F32).unwrap();
        w.append(&Embeddings::new(2, vec![1.0, 2.0, 3.0, 4.0]))
            .unwrap();
        w.append(&Embeddings::new(2, vec![5.0, 6.0])).unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        let arr = clip_fixtures::read_npy(&path);
        assert_eq!(arr.shape, vec![3, 2]);
        assert_eq!(arr.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), PREAMBLE + 6 * 4);

        let mut w = NpyWriter::create(&path, 2, Dtype::F16).unwrap();
        w.append(&Embeddings::new(2, vec![0.5, -2.0])).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(String::from_utf8_lossy(&bytes[..PREAMBLE]).contains("'<f2'"));
        assert_eq!(
            half::f16::from_le_bytes([bytes[PREAMBLE], bytes[PREAMBLE + 1]]).to_f32(),
            0.5
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
