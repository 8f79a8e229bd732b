//! CLIP checkpoints by name.
//!
//! A [`Registry`] maps names (`ViT-B/32`, `openai/clip-vit-base-patch32`, user-defined ones) to
//! the files to download; a [`Hub`] resolves a name or a path to a local path, fetching into a
//! cache folder once. Downloads are resumable, verified against the published SHA-256 (or, where
//! none is published, checked for structure), renamed into place atomically and locked, so
//! concurrent processes fetch a file once. Kept apart from the model crates so that nothing that
//! loads weights depends on HTTP or TLS.

#![forbid(unsafe_code)]

mod builtin;
mod download;
mod error;
mod hub;
mod mirror;
mod registry;
#[cfg(any(test, feature = "test-server"))]
pub mod test_server;
mod verify;

pub use download::FetchOptions;
pub use error::HubError;
pub use hub::{default_cache_dir, Fetched, FileCheck, Hub};
pub use mirror::Mirror;
// The checkpoint crate's types, so the registry and the loader cannot disagree on what an
// activation or a family is; the registry files' spellings (`quick_gelu`, `gelu`; `clip`,
// `siglip`) are their serde names.
pub use clip_checkpoint::{Activation, Family};
pub use registry::{ArtifactFormat, ModelEntry, Origin, Registry, RemoteFile, Source, SourceKind};

/// The model used when none is named, as in the reference's examples.
pub const DEFAULT_MODEL: &str = "ViT-B/32";
