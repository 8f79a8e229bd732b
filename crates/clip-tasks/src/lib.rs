//! The jobs clip-rs does, built on the engine's [`clip::Embeddings`]: every front door (the
//! `clip` command, `clip serve`, the index, the Python package) runs these same functions.
//!
//! Tasks are pure over embeddings: they say which texts they need embedded and take the
//! embeddings back, so a caller can embed directly ([`clip::Clip::encode_texts`]) or through a
//! batching queue (the server) and get the same numbers.
//!
//! - [`similarity`]: cosine matrices, logits and probabilities under the model's scoring.
//! - [`zero_shot`]: prompts, templates, ensembles, the classifier.
//! - [`moderation`]: versioned policies and verdicts.
//! - [`cache`]: class embeddings on disk, keyed by a [`fingerprint::ModelFingerprint`].
//! - [`fingerprint`]: which embedding space a model (plus its decoding) defines.
//! - [`discover`]: the image files under folders.
//! - [`pipeline`]: image files to embeddings, decoded in parallel, in order, in bounded memory.
//! - [`export`] and [`npy`]: embeddings to disk in clip-retrieval's layout; [`shard`] splits work.

#![forbid(unsafe_code)]

pub mod cache;
pub mod discover;
pub mod export;
pub mod fingerprint;
pub mod moderation;
pub mod npy;
pub mod pipeline;
pub mod shard;
pub mod similarity;
pub mod zero_shot;
