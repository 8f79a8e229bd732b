//! The CLIP model (OpenAI `clip/model.py`) on candle, in f32: architecture inferred from the
//! checkpoint like `clip.model.build_model`, every tensor validated before use.

mod clip;
mod config;
mod error;
mod layers;
mod modified_resnet;
pub mod random;
mod text_transformer;
mod vision_transformer;
mod weights;

pub use self::clip::ClipModel;
pub use clip_checkpoint::Activation;
pub use config::{ModelConfig, TextConfig, VisionConfig};
pub use error::ModelError;
