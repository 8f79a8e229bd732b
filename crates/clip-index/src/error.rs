//! Errors of the index. Each names the file, folder or database it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: database error: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the index holds {found}-dimensional vectors for model space {space}, but the model gives {expected}"
    )]
    DimMismatch {
        path: PathBuf,
        space: String,
        found: usize,
        expected: usize,
    },
    #[error("{path}: corrupt vector for content {hash} ({len} bytes is neither {dim} f32 nor {dim} f16 values)")]
    CorruptVector {
        path: PathBuf,
        hash: String,
        len: usize,
        dim: usize,
    },
    #[error("{url}: {reason}")]
    Chroma { url: String, reason: String },
    #[error(transparent)]
    Model(#[from] clip::ClipError),
    #[error(transparent)]
    Fingerprint(#[from] clip_tasks::fingerprint::FingerprintError),
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
