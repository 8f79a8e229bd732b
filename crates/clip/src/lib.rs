//! CLIP (Contrastive Language-Image Pre-training) inference on candle, with the reference's numbers.
//!
//! ```no_run
//! use clip::{tokenizer::Overflow, Clip};
//!
//! # fn main() -> Result<(), clip::ClipError> {
//! let model = Clip::load("fixtures/models/tiny-vit.safetensors")?;
//! let image = clip::image::decode_file("photo.jpg".as_ref(), &Default::default())?;
//! let images = model.encode_images(&[image])?;
//! let labels = model.encode_texts(&["a dog", "a cat"], Overflow::Truncate)?;
//! let probs = model.zero_shot(&images, &labels); // one row per image, summing to 1
//! # Ok(()) }
//! ```
//!
//! Layers: [`tokenizer`], [`image`] and [`checkpoint`] are candle-free crates re-exported here;
//! [`model`] holds the towers; [`Clip`] ties them together; [`similarity`] is the shared maths.

pub use clip_checkpoint as checkpoint;
pub use clip_image as image;
pub use clip_tokenizer as tokenizer;

/// The candle crate the model runs on (its `Tensor` and `Device` appear in the model API).
pub use candle_core as candle;

pub mod batch;
pub mod embedding_cache;
mod encoder;
mod error;
pub mod export;
pub mod kernels;
pub mod model;
pub mod moderation;
pub mod similarity;
pub mod zero_shot;

pub use encoder::{Clip, DEFAULT_BATCH_SIZE};
pub use error::ClipError;
pub use kernels::Precision;
pub use model::{
    ClipModel, LoadOptions, ModelConfig, ModelError, TextConfig, Towers, VisionConfig,
};
pub use similarity::Embeddings;
