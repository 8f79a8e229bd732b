use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use clip::tokenizer::{Overflow, Tokenizer};
use serde_json::json;

use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

#[derive(Args)]
pub struct EmbedArgs {
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
    #[command(flatten)]
    image_args: ImageArgs,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<i32> {
    if args.images.is_empty() && args.texts.is_empty() {
        bail!("nothing to embed: give at least one --image FILE or --text TEXT");
    }
    let model_path = args.model.path()?.to_path_buf();
    let clip = args.model.load()?;
    let overflow = if args.no_truncate { Overflow::Error } else { Overflow::Truncate };
    if overflow == Overflow::Truncate {
        for text in &args.texts {
            if Tokenizer::global().tokenize(text, clip.context_length(), Overflow::Error).is_err() {
                eprintln!("clip: warning: text truncated to {} tokens: {text:?}", clip.context_length());
            }
        }
    }
    let images = args.images.iter().map(|p| args.image_args.decode(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let finish = |e: clip::Embeddings| if args.raw { e } else { e.normalized() };
    let image_emb = finish(clip.encode_images(&images)?);
    let text_emb = finish(clip.encode_texts(&args.texts, overflow)?);
    let images_json: Vec<_> =
        args.images.iter().zip(image_emb.rows()).map(|(p, e)| json!({"path": p, "embedding": e})).collect();
    let texts_json: Vec<_> =
        args.texts.iter().zip(text_emb.rows()).map(|(t, e)| json!({"text": t, "embedding": e})).collect();
    print_json(&json!({
        "model": model_path,
        "dim": clip.embed_dim(),
        "images": images_json,
        "texts": texts_json,
    }))?;
    Ok(0)
}
