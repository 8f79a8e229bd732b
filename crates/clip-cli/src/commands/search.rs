//! `clip search`: nearest indexed images to a text, an image, or a weighted combination; or, with
//! `--texts-file`, the captions nearest to an image.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::builder::TypedValueParser;
use clap::Args;
use clip::tokenizer::Overflow;
use clip_index::query::combine;
use clip_index::{ChromaStore, LoadedVectors, VectorStore, VectorType};
use clip_tasks::similarity::{cosine_matrix, ranked as ranked_indices};
use serde_json::json;

use super::index::{space_of, DbArgs};
use super::inputs::read_lines;
use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

/// `clip search` arguments.
#[derive(Args)]
pub struct SearchArgs {
    /// Text query, e.g. "a dog on a beach".
    query: Option<String>,
    /// Image query: find images like this one (combined with the text query when both are given).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Text to move the query towards (repeatable), e.g. --image a.jpg --plus "at night".
    #[arg(long)]
    plus: Vec<String>,
    /// Text to move the query away from (repeatable), e.g. "beach" --minus "people".
    #[arg(long)]
    minus: Vec<String>,
    /// Weight of each --plus text relative to the query (1.0 = as strong as the query).
    #[arg(long, default_value_t = 1.0, value_parser = super::finite_f32)]
    plus_weight: f32,
    /// Weight of each --minus text relative to the query.
    #[arg(long, default_value_t = 1.0, value_parser = super::finite_f32)]
    minus_weight: f32,
    /// Rank the captions in this file (one per line) for --image instead of searching the index.
    #[arg(long, requires = "image", conflicts_with_all = ["query", "plus", "minus"])]
    texts_file: Option<PathBuf>,
    /// How many results.
    #[arg(short = 'k', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000).map(|v| v as usize))]
    k: usize,
    /// Only results with a cosine score at least this.
    #[arg(long, allow_negative_numbers = true, value_parser = super::finite_f32)]
    threshold: Option<f32>,
    /// Hold the index in f16 while searching (half the memory).
    #[arg(long)]
    f16: bool,
    /// Print {"results": [{"path", "score"}]} (or {"text", "score"} with --texts-file).
    #[arg(long)]
    json: bool,
    /// `--model`, `--registry`, `--precision` (default: the model the index was last built with).
    #[command(flatten)]
    model: ModelArgs,
    /// `--exif-orientation`, `--fast-jpeg`: must match the index run's, as they pick the space.
    #[command(flatten)]
    image_args: ImageArgs,
    /// `--db`.
    #[command(flatten)]
    db: DbArgs,
    /// Search a Chroma collection (filled by `clip index --store`) instead of the local index.
    #[arg(long, value_name = "chroma://HOST:PORT/COLLECTION")]
    store: Option<String>,
}

/// Prints the indexed files nearest to the query, best first (`--store`: from Chroma), or with
/// `--texts-file` the captions nearest to `--image`.
pub fn run(mut args: SearchArgs) -> anyhow::Result<i32> {
    if args.query.is_none() && args.image.is_none() {
        bail!("nothing to search for: give a text query, --image FILE, or both");
    }
    if args.model.model.is_none() {
        let store = args.db.open_read_only()?;
        let space = store.current_space()?.with_context(|| {
            format!(
                "no --model given and the index {} has none recorded: run `clip index` first",
                store.path().display()
            )
        })?;
        args.model.model = Some(space.model_path);
    }
    if let Some(file) = &args.texts_file {
        return rank_captions(&args, file);
    }
    // A text query (the usual case) never needs the image tower.
    let towers = if args.image.is_none() {
        clip::Towers::Text
    } else {
        clip::Towers::Both
    };
    let clip = args.model.load_towers(towers)?;
    let query = query_vector(&args, &clip)?;
    let space = space_of(&args.model, &clip, &args.image_args)?;
    let hits = match &args.store {
        Some(url) => {
            let chroma = ChromaStore::connect(url, &space)?;
            if chroma.count()? == 0 {
                bail!("{url} has no images embedded by {}: run `clip index <DIR> --store {url}` first", space.model);
            }
            chroma.search(&query, args.k, threshold(&args))?
        }
        None => {
            let store = args.db.open_read_only()?;
            let ty = if args.f16 {
                VectorType::F16
            } else {
                VectorType::F32
            };
            let vectors = LoadedVectors::load(&store, &space, ty)?;
            if vectors.damaged() > 0 {
                eprintln!(
                    "clip: warning: {} stored vectors of {} are damaged and were left out: run `clip index` on their folders to embed them again",
                    vectors.damaged(),
                    store.path().display()
                );
            }
            if vectors.is_empty() {
                bail!(
                    "the index {} has no images embedded by {}: run `clip index <DIR> --model {}` first",
                    store.path().display(),
                    space.model,
                    space.model
                );
            }
            vectors.search(&store, &query, args.k, threshold(&args))?
        }
    };
    let results: Vec<(String, f32)> = hits
        .into_iter()
        .flat_map(|h| h.paths.into_iter().map(move |p| (p, h.score)))
        .take(args.k)
        .collect();
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|(p, s)| json!({"path": p, "score": s}))
            .collect();
        print_json(&json!({ "results": rows }))?;
    } else {
        for (path, score) in &results {
            println!("{score:.4}\t{path}");
        }
    }
    Ok(0)
}

