//! The clip-rs engine: a checkpoint of any supported format becomes a model, and the model turns
//! images and texts into [`Embeddings`] with the reference's numbers.
//!
//! ```no_run
//! use clip::{tokenizer::Overflow, Clip};
//!
//! # fn main() -> Result<(), clip::ClipError> {
//! let model = Clip::load("fixtures/models/tiny-vit.safetensors")?;
//! let image = clip::image::decode_file("photo.jpg".as_ref(), &Default::default())?;
//! let images = model.encode_images(&[image])?.normalized();
//! let labels = model.encode_texts(&["a dog", "a cat"], Overflow::Truncate)?.normalized();
//! let scoring = model.scoring(); // the family's logit function
//! let logits: Vec<f32> = labels.rows().map(|l| scoring.logit(clip::dot(images.row(0), l))).collect();
//! let probs = scoring.probabilities(&logits);
//! # Ok(()) }
//! ```
//!
//! Layers: [`tokenizer`], [`image`] and [`checkpoint`] are candle-free crates re-exported here;
//! the SIMD kernels live in `clip-kernels`; [`model`] holds the towers; [`Clip`] ties a model to
//! its tokenizer, preprocessing and [`Scoring`]. What is built on embeddings (zero-shot,
//! moderation, caches, file pipelines, exports) is the task layer, `clip-tasks`.

#![deny(unsafe_op_in_unsafe_fn)]

pub use clip_checkpoint as checkpoint;
pub use clip_image as image;
pub use clip_tokenizer as tokenizer;

/// The candle crate the model runs on (its `Tensor` and `Device` appear in the model API).
pub use candle_core as candle;

// The kernels crate under the name the model code has always used for it.
use clip_kernels as kernels;

pub mod bench;
mod embeddings;
mod encoder;
mod error;
pub mod model;
mod scoring;

pub use clip_checkpoint::Family;
pub use clip_kernels::{Isa, Precision};
pub use embeddings::{dot, normalize, Embeddings};
pub use encoder::{Clip, DEFAULT_BATCH_SIZE};
pub use error::ClipError;
pub use model::{
    ClipModel, LoadOptions, ModelConfig, ModelError, TextConfig, Towers, VisionConfig,
};
pub use scoring::{Probability, Scoring};
