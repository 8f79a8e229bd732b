//! [`Clip`]: the one object the CLI, the index and the server hold. It owns a loaded model plus
//! everything needed to feed it (tokenizer, preprocessing parameters, batch size) so callers hand it
//! images and strings and get embeddings back, with the reference's numbers.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use clip_checkpoint::{load_checkpoint, Family, TokenizerSource};
use clip_image::{DecodedImage, Preprocess};
use clip_kernels::{runs_packed, Isa, Precision};
use clip_tokenizer::{Overflow, TextTokenizer, Tokenizer};

use crate::embeddings::Embeddings;
use crate::model::{ClipModel, LoadOptions, Towers};
use crate::scoring::Scoring;
use crate::ClipError;

/// Default number of inputs per forward pass: large enough to keep the GEMMs efficient, small
/// enough that a ViT-L/14 batch fits comfortably in memory.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// A loaded model (CLIP, OpenCLIP or SigLIP) ready to embed images and texts. Every
/// family-specific choice lives here, read from the checkpoint: the tokenizer
/// ([`Clip::tokenize`]), the preprocessing ([`Clip::preprocessing`]) and the logit function
/// ([`Clip::scoring`]); callers never match on the [`Family`].
pub struct Clip {
    model: ClipModel,
    source: PathBuf,
    family: Family,
    /// `None` when the text tower was not built (an image-only load never tokenises).
    tokenizer: Option<TextTokenizer>,
    preprocessing: Preprocess,
    scoring: Scoring,
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
        let device = Device::Cpu;
        let checkpoint = load_checkpoint(path)?;
        let text = options.towers != Towers::Image;
        // CLIP's BPE tables take a while to build: build them while the weights convert.
        if text && checkpoint.tokenizer == TokenizerSource::Clip {
            std::thread::spawn(Tokenizer::global);
        }
        let model = ClipModel::with_options(&checkpoint, &device, options)?;
        let resolution = model.config().image_resolution() as u32;
        let preprocessing = checkpoint
            .preprocess
            .unwrap_or_else(|| Preprocess::clip(resolution));
        if preprocessing.resolution != resolution {
            return Err(ClipError::Config {
                path: path.to_path_buf(),
                reason: format!(
                    "the preprocessing makes {0}x{0} images but the image tower takes {1}x{1}",
                    preprocessing.resolution, resolution
                ),
            });
        }
        let context_length = model.config().text.context_length;
        let tokenizer = match (&checkpoint.tokenizer, text) {
            (_, false) => None,
            (TokenizerSource::Clip, true) => Some(TextTokenizer::clip(context_length)),
            (TokenizerSource::Folder(dir), true) => {
                Some(TextTokenizer::from_folder(dir, context_length)?)
            }
        };
        let scoring = match model.logit_bias() {
            Some(bias) => Scoring::sigmoid(model.logit_scale(), bias),
            None => Scoring::softmax(model.logit_scale()),
        };
        Ok(Self {
            model,
            source: path.to_path_buf(),
            family: checkpoint.family,
            tokenizer,
            preprocessing,
            scoring,
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
    pub fn precision(&self) -> Precision {
        self.model.options().precision
    }

    /// The kernel set its linear layers run on (picked from the CPU's features at load).
    pub fn kernels(&self) -> Isa {
        self.model.isa()
    }

    /// A warning worth showing when the chosen precision gains nothing on this CPU: without
    /// AVX512-BF16/VNNI (or with `CLIP_KERNELS` capping them) the reduced precisions save memory,
    /// not time (AVX2 bf16 and f16 run at about f32's speed, int8 a little faster; the portable
    /// kernels well below it). `None` when the precision runs on its native instructions.
    pub fn speed_notice(&self) -> Option<String> {
        let (precision, isa) = (self.precision(), self.kernels());
        (precision != Precision::F32 && isa < Isa::Avx512).then(|| {
            format!(
                "this CPU lacks the AVX-512 instructions of --precision {precision} (or \
                 CLIP_KERNELS caps them): its {isa:?} kernels run at about f32's speed or below"
            )
        })
    }

    /// Whether the linear layers run on clip-rs's own packed kernels (else candle's GEMM).
    pub fn runs_packed_kernels(&self) -> bool {
        runs_packed(self.precision(), self.kernels())
    }

    /// The family the checkpoint belongs to.
    pub fn family(&self) -> Family {
        self.family
    }

    /// How images become this model's input: resolution, resize, normalisation.
    pub fn preprocessing(&self) -> &Preprocess {
        &self.preprocessing
    }

    /// How this model turns cosine similarities into logits and probabilities.
    pub fn scoring(&self) -> Scoring {
        self.scoring
    }

    /// Inputs per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Where the weights were loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }
    /// The towers, for callers that feed tensors themselves.
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
    /// Tokens per text (77 for OpenAI's models, 64 for SigLIP's; from the checkpoint).
    pub fn context_length(&self) -> usize {
        self.model.config().text.context_length
    }
    /// `logit_scale.exp()`: the factor that turns cosines into logits.
    pub fn logit_scale(&self) -> f32 {
        self.scoring.scale
    }

    /// The model's input tensor for a decoded image: float32 `[3, n, n]`, CHW, exactly as the
    /// reference's transform gives it.
    pub fn preprocess(&self, image: &DecodedImage) -> Vec<f32> {
        self.preprocessing.apply(image)
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

    /// The model's tokenizer (`None` when loaded without the text tower).
    pub fn tokenizer(&self) -> Option<&TextTokenizer> {
        self.tokenizer.as_ref()
    }

    /// Token ids for one text as the model sees them: the model's tokenizer, padded with its pad
    /// id to its context length.
    pub fn tokenize(&self, text: &str, overflow: Overflow) -> Result<Vec<u32>, ClipError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| {
            crate::model::ModelError::Input("the model was loaded without its text tower".into())
        })?;
        Ok(tokenizer.tokenize(text, overflow)?)
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

    fn to_embeddings(&self, t: Tensor) -> Result<Embeddings, ClipError> {
        let t = t.to_dtype(candle_core::DType::F32)?;
        Ok(Embeddings::new(
            self.embed_dim(),
            t.flatten_all()?.to_vec1::<f32>()?,
        ))
    }
}
