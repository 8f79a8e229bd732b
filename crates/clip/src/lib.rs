//! CLIP inference (work in progress).
pub use clip_checkpoint as checkpoint;
pub use clip_image as image;
pub use clip_tokenizer as tokenizer;
