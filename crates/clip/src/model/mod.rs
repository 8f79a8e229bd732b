//! The CLIP model (OpenAI `clip/model.py`, open_clip's configurations) and SigLIP on candle, f32 activations, linear layers in f32 (the
//! reference's numbers) or a reduced [`crate::kernels::Precision`]: architecture inferred from the
//! checkpoint like `clip.model.build_model`, every tensor validated before use.

mod attention_pool;
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
pub use config::{ModelConfig, TextConfig, TextProjection, VisionConfig, VitPool};
pub use error::ModelError;
