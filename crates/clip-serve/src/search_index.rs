//! The photo index behind `/v1/search` and `/v1/images/{id}`: the served model's space loaded
//! once at startup ([`LoadedVectors`], the same exact search `clip search` runs), and the SQLite
//! catalog for paths. Images are addressed by content hash, so a client can only ever fetch files
//! the index lists. A re-run of `clip index` is picked up without a restart (see
//! [`crate::state::IndexSlot`]).

use std::path::Path;
use std::sync::Mutex;

use clip::Clip;
use clip_index::{
    hex, parse_hex, CatalogStore, ContentHash, IndexError, LoadedVectors, Space, VectorType,
};

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
        // Read-only: a mistyped --db is an error, never a new empty index.
        let store = CatalogStore::open_read_only(db)?;
        let space = Space::of(
            clip,
            &clip.source().display().to_string(),
            &Default::default(),
        )?;
        let vectors = LoadedVectors::load(&store, &space, VectorType::F32)?;
        if vectors.damaged() > 0 {
            eprintln!(
                "clip serve: {} stored vectors of {} are damaged and left out (`clip index` embeds them again)",
                vectors.damaged(),
                db.display()
            );
        }
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

    /// The content hash of id `id` (64 hex digits) and the files the index lists with that
    /// content; `None` for an id the index does not know.
    pub fn files_of(&self, id: &str) -> Result<Option<(ContentHash, Vec<String>)>, IndexError> {
        let Some(hash) = parse_hex(id) else {
            return Ok(None);
        };
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let paths = store.paths_of(&hash)?;
        Ok((!paths.is_empty()).then_some((hash, paths)))
    }
}