/// `--threshold`, or no threshold at all.
fn threshold(args: &SearchArgs) -> f32 {
    args.threshold.unwrap_or(f32::NEG_INFINITY)
}

/// The normalised weighted sum of the query parts.
fn query_vector(args: &SearchArgs, clip: &clip::Clip) -> anyhow::Result<Vec<f32>> {
    let mut parts: Vec<(f32, Vec<f32>)> = Vec::new();
    if let Some(text) = &args.query {
        parts.push((
            1.0,
            clip.encode_texts(&[text], Overflow::Truncate)?.into_vec(),
        ));
    }
    if let Some(path) = &args.image {
        let image = args.image_args.decode(path, clip.resolution())?;
        parts.push((1.0, clip.encode_images(&[image])?.into_vec()));
    }
    for (texts, weight) in [
        (&args.plus, args.plus_weight),
        (&args.minus, -args.minus_weight),
    ] {
        if texts.is_empty() {
            continue;
        }
        let emb = clip.encode_texts(texts, Overflow::Truncate)?;
        parts.extend(emb.rows().map(|r| (weight, r.to_vec())));
    }
    let refs: Vec<(f32, &[f32])> = parts.iter().map(|(w, v)| (*w, v.as_slice())).collect();
    combine(&refs)
        .context("the query parts cancel out (zero vector): change --plus/--minus or their weights")
}

/// `--texts-file`: captions ranked by cosine to the image, best first.
fn rank_captions(args: &SearchArgs, file: &std::path::Path) -> anyhow::Result<i32> {
    let lines = read_lines(file, "captions")?;
    let captions: Vec<&str> = lines.iter().map(String::as_str).collect();
    if captions.is_empty() {
        bail!("{}: no captions (one per line expected)", file.display());
    }
    let image_path = args
        .image
        .as_deref()
        .context("--texts-file needs --image")?;
    let clip = args.model.load()?;
    let image = args.image_args.decode(image_path, clip.resolution())?;
    let img = clip.encode_images(&[image])?;
    let txt = clip.encode_texts(&captions, Overflow::Truncate)?;
    let cosines = cosine_matrix(&img, &txt).swap_remove(0);
    let mut ranked: Vec<(&str, f32)> = ranked_indices(&cosines, None)
        .into_iter()
        .map(|j| (captions[j], cosines[j]))
        .collect();
    ranked.retain(|(_, s)| *s >= threshold(args));
    ranked.truncate(args.k);
    if args.json {
        let rows: Vec<_> = ranked
            .iter()
            .map(|(t, s)| json!({"text": t, "score": s}))
            .collect();
        print_json(&json!({ "results": rows }))?;
    } else {
        for (text, score) in &ranked {
            println!("{score:.4}\t{text}");
        }
    }
    Ok(0)
}
