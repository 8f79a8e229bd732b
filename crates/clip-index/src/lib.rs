//! Semantic image search over a folder of photos: an incremental, crash-safe index of CLIP image
//! embeddings in one SQLite file, and exact search over it.
//!
//! - [`indexer`] runs an index pass: the shared walk ([`clip_tasks::discover`]), then read + hash +
//!   decode + preprocess on the shared pipeline's workers ([`clip_tasks::pipeline`]), the model in
//!   batches on the caller's thread, one SQLite transaction per batch.
//! - [`CatalogStore`] is the SQLite file: the catalog of files and the vectors, keyed by
//!   [`Space`] (model fingerprint + preprocessing version) so models never mix.
//! - [`VectorStore`] is the seam between search and vectors: [`SqliteVectors`] (embedded, exact
//!   search over a [`Matrix`]) and [`ChromaStore`] (a Chroma server, kept in sync with the catalog).
//! - [`query`] combines text and image embeddings with weights into one query vector.

#![forbid(unsafe_code)]

mod catalog;
mod chroma;
mod error;
pub mod indexer;
mod matrix;
pub mod query;
mod space;
mod store;

pub use catalog::{default_db_path, hex, parse_hex, CatalogStore, ContentHash, FileRow, Status};
pub use chroma::{ChromaStore, SyncReport};
pub use error::IndexError;
pub use indexer::{index, IndexOptions, IndexReport, ProgressEvent};
pub use matrix::{Matrix, VectorType};
pub use space::Space;
pub use store::{Hit, LoadedVectors, Record, SqliteVectors, VectorStore};
