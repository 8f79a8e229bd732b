//! `clip preprocess`: an image file to the reference-preprocessed `[3, N, N]` tensor, as `.npy`:
//! CLIP's transform at `--resolution`, or the preprocessing a model describes (`--model`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clip::image::Preprocess;
use clip_tasks::npy::{write_npy, Dtype};

use super::{ImageArgs, OptionalModel};

/// `clip preprocess` arguments.
#[derive(Args)]
pub struct PreprocessArgs {
    /// Image file.
    image: PathBuf,
    /// Output side in pixels of CLIP's transform (224, 288, 336, 384, 448 ...) [default: 224].
    #[arg(long, conflicts_with = "model", value_parser = clap::value_parser!(u32).range(1..=4096))]
    resolution: Option<u32>,
    /// `--model`: that model's preprocessing (resolution, resize mode, interpolation, mean/std).
    #[command(flatten)]
    model: OptionalModel,
    /// Where to write the float32 [3, N, N] tensor.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// `--exif-orientation`, `--fast-jpeg`.
    #[command(flatten)]
    image_args: ImageArgs,
}

/// Decodes the image, applies the preprocessing and writes it as f32 `.npy`.
pub fn run(args: PreprocessArgs) -> anyhow::Result<i32> {
    let preprocess = match args.model.load(clip::Towers::Image)? {
        Some(clip) => *clip.preprocessing(),
        None => Preprocess::clip(args.resolution.unwrap_or(224)),
    };
    let img = args.image_args.decode(&args.image, preprocess.resolution)?;
    let n = preprocess.resolution as usize;
    let data = preprocess.apply(&img);
    write_npy(&args.output, &[3, n, n], &data, Dtype::F32)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(0)
}
