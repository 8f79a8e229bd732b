//! The photo index behind `/v1/search` and `/v1/images/{id}`: the served model's space loaded
//! once at startup ([`LoadedVectors`], the same exact search `clip search` runs), and the SQLite
//! catalog for paths. Images are addressed by content hash, so a client can only ever fetch files
//! the index lists. A re-run of `clip index` is picked up by restarting the server.

use std::path::Path;
use std::sync::Mutex;

use clip::Clip;
use clip_index::{hex, parse_hex, CatalogStore, IndexError, LoadedVectors, Space, VectorType};

/// One search result: an indexed image (by content) and the files that hold it.
pub struct Found {
    /// The content id (hex of the content hash).
    pub id: String,
    /// Cosine similarity to the query.
    pub score: f32,
    /// The files with this content.
    pub paths: Vec<String>,
}

/// The index of one served model.
pub struct SearchIndex {
    store: Mutex<CatalogStore>,
    vectors: LoadedVectors,
}

impl SearchIndex {
    /// Opens the index at `db` and loads the vectors `clip` made of images decoded as `clip
    /// index` decodes by default (no EXIF rotation).
    pub fn open(db: &Path, clip: &Clip) -> Result<Self, IndexError> {
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
        let space = Space::of(
            clip,
            &clip.source().display().to_string(),
            &Default::default(),
        )?;
        let vectors = LoadedVectors::load(&store, &space, VectorType::F32)?;
        Ok(Self {
            store: Mutex::new(store),
            vectors,
        })
    }

    /// Images in the served model's space.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// The `k` images nearest to the normalised `query`, best first, scores `>= threshold`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        threshold: f32,
    ) -> Result<Vec<Found>, IndexError> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self
            .vectors
            .search(&store, query, k, threshold)?
            .into_iter()
            .map(|hit| Found {
                id: hex(&hit.hash),
                score: hit.score,
                paths: hit.paths,
            })
            .collect())
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
