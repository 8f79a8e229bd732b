/// Errors of the high-level API. Each wraps the part that failed; the inner errors already name
/// the file, tensor or text at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error(transparent)]
    Checkpoint(#[from] clip_checkpoint::CheckpointError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Image(#[from] clip_image::ImageError),
    #[error(transparent)]
    Tokenize(#[from] clip_tokenizer::TokenizeError),
    #[error("preprocessed image has {got} values, expected 3 x {resolution} x {resolution}")]
    PixelShape { got: usize, resolution: usize },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}
