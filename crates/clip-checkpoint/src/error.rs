use std::path::PathBuf;

/// Every way a checkpoint can be refused. Each variant names the file, and the tensor where
/// there is one, so a user can tell which of their files is broken and why.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file or folder is not a checkpoint we read, or its structure is damaged.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong, for a person to read.
        reason: String,
    },
    /// One tensor is unusable (dtype, shape, bounds, values).
    #[error("{path}: tensor {tensor}: {reason}")]
    Tensor {
        /// The file holding it.
        path: PathBuf,
        /// The tensor's name (as stored, or its OpenAI name once mapped).
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl CheckpointError {
    /// A [`CheckpointError::Invalid`].
    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
    /// A [`CheckpointError::Tensor`].
    pub fn tensor(
        path: impl Into<PathBuf>,
        tensor: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Tensor {
            path: path.into(),
            tensor: tensor.into(),
            reason: reason.into(),
        }
    }
    /// A [`CheckpointError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
