//! Errors of model construction and inference.

use std::path::{Path, PathBuf};

use clip_checkpoint::DType;

/// Why a checkpoint could not be turned into a [`ClipModel`](super::ClipModel), or why an
/// `encode_*` call was refused. Checkpoint problems name the file (when known) and the tensor.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor the architecture needs is absent.
    #[error("{}missing tensor {name}", at(path))]
    MissingTensor {
        /// The checkpoint file, once known (attached by [`ModelError::with_path`]).
        path: Option<PathBuf>,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has a shape that does not fit the inferred architecture.
    #[error("{}tensor {name} has shape {shape:?}, expected {expected}", at(path))]
    Shape {
        /// The checkpoint file, once known (attached by [`ModelError::with_path`]).
        path: Option<PathBuf>,
        /// The tensor's name.
        name: String,
        /// Its shape in the checkpoint.
        shape: Vec<usize>,
        /// The shape (or kind of shape) the architecture needs.
        expected: String,
    },
    /// A weight tensor is not floating point.
    #[error(
        "{}tensor {name} has dtype {dtype:?}, expected a floating-point type",
        at(path)
    )]
    DType {
        /// The checkpoint file, once known (attached by [`ModelError::with_path`]).
        path: Option<PathBuf>,
        /// The tensor's name.
        name: String,
        /// Its element type in the checkpoint.
        dtype: DType,
    },
    /// A weight tensor holds NaN or infinite values.
    #[error("{}tensor {name} contains {what}", at(path))]
    NonFinite {
        /// The checkpoint file, once known (attached by [`ModelError::with_path`]).
        path: Option<PathBuf>,
        /// The tensor's name.
        name: String,
        /// What it contains (`NaN`, `infinite values`, ...).
        what: &'static str,
    },
    /// The tensors are present but describe an impossible architecture (e.g. heads do not divide width).
    #[error("{}{reason}", at(path))]
    Config {
        /// The checkpoint file, once known (attached by [`ModelError::with_path`]).
        path: Option<PathBuf>,
        /// What is impossible about it.
        reason: String,
    },
    /// An `encode_*` input of the wrong shape, type or content.
    #[error("{0}")]
    Input(String),
    /// A candle operation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being computed (a layer or tensor name).
        context: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
}

fn at(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

impl ModelError {
    /// A missing tensor, its path attached later.
    pub(crate) fn missing(name: impl Into<String>) -> Self {
        Self::MissingTensor {
            path: None,
            name: name.into(),
        }
    }
    /// A tensor of the wrong shape, its path attached later.
    pub(crate) fn shape(
        name: impl Into<String>,
        shape: &[usize],
        expected: impl Into<String>,
    ) -> Self {
        Self::Shape {
            path: None,
            name: name.into(),
            shape: shape.to_vec(),
            expected: expected.into(),
        }
    }
    /// An impossible architecture, its path attached later.
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            path: None,
            reason: reason.into(),
        }
    }

    /// Attaches the checkpoint path to a checkpoint error that has none yet.
    pub fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            Self::MissingTensor { path, .. }
            | Self::Shape { path, .. }
            | Self::DType { path, .. }
            | Self::NonFinite { path, .. }
            | Self::Config { path, .. } => {
                if path.is_none() {
                    *path = Some(file.to_path_buf());
                }
            }
            Self::Input(_) | Self::Candle { .. } => {}
        }
        self
    }

    /// The checkpoint path this error names, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::MissingTensor { path, .. }
            | Self::Shape { path, .. }
            | Self::DType { path, .. }
            | Self::NonFinite { path, .. }
            | Self::Config { path, .. } => path.as_deref(),
            Self::Input(_) | Self::Candle { .. } => None,
        }
    }
}

/// Wraps candle errors with a short description of what was being computed.
pub(crate) trait Context<T> {
    /// The value, or the error as [`ModelError::Candle`] with `context`.
    fn ctx(self, context: &str) -> Result<T, ModelError>;
}

impl<T> Context<T> for candle_core::Result<T> {
    fn ctx(self, context: &str) -> Result<T, ModelError> {
        self.map_err(|source| ModelError::Candle {
            context: context.to_string(),
            source,
        })
    }
}
