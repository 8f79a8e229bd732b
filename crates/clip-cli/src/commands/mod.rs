//! One module per subcommand; shared argument groups live here.

mod bench;
mod classify;
mod embed;
mod export;
mod index;
mod inputs;
mod models;
mod moderate;
mod preprocess;
mod search;
mod serve;
mod similarity;
mod tokenize;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

/// The subcommands; each variant's doc comment is its one-line help.
#[derive(Subcommand)]
pub enum Command {
    /// Embed images and texts; prints one JSON object.
    Embed(embed::EmbedArgs),
    /// Zero-shot classification of images against labels.
    Classify(classify::ClassifyArgs),
    /// Cosine similarity matrix between images and texts.
    Similarity(similarity::SimilarityArgs),
    /// Zero-shot content moderation against a policy; exit 1 when an image is flagged.
    Moderate(moderate::ModerateArgs),
    /// Index the images under folders for `clip search` (incremental; --status to inspect).
    Index(index::IndexArgs),
    /// Search indexed images by text, by image, or both (or rank captions for an image).
    Search(search::SearchArgs),
    /// The models known by name (built-in and --registry), their sizes and whether cached.
    Models(models::ModelsArgs),
    /// Token ids of texts, as the reference clip.tokenize (or --model's tokenizer) gives them.
    Tokenize(tokenize::TokenizeArgs),
    /// Write the reference-preprocessed tensor of an image (for --model: its own) as .npy.
    Preprocess(preprocess::PreprocessArgs),
    /// Throughput, batch-1 latency and peak RSS on random weights of a released architecture.
    Bench(bench::BenchArgs),
    /// HTTP API (OpenAI-style embeddings, classify, search...) with dynamic batching and a search page.
    Serve(serve::ServeArgs),
}

impl Command {
    /// Runs the command; returns the process exit code.
    pub fn run(self) -> anyhow::Result<i32> {
        match self {
            Command::Embed(a) => embed::run(a),
            Command::Classify(a) => classify::run(a),
            Command::Similarity(a) => similarity::run(a),
            Command::Moderate(a) => moderate::run(a),
            Command::Index(a) => index::run(a),
            Command::Search(a) => search::run(a),
            Command::Models(a) => models::run(a),
            Command::Tokenize(a) => tokenize::run(a),
            Command::Preprocess(a) => preprocess::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Serve(a) => serve::run(a),
        }
    }
}

/// A clap parser for floats that must be numbers: `NaN` and infinities are refused (a NaN
/// threshold would silently match nothing).
pub fn finite_f32(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number")),
        Err(e) => Err(e.to_string()),
    }
}

/// `--model`: which checkpoint to load.
#[derive(Args)]
pub struct ModelArgs {
    /// Checkpoint file or folder (OpenAI .pt, safetensors, Hugging Face or OpenCLIP folder), or a
    /// name from `clip models`, downloaded into the cache once [default: ViT-B/32].
    #[arg(long, short = 'm', env = "CLIP_MODEL")]
    pub model: Option<PathBuf>,
    /// Extra model names: a TOML or JSON file of entries {name, url, sha256, format}.
    #[arg(long, env = "CLIP_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Precision of the linear layers: f32 (the reference's numbers), bf16, f16 (half-size
    /// weights, f32 arithmetic) or int8 (dynamic quantisation). See docs/BENCHMARKS.md for the
    /// speed and accuracy of each.
    #[arg(long, env = "CLIP_PRECISION", default_value = "f32")]
    pub precision: clip::Precision,
}

impl ModelArgs {
    /// The model as given, a path or a name (printed back in JSON output); ViT-B/32 by default.
    pub fn path(&self) -> anyhow::Result<&Path> {
        Ok(self
            .model
            .as_deref()
            .unwrap_or(Path::new(clip_hub::DEFAULT_MODEL)))
    }

    /// The checkpoint on disk: an existing path as is, else a model name fetched into the cache.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        models::resolve(self)
    }

    /// Both towers.
    pub fn load(&self) -> anyhow::Result<clip::Clip> {
        self.load_towers(clip::Towers::Both)
    }

    /// Only the towers a command needs (a text-only run never reads the image weights).
    pub fn load_towers(&self, towers: clip::Towers) -> anyhow::Result<clip::Clip> {
        let options = clip::LoadOptions {
            precision: self.precision,
            towers,
            kernels: None,
        };
        let clip = clip::Clip::load_with(self.resolve()?, options)?;
        if let Some(notice) = clip.speed_notice() {
            eprintln!("clip: warning: {notice}");
        }
        Ok(clip)
    }
}

/// An optional `--model` for commands that work without one (`tokenize`, `preprocess`): no
/// default and no `CLIP_MODEL`, so they keep CLIP's behaviour unless a model is named.
#[derive(Args)]
pub struct OptionalModel {
    /// Use this model's tokenizer / preprocessing (a checkpoint path or a name from `clip models`).
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,
    /// Extra model names: a TOML or JSON file of entries {name, url, sha256, format}.
    #[arg(long, env = "CLIP_REGISTRY")]
    pub registry: Option<PathBuf>,
}

impl OptionalModel {
    /// The named model with only `towers` built, or `None` without `--model`.
    pub fn load(&self, towers: clip::Towers) -> anyhow::Result<Option<clip::Clip>> {
        let Some(model) = &self.model else {
            return Ok(None);
        };
        let args = ModelArgs {
            model: Some(model.clone()),
            registry: self.registry.clone(),
            precision: clip::Precision::F32,
        };
        Ok(Some(args.load_towers(towers)?))
    }
}

/// `--exif-orientation`, `--fast-jpeg`: shared by every command that reads images.
#[derive(Args, Clone, Copy)]
pub struct ImageArgs {
    /// Rotate images by their EXIF orientation first (the reference does not).
    #[arg(long)]
    pub exif_orientation: bool,
    /// Decode large JPEGs at 1/2, 1/4 or 1/8 scale in the DCT domain (short side kept at least
    /// the model's resolution) before the exact resize: several times faster on photos, but not
    /// the reference's pixels (docs/BENCHMARKS.md measures the difference).
    #[arg(long)]
    pub fast_jpeg: bool,
}

impl ImageArgs {
    /// Decoding options for a model of input size `resolution`.
    pub fn options(&self, resolution: u32) -> clip::image::DecodeOptions {
        clip::image::DecodeOptions {
            apply_exif_orientation: self.exif_orientation,
            jpeg_min_side: self.fast_jpeg.then_some(resolution),
            ..Default::default()
        }
    }

    /// Decodes one image file for a model of input size `resolution`.
    pub fn decode(
        &self,
        path: &Path,
        resolution: u32,
    ) -> anyhow::Result<clip::image::DecodedImage> {
        Ok(clip::image::decode_file(path, &self.options(resolution))?)
    }
}
