/// Errors of the high-level API. Each wraps the part that failed; the inner errors already name
/// the file, tensor or text at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// Reading or parsing the checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] clip_checkpoint::CheckpointError),
    /// The checkpoint does not make a model, or the model refused an input.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] clip_image::ImageError),
    /// The checkpoint's tokenizer files could not be read.
    #[error(transparent)]
    TokenizerLoad(#[from] clip_tokenizer::LoadError),
    /// The checkpoint's parts disagree (its preprocessing and its image tower, ...).
    #[error("{path}: {reason}")]
    Config {
        /// The checkpoint.
        path: std::path::PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// A text could not be tokenised (too long with `Overflow::Error`).
    #[error(transparent)]
    Tokenize(#[from] clip_tokenizer::TokenizeError),
    /// Preprocessed pixels of the wrong size for the model's resolution.
    #[error("preprocessed image has {got} values, expected 3 x {resolution} x {resolution}")]
    PixelShape {
        /// Values the input had.
        got: usize,
        /// The model's input resolution (`3 * resolution^2` values expected).
        resolution: usize,
    },
    /// A tensor operation outside the model failed (building an input batch).
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}
