//! Errors of the index. Each names the file, folder or database it is about.

use std::path::PathBuf;

/// Why an index, search or sync operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// SQLite refused an open, query or transaction.
    #[error("{path}: database error: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file or folder could not be created, read or resolved.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The space's id already holds vectors of another width than the model's: refused rather
    /// than mixed, as no query could be scored against both.
    #[error(
        "{path}: the index holds {found}-dimensional vectors for model space {space}, but the model gives {expected}"
    )]
    DimMismatch {
        /// The database file.
        path: PathBuf,
        /// The space id.
        space: String,
        /// Width of the stored vectors.
        found: usize,
        /// Width of the model's vectors.
        expected: usize,
    },
    /// The Chroma server was unreachable, refused a request or answered something unexpected.
    #[error("{url}: {reason}")]
    Chroma {
        /// The store as the user gave it (`chroma://host:port/collection`).
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] clip::ClipError),
    /// The checkpoint could not be hashed to find the space.
    #[error(transparent)]
    Fingerprint(#[from] clip_tasks::fingerprint::FingerprintError),
    /// A root folder could not be walked.
    #[error(transparent)]
    Discover(#[from] clip_tasks::discover::DiscoverError),
}

impl IndexError {
    pub(crate) fn db(path: &std::path::Path) -> impl FnOnce(rusqlite::Error) -> IndexError + '_ {
        move |source| IndexError::Db {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
        move |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
