use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use clip::tokenizer::Overflow;
use serde_json::json;

use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

#[derive(Args)]
pub struct ClassifyArgs {
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Comma-separated labels, used verbatim as prompts (as in the reference's examples).
    #[arg(long, short = 'l', required = true)]
    labels: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    image_args: ImageArgs,
}

pub fn run(args: ClassifyArgs) -> anyhow::Result<i32> {
    let labels: Vec<String> =
        args.labels.split(',').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if labels.is_empty() {
        bail!("empty label list: give --labels \"a dog,a cat\"");
    }
    let clip = args.model.load()?;
    let images = args.images.iter().map(|p| args.image_args.decode(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let image_emb = clip.encode_images(&images)?;
    let label_emb = clip.encode_texts(&labels, Overflow::Truncate)?;
    let probs = clip.zero_shot(&image_emb, &label_emb);

    let ranked: Vec<Vec<(&str, f32)>> = probs
        .iter()
        .map(|row| {
            let mut r: Vec<(&str, f32)> = labels.iter().map(String::as_str).zip(row.iter().copied()).collect();
            r.sort_by(|a, b| b.1.total_cmp(&a.1));
            r
        })
        .collect();
    if args.json {
        let results: Vec<_> = args
            .images
            .iter()
            .zip(&ranked)
            .map(|(path, r)| {
                let scores: Vec<_> = r.iter().map(|(label, p)| json!({"label": label, "prob": p})).collect();
                json!({"path": path, "scores": scores})
            })
            .collect();
        print_json(&json!({ "results": results }))?;
    } else {
        for (path, r) in args.images.iter().zip(&ranked) {
            println!("{}", path.display());
            for (label, p) in r {
                println!("  {:>7.2}%  {label}", p * 100.0);
            }
        }
    }
    Ok(0)
}
