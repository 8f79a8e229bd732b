//! The seam between search and where vectors live. The embedded SQLite store implements it here;
//! a server store (Chroma) implements the same four calls with the content hash as its id.

use crate::catalog::{CatalogStore, ContentHash};
use crate::matrix::{Matrix, VectorType};
use crate::{IndexError, Space};

/// One vector with the files that have its content (several for duplicates).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The content hash: the vector's id in every store.
    pub hash: ContentHash,
    /// The L2-normalised embedding.
    pub vector: Vec<f32>,
    /// The files with this content (stores that keep no catalog of their own keep these).
    pub paths: Vec<String>,
}

/// A search result: a content hash, its cosine score, and the files with that content.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The content hash of the matching vector.
    pub hash: ContentHash,
    /// Cosine similarity to the query.
    pub score: f32,
    /// The files with that content (several for duplicates).
    pub paths: Vec<String>,
}

/// A collection of L2-normalised vectors of one [`Space`], keyed by content hash.
pub trait VectorStore {
    /// Inserts or replaces vectors (and, where the store keeps them, their paths).
    fn upsert(&mut self, records: &[Record]) -> Result<(), IndexError>;
    /// Removes vectors; unknown ids are ignored.
    fn delete(&mut self, ids: &[ContentHash]) -> Result<(), IndexError>;
    /// The `k` nearest vectors to `query` by cosine, best first, with scores `>= threshold`.
    fn search(&self, query: &[f32], k: usize, threshold: f32) -> Result<Vec<Hit>, IndexError>;
    /// How many vectors the store holds.
    fn count(&self) -> Result<usize, IndexError>;
}

/// The vectors of one space read out of a [`CatalogStore`] into one matrix, for exact search
/// (what `clip search` and the server's `/v1/search` both scan).
#[derive(Debug, Clone)]
pub struct LoadedVectors {
    hashes: Vec<ContentHash>,
    matrix: Matrix,
    damaged: usize,
}

impl LoadedVectors {
    /// Every sound vector of `space` in `store`, held as `ty` (damaged rows are left out and
    /// counted: [`LoadedVectors::damaged`]).
    pub fn load(store: &CatalogStore, space: &Space, ty: VectorType) -> Result<Self, IndexError> {
        let loaded = store.load_matrix(space, ty)?;
        Ok(Self {
            hashes: loaded.hashes,
            matrix: loaded.matrix,
            damaged: loaded.damaged.len(),
        })
    }

    /// Stored vectors left out because their bytes are damaged (`clip index` embeds their
    /// content again).
    pub fn damaged(&self) -> usize {
        self.damaged
    }

    /// How many vectors.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The `k` nearest contents to the normalised `query`, best first, scores `>= threshold`.
    pub fn top_k(&self, query: &[f32], k: usize, threshold: f32) -> Vec<(ContentHash, f32)> {
        self.matrix
            .top_k(query, k, threshold)
            .into_iter()
            .map(|(row, score)| (self.hashes[row], score))
            .collect()
    }

    /// [`LoadedVectors::top_k`] with the files holding each content, from `store`.
    pub fn search(
        &self,
        store: &CatalogStore,
        query: &[f32],
        k: usize,
        threshold: f32,
    ) -> Result<Vec<Hit>, IndexError> {
        self.top_k(query, k, threshold)
            .into_iter()
            .map(|(hash, score)| {
                Ok(Hit {
                    hash,
                    score,
                    paths: store.paths_of(&hash)?,
                })
            })
            .collect()
    }
}

/// The vectors of one space inside a [`CatalogStore`]; search is exact over a matrix loaded once.
pub struct SqliteVectors<'a> {
    store: &'a mut CatalogStore,
    space: Space,
    ty: VectorType,
    /// Loaded on first search so repeated queries do not re-read the table.
    cache: Option<LoadedVectors>,
}

