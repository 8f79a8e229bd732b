//! `clip embed`: images and texts to embeddings, printed as JSON, or exported with `--output`.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};
use clip::tokenizer::Overflow;
use clip_tasks::npy::Dtype;
use clip_tasks::shard::Shard;
use serde_json::json;

use super::export::{export, ExportRequest};
use super::inputs::{check_json_names, embed_all_images, path_text, warn_truncated};
use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

/// Element type of exported embeddings: `f32` is exactly what the model computed, `f16` (IEEE
/// half) half the disk with values rounded.
// No doc comments on the variants: clap would turn them into per-value help and switch the whole
// `--help` to its long layout.
#[derive(Clone, Copy, ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
}

/// `clip embed` arguments.
#[derive(Args)]
pub struct EmbedArgs {
    /// `--model`, `--registry`, `--precision`.
    #[command(flatten)]
    model: ModelArgs,
    /// Image files to embed.
    #[arg(long = "image", short = 'i')]
    images: Vec<PathBuf>,
    /// Texts to embed.
    #[arg(long = "text", short = 't')]
    texts: Vec<String>,
    /// Print encode_image/encode_text outputs as they are, not L2-normalised.
    #[arg(long)]
    raw: bool,
    /// Fail on texts longer than the context instead of truncating them.
    #[arg(long)]
    no_truncate: bool,
    /// Write embeddings to this folder (clip-retrieval layout) instead of printing JSON.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Folder searched recursively for images (sorted; by extension or file signature).
    #[arg(long, requires = "output")]
    image_dir: Vec<PathBuf>,
    /// File listing image paths, one per line.
    #[arg(long, requires = "output")]
    paths_file: Option<PathBuf>,
    /// File listing texts, one per line.
    #[arg(long, requires = "output")]
    texts_file: Option<PathBuf>,
    /// Element type of the exported .npy files.
    #[arg(long, value_enum, default_value = "f32", requires = "output")]
    dtype: DtypeArg,
    /// Embed only item k with k % N == i of the sorted inputs (split work over N machines).
    #[arg(long, requires = "output")]
    shard: Option<Shard>,
    /// Inputs per forward pass.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: Option<u32>,
    /// `--exif-orientation`, `--fast-jpeg`.
    #[command(flatten)]
    image_args: ImageArgs,
}

/// Loads only the towers the inputs need, then prints the embeddings as one JSON object, or
/// hands everything to [`export`] when `--output` is given.
pub fn run(args: EmbedArgs) -> anyhow::Result<i32> {
    if args.output.is_none() && args.images.is_empty() && args.texts.is_empty() {
        bail!("nothing to embed: give at least one --image FILE or --text TEXT");
    }
    let overflow = if args.no_truncate {
        Overflow::Error
    } else {
        Overflow::Truncate
    };
    let any_images =
        !args.images.is_empty() || !args.image_dir.is_empty() || args.paths_file.is_some();
    let any_texts = !args.texts.is_empty() || args.texts_file.is_some();
    let towers = match (any_images, any_texts) {
        (false, true) => clip::Towers::Text,
        (true, false) => clip::Towers::Image,
        _ => clip::Towers::Both,
    };
    let clip = args.model.load_towers(towers)?;
    let clip = match args.batch_size {
        Some(b) => clip.with_batch_size(b as usize),
        None => clip,
    };
    if let Some(output) = &args.output {
        return export(
            &clip,
            ExportRequest {
                output,
                images: &args.images,
                image_dirs: &args.image_dir,
                paths_file: args.paths_file.as_deref(),
                texts: &args.texts,
                texts_file: args.texts_file.as_deref(),
                dtype: match args.dtype {
                    DtypeArg::F32 => Dtype::F32,
                    DtypeArg::F16 => Dtype::F16,
                },
                shard: args.shard.unwrap_or(Shard::ALL),
                raw: args.raw,
                overflow,
                image_args: &args.image_args,
            },
        );
    }
    if overflow == Overflow::Truncate {
        warn_truncated(&clip, &args.texts);
    }
    check_json_names(&args.images)?;
    let finish = |e: clip::Embeddings| if args.raw { e } else { e.normalized() };
    let image_emb = finish(embed_all_images(&clip, &args.images, &args.image_args)?);
    let text_emb = finish(clip.encode_texts(&args.texts, overflow)?);
    let images_json: Vec<_> = args
        .images
        .iter()
        .zip(image_emb.rows())
        .map(|(p, e)| json!({"path": path_text(p), "embedding": e}))
        .collect();
    let texts_json: Vec<_> = args
        .texts
        .iter()
        .zip(text_emb.rows())
        .map(|(t, e)| json!({"text": t, "embedding": e}))
        .collect();
    print_json(&json!({
        "model": path_text(args.model.path()?),
        "dim": clip.embed_dim(),
        "images": images_json,
        "texts": texts_json,
    }))?;
    Ok(0)
}
