//! The photo index behind `/v1/search` and `/v1/images/{id}`: the vectors of the served model's
//! space, loaded once at startup into one contiguous matrix (exact search), and the SQLite catalog
//! for paths. Images are addressed by content hash, so a client can only ever fetch files the
//! index lists. A re-run of `clip index` is picked up by restarting the server.

use std::path::Path;
use std::sync::Mutex;

use clip_index::{hex, CatalogStore, ContentHash, IndexError, Matrix, Space, VectorType};

/// One search result: an indexed image (by content) and the files that hold it.
pub struct Found {
    pub id: String,
    pub score: f32,
    pub paths: Vec<String>,
}

pub struct SearchIndex {
    store: Mutex<CatalogStore>,
    hashes: Vec<ContentHash>,
    matrix: Matrix,
}

impl SearchIndex {
    /// Opens the index at `db` and loads the vectors of the model at `model_path` (embedding size
    /// `dim`, linear layers in `precision`, no EXIF rotation, as `clip index` defaults to).
    pub fn open(
        db: &Path,
        model_path: &Path,
        dim: usize,
        precision: clip::Precision,
    ) -> Result<Self, IndexError> {
        if !db.exists() {
            // Opening would create an empty index: refuse a mistyped --db instead.
            let source = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such index file (run `clip index` first)",
            );
            return Err(IndexError::Io {
                path: db.to_path_buf(),
                source,
            });
        }
        let store = CatalogStore::open(db)?;
        let space = Space::of_checkpoint(model_path, dim, &Default::default(), precision)?;
        let (hashes, matrix) = store.load_matrix(&space, VectorType::F32)?;
        Ok(Self {
            store: Mutex::new(store),
            hashes,
            matrix,
        })
    }

    /// Images in the served model's space.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The `k` images nearest to the normalised `query`, best first, scores `>= threshold`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        threshold: f32,
    ) -> Result<Vec<Found>, IndexError> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        self.matrix
            .top_k(query, k, threshold)
            .into_iter()
            .map(|(row, score)| {
                let hash = &self.hashes[row];
                Ok(Found {
                    id: hex(hash),
                    score,
                    paths: store.paths_of(hash)?,
                })
            })
            .collect()
    }

    /// A file holding the image with content id `id` (64 hex digits), if the index has one.
    pub fn path_of(&self, id: &str) -> Result<Option<String>, IndexError> {
        let Some(hash) = parse_hex(id) else {
            return Ok(None);
        };
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        Ok(store.paths_of(&hash)?.into_iter().next())
    }
}

fn parse_hex(id: &str) -> Option<ContentHash> {
    if id.len() != 64 || !id.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