impl<'a> SqliteVectors<'a> {
    /// `ty` is both how new vectors are stored and how the search matrix is held in memory.
    pub fn new(store: &'a mut CatalogStore, space: Space, ty: VectorType) -> Self {
        Self {
            store,
            space,
            ty,
            cache: None,
        }
    }

    /// Loads the matrix now (searching needs `&mut` for nothing else).
    pub fn load(&mut self) -> Result<(), IndexError> {
        if self.cache.is_none() {
            self.cache = Some(LoadedVectors::load(self.store, &self.space, self.ty)?);
        }
        Ok(())
    }
}

impl VectorStore for SqliteVectors<'_> {
    /// Paths are ignored: here they live in the catalog, written by the indexer.
    fn upsert(&mut self, records: &[Record]) -> Result<(), IndexError> {
        let blobs: Vec<(ContentHash, Vec<u8>)> = records
            .iter()
            .map(|r| (r.hash, self.ty.encode(&r.vector)))
            .collect();
        self.cache = None;
        self.store.commit(&self.space.id, &blobs, &[], &[])
    }

    fn delete(&mut self, ids: &[ContentHash]) -> Result<(), IndexError> {
        self.cache = None;
        let conn = self.store.connection();
        let path = self.store.path().to_path_buf();
        let mut stmt = conn
            .prepare_cached("DELETE FROM vectors WHERE space = ?1 AND hash = ?2")
            .map_err(IndexError::db(&path))?;
        for id in ids {
            stmt.execute(rusqlite::params![self.space.id, &id[..]])
                .map_err(IndexError::db(&path))?;
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize, threshold: f32) -> Result<Vec<Hit>, IndexError> {
        let loaded;
        let vectors = match &self.cache {
            Some(c) => c,
            None => {
                loaded = LoadedVectors::load(self.store, &self.space, self.ty)?;
                &loaded
            }
        };
        vectors.search(self.store, query, k, threshold)
    }

    fn count(&self) -> Result<usize, IndexError> {
        let path = self.store.path();
        let n: i64 = self
            .store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM vectors WHERE space = ?1",
                [&self.space.id],
                |r| r.get(0),
            )
            .map_err(IndexError::db(path))?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u8, v: &[f32]) -> Record {
        Record {
            hash: [id; 32],
            vector: v.to_vec(),
            paths: Vec::new(),
        }
    }

    fn space() -> Space {
        Space {
            id: "s1".into(),
            model: "m".into(),
            model_path: "/m".into(),
            dim: 2,
        }
    }

    #[test]
    fn upsert_search_delete_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CatalogStore::open(&dir.path().join("i.db")).unwrap();
        let mut v = SqliteVectors::new(&mut store, space(), VectorType::F32);
        v.upsert(&[
            rec(1, &[1.0, 0.0]),
            rec(2, &[0.0, 1.0]),
            rec(3, &[0.6, 0.8]),
        ])
        .unwrap();
        assert_eq!(v.count().unwrap(), 3);
        let hits = v.search(&[1.0, 0.0], 2, -1.0).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.hash).collect::<Vec<_>>(),
            vec![[1; 32], [3; 32]]
        );
        assert_eq!(v.search(&[1.0, 0.0], 10, 0.5).unwrap().len(), 2);
        v.delete(&[[1; 32]]).unwrap();
        v.load().unwrap();
        assert_eq!(v.count().unwrap(), 2);
        assert_eq!(v.search(&[1.0, 0.0], 1, -1.0).unwrap()[0].hash, [3; 32]);
    }

    #[test]
    fn f16_store_searches_like_f32() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CatalogStore::open(&dir.path().join("i.db")).unwrap();
        let mut v = SqliteVectors::new(&mut store, space(), VectorType::F16);
        v.upsert(&[rec(1, &[1.0, 0.0]), rec(2, &[0.6, 0.8])])
            .unwrap();
        let hits = v.search(&[0.0, 1.0], 2, -1.0).unwrap();
        assert_eq!(hits[0].hash, [2; 32]);
        assert!((hits[0].score - 0.8).abs() < 1e-3);
    }
}
