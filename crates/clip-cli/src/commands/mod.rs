//! One module per subcommand; shared argument groups live here.

mod classify;
mod embed;
mod preprocess;
mod tokenize;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum Command {
    /// Embed images and texts; prints one JSON object.
    Embed(embed::EmbedArgs),
    /// Zero-shot classification of images against labels.
    Classify(classify::ClassifyArgs),
    /// Token ids of texts, as the reference clip.tokenize gives them.
    Tokenize(tokenize::TokenizeArgs),
    /// Write the reference-preprocessed tensor of an image as .npy.
    Preprocess(preprocess::PreprocessArgs),
}

impl Command {
    /// Runs the command; returns the process exit code.
    pub fn run(self) -> anyhow::Result<i32> {
        match self {
            Command::Embed(a) => embed::run(a),
            Command::Classify(a) => classify::run(a),
            Command::Tokenize(a) => tokenize::run(a),
            Command::Preprocess(a) => preprocess::run(a),
        }
    }
}

/// `--model`: which checkpoint to load.
#[derive(Args)]
pub struct ModelArgs {
    /// Checkpoint file or folder (OpenAI .pt, safetensors, Hugging Face or OpenCLIP folder).
    #[arg(long, short = 'm', env = "CLIP_MODEL")]
    pub model: Option<PathBuf>,
}

impl ModelArgs {
    /// The model path as given (printed back in JSON output).
    pub fn path(&self) -> anyhow::Result<&Path> {
        self.model.as_deref().context("no model given: pass --model <PATH> (a checkpoint file or folder) or set CLIP_MODEL")
    }

    pub fn load(&self) -> anyhow::Result<clip::Clip> {
        let path = self.path()?;
        Ok(clip::Clip::load(path)?)
    }
}

/// `--exif-orientation`: shared by every command that reads images.
#[derive(Args, Clone, Copy)]
pub struct ImageArgs {
    /// Rotate images by their EXIF orientation first (the reference does not).
    #[arg(long)]
    pub exif_orientation: bool,
}

impl ImageArgs {
    pub fn decode(&self, path: &Path) -> anyhow::Result<clip::image::DecodedImage> {
        let opts = clip::image::DecodeOptions { apply_exif_orientation: self.exif_orientation, ..Default::default() };
        Ok(clip::image::decode_file(path, &opts)?)
    }
}
