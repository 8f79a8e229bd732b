//! The CLIP model (OpenAI `clip/model.py`) on candle, f32 activations, linear layers in f32 (the
//! reference's numbers) or a reduced [`crate::kernels::Precision`]: architecture inferred from the
//! checkpoint like `clip.model.build_model`, every tensor validated before use.

mod clip;
mod config;
mod conv;
mod error;
mod footprint;
mod layers;
mod modified_resnet;
pub mod random;
mod text_transformer;
mod vision_transformer;
mod weights;

pub use self::clip::{ClipModel, LoadOptions, Towers};
pub use clip_checkpoint::Activation;
pub use config::{ModelConfig, TextConfig, VisionConfig};
pub use error::ModelError;
