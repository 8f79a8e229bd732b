//! `clip similarity`: the cosine (and optionally logit and probability) matrices of images
//! against texts, as a table, CSV or JSON.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use clip::tokenizer::Overflow;
use clip_tasks::similarity::Similarity;
use serde_json::json;

use super::inputs::{check_json_names, embed_all_images, path_text, warn_truncated};
use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

/// `--format`: `table` (one aligned matrix per requested kind, texts numbered above it), `csv`
/// (one line per (image, text) pair, so texts with commas stay one field) or `json` (one object
/// with the paths, the texts and every matrix).
// No doc comments on the variants: clap would turn them into per-value help and switch the whole
// `--help` to its long layout.
#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// `clip similarity` arguments.
#[derive(Args)]
pub struct SimilarityArgs {
    /// Image files (rows of the matrix).
    #[arg(long = "image", short = 'i', required = true)]
    images: Vec<PathBuf>,
    /// Texts (columns of the matrix); longer than the context they are truncated with a warning.
    #[arg(long = "text", short = 't', required = true)]
    texts: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Also print the logits: logit_scale.exp() * cosine (the reference's logits_per_image).
    #[arg(long)]
    logits: bool,
    /// Also print, per image, the probabilities of its logits under the model's scoring (the
    /// softmax over the texts for CLIP, each text's sigmoid for SigLIP).
    #[arg(long)]
    probs: bool,
    /// `--model`, `--registry`, `--precision`.
    #[command(flatten)]
    model: ModelArgs,
    /// `--exif-orientation`, `--fast-jpeg`.
    #[command(flatten)]
    image_args: ImageArgs,
}

/// Embeds every image (any unreadable one is the error) and text, then prints the matrices.
pub fn run(args: SimilarityArgs) -> anyhow::Result<i32> {
    if matches!(args.format, OutputFormat::Json) {
        check_json_names(&args.images)?;
    }
    let clip = args.model.load()?;
    warn_truncated(&clip, &args.texts);
    let images = embed_all_images(&clip, &args.images, &args.image_args)?;
    let texts = clip.encode_texts(&args.texts, Overflow::Truncate)?;
    let s = Similarity::new(&images, &texts, &clip.scoring());
    let mut matrices = vec![("cosine", s.cosine)];
    if args.logits {
        matrices.push(("logits", s.logits));
    }
    if args.probs {
        matrices.push(("probs", s.probs));
    }
    let mut out = std::io::stdout().lock();
    let names: Vec<String> = args.images.iter().map(|p| path_text(p)).collect();
    match args.format {
        OutputFormat::Json => {
            let mut doc = json!({"images": names, "texts": args.texts});
            for (name, m) in &matrices {
                doc[*name] = json!(m);
            }
            print_json(&doc)?;
        }
        OutputFormat::Csv => {
            // Long form: one row per (image, text) pair, so that texts with commas stay one field.
            let header: Vec<&str> = matrices.iter().map(|(n, _)| *n).collect();
            writeln!(out, "image,text,{}", header.join(","))?;
            for (i, image) in names.iter().enumerate() {
                for (j, text) in args.texts.iter().enumerate() {
                    let values: Vec<String> =
                        matrices.iter().map(|(_, m)| m[i][j].to_string()).collect();
                    writeln!(
                        out,
                        "{},{},{}",
                        csv_field(image),
                        csv_field(text),
                        values.join(",")
                    )?;
                }
            }
        }
        OutputFormat::Table => {
            for (k, (name, m)) in matrices.iter().enumerate() {
                if k > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{name} (rows: images, columns: texts)")?;
                for (j, text) in args.texts.iter().enumerate() {
                    writeln!(out, "  [{j}] {text}")?;
                }
                let header: Vec<String> = (0..args.texts.len())
                    .map(|j| format!("{:>10}", format!("[{j}]")))
                    .collect();
                writeln!(out, "{}", header.join(" "))?;
                for (image, row) in names.iter().zip(m) {
                    let cells: Vec<String> = row.iter().map(|v| format!("{v:>10.4}")).collect();
                    writeln!(out, "{}  {image}", cells.join(" "))?;
                }
            }
        }
    }
    Ok(0)
}

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
