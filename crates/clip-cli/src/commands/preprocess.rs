//! `clip preprocess`: an image file to the reference-preprocessed `[3, N, N]` tensor, as `.npy`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clip::image::Preprocess;
use clip_tasks::npy::{write_npy, Dtype};

use super::ImageArgs;

/// `clip preprocess` arguments.
#[derive(Args)]
pub struct PreprocessArgs {
    /// Image file.
    image: PathBuf,
    /// Output side in pixels (the model's input resolution: 224, 288, 336, 384, 448 ...).
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u32).range(1..=4096))]
    resolution: u32,
    /// Where to write the float32 [3, N, N] tensor.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// `--exif-orientation`, `--fast-jpeg`.
    #[command(flatten)]
    image_args: ImageArgs,
}

/// Decodes the image, applies CLIP's preprocessing at `--resolution` and writes it as f32 `.npy`.
pub fn run(args: PreprocessArgs) -> anyhow::Result<i32> {
    let img = args.image_args.decode(&args.image, args.resolution)?;
    let n = args.resolution as usize;
    let data = Preprocess::clip(args.resolution).apply(&img);
    write_npy(&args.output, &[3, n, n], &data, Dtype::F32)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(0)
}
