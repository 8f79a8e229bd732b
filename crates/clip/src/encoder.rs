//! [`Clip`]: the one object the CLI, the index and the server hold. It owns a loaded model plus
//! everything needed to feed it (tokenizer, preprocessing parameters, batch size) so callers hand it
//! images and strings and get embeddings back, with the reference's numbers.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use clip_checkpoint::load_checkpoint;
use clip_image::{preprocess, DecodedImage, Normalization};
use clip_tokenizer::{Overflow, Tokenizer};

use crate::model::{ClipModel, LoadOptions, Towers};
use crate::similarity::{logits_per_image, softmax, Embeddings};
use crate::ClipError;

/// Default number of inputs per forward pass: large enough to keep the GEMMs efficient, small
/// enough that a ViT-L/14 batch fits comfortably in memory.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// A loaded CLIP model ready to embed images and texts.
pub struct Clip {
    model: ClipModel,
    source: PathBuf,
    normalization: Normalization,
    batch_size: usize,
    device: Device,
}

impl Clip {
    /// Loads a checkpoint of any supported format (file or folder, detected from its content)
    /// on the CPU.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ClipError> {
        Self::load_with(path, LoadOptions::default())
    }

    /// As [`Clip::load`], with a precision and a choice of towers ([`LoadOptions`]).
    pub fn load_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Self, ClipError> {
        let path = path.as_ref();
        // The tokenizer's tables take ~50 ms to build: build them while the weights convert
        // (an image-only model never tokenises).
        if options.towers != Towers::Image {
            std::thread::spawn(Tokenizer::global);
        }
        let device = Device::Cpu;
        let checkpoint = load_checkpoint(path)?;
        let model = ClipModel::with_options(&checkpoint, &device, options)?;
        Ok(Self {
            model,
            source: path.to_path_buf(),
            normalization: Normalization::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            device,
        })
    }

    /// Sets how many inputs go through the model at once (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Precision of the linear layers it was loaded with.
    pub fn precision(&self) -> crate::Precision {
        self.model.options().precision
    }

    /// Inputs per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Where the weights were loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }
    pub fn model(&self) -> &ClipModel {
        &self.model
    }
    /// Input resolution of the image tower (`n_px` of the reference transform).
    pub fn resolution(&self) -> u32 {
        self.model.config().image_resolution() as u32
    }
    /// Dimension of the shared embedding space.
    pub fn embed_dim(&self) -> usize {
        self.model.config().embed_dim
    }
    /// Tokens per text (77 for every released model).
    pub fn context_length(&self) -> usize {
        self.model.config().text.context_length
    }
    /// `logit_scale.exp()`: the factor that turns cosines into logits.
    pub fn logit_scale(&self) -> f32 {
        self.model.logit_scale()
    }

    /// The reference transform for this model's resolution: float32 `[3, n, n]`, CHW.
    pub fn preprocess(&self, image: &DecodedImage) -> Vec<f32> {
        preprocess(image, self.resolution(), &self.normalization)
    }

    /// Raw `encode_image` outputs (not normalised) for decoded images, in batches.
    pub fn encode_images(&self, images: &[DecodedImage]) -> Result<Embeddings, ClipError> {
        let pixels: Vec<Vec<f32>> = images.iter().map(|img| self.preprocess(img)).collect();
        self.encode_pixels(&pixels)
    }

    /// Raw `encode_image` outputs for already preprocessed images (each `[3, n, n]`).
    pub fn encode_pixels(&self, pixels: &[Vec<f32>]) -> Result<Embeddings, ClipError> {
        let n = self.resolution() as usize;
        let mut out = Embeddings::new(self.embed_dim(), Vec::new());
        for batch in pixels.chunks(self.batch_size) {
            let mut flat = Vec::with_capacity(batch.len() * 3 * n * n);
            for p in batch {
                if p.len() != 3 * n * n {
                    return Err(ClipError::PixelShape {
                        got: p.len(),
                        resolution: n,
                    });
                }
                flat.extend_from_slice(p);
            }
            let input = Tensor::from_vec(flat, (batch.len(), 3, n, n), &self.device)?;
            out.extend(&self.to_embeddings(self.model.encode_image(&input)?)?);
        }
        Ok(out)
    }

    /// Token ids for one text, padded to the model's context length.
    pub fn tokenize(&self, text: &str, overflow: Overflow) -> Result<Vec<u32>, ClipError> {
        Ok(Tokenizer::global().tokenize(text, self.context_length(), overflow)?)
    }

    /// Raw `encode_text` outputs (not normalised), in batches. With [`Overflow::Error`] a text longer
    /// than the context is an error naming it; with [`Overflow::Truncate`] it is cut as the
    /// reference's `truncate=True` does.
    pub fn encode_texts<S: AsRef<str>>(
        &self,
        texts: &[S],
        overflow: Overflow,
    ) -> Result<Embeddings, ClipError> {
        let ctx = self.context_length();
        let mut out = Embeddings::new(self.embed_dim(), Vec::new());
        for batch in texts.chunks(self.batch_size) {
            let mut ids = Vec::with_capacity(batch.len() * ctx);
            for text in batch {
                ids.extend(self.tokenize(text.as_ref(), overflow)?);
            }
            let input = Tensor::from_vec(ids, (batch.len(), ctx), &self.device)?;
            out.extend(&self.to_embeddings(self.model.encode_text(&input)?)?);
        }
        Ok(out)
    }

    /// `logits_per_image` of the reference: `logit_scale.exp() * norm(images) @ norm(texts).T`.
    pub fn logits_per_image(&self, images: &Embeddings, texts: &Embeddings) -> Vec<Vec<f32>> {
        logits_per_image(images, texts, self.logit_scale())
    }

    /// Zero-shot probabilities: for every image, the softmax over the labels of its logits.
    pub fn zero_shot(&self, images: &Embeddings, labels: &Embeddings) -> Vec<Vec<f32>> {
        self.logits_per_image(images, labels)
            .iter()
            .map(|row| softmax(row))
            .collect()
    }

    fn to_embeddings(&self, t: Tensor) -> Result<Embeddings, ClipError> {
        let t = t.to_dtype(candle_core::DType::F32)?;
        Ok(Embeddings::new(
            self.embed_dim(),
            t.flatten_all()?.to_vec1::<f32>()?,
        ))
    }
}
