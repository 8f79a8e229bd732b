//! `clip index`: build or update the search index of folders, or report what it holds.

use std::path::PathBuf;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::Args;
use clip_index::{
    default_db_path, CatalogStore, ChromaStore, IndexOptions, ProgressEvent, Space, VectorType,
};
use serde_json::json;

use super::inputs::progress_bar;
use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

/// `clip index` arguments.
#[derive(Args)]
pub struct IndexArgs {
    /// Folders to index, recursively (hidden files skipped, symbolic links followed).
    #[arg(required_unless_present = "status")]
    dirs: Vec<PathBuf>,
    /// `--model`, `--registry`, `--precision`.
    #[command(flatten)]
    model: ModelArgs,
    /// `--exif-orientation`, `--fast-jpeg`: part of the space's id.
    #[command(flatten)]
    image: ImageArgs,
    /// `--db`.
    #[command(flatten)]
    db: DbArgs,
    /// Report what the index holds (for --model, else for the model last indexed with).
    #[arg(long, conflicts_with = "dirs")]
    status: bool,
    /// Print JSON: with --status {"images", "failed", "model", "dim"}; after a run
    /// {"found", "embedded", "reused", "unchanged", "removed", "failed": [{"path", "reason"}]}.
    #[arg(long)]
    json: bool,
    /// Images per model batch and per database transaction.
    #[arg(long, default_value_t = clip::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    batch_size: usize,
    /// Decoding threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    workers: Option<usize>,
    /// Store new vectors as f16: half the space, cosine scores within about 1e-3.
    #[arg(long)]
    f16: bool,
    /// Also keep a Chroma collection in sync with the index (ids: content hashes; metadata: paths).
    #[arg(
        long,
        value_name = "chroma://HOST:PORT/COLLECTION",
        conflicts_with = "status"
    )]
    store: Option<String>,
}

/// `--db`: where the index lives. Shared with `clip search`.
#[derive(Args)]
pub struct DbArgs {
    /// Index database (default: $XDG_DATA_HOME/clip-rs/index.db or ~/.local/share/clip-rs/index.db).
    #[arg(long, env = "CLIP_INDEX_DB")]
    db: Option<PathBuf>,
}

impl DbArgs {
    /// `--db`, else the default path.
    fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => {
                default_db_path().context("no --db given and neither XDG_DATA_HOME nor HOME is set")
            }
        }
    }

    /// Opens (creating it and its folder if needed) the index, for an index run.
    pub fn open(&self) -> anyhow::Result<CatalogStore> {
        Ok(CatalogStore::open(&self.path()?)?)
    }

    /// Opens the existing index for reading: a missing one is an error naming it, never created.
    pub fn open_read_only(&self) -> anyhow::Result<CatalogStore> {
        Ok(CatalogStore::open_read_only(&self.path()?)?)
    }
}

/// The embedding space of `model` with this image decoding (EXIF rotation changes the pixels).
pub fn space_of(model: &ModelArgs, clip: &clip::Clip, image: &ImageArgs) -> anyhow::Result<Space> {
    Ok(Space::of(
        clip,
        &model.resolve()?.display().to_string(),
        &image.options(clip.resolution()),
    )?)
}

/// With `--status`, reports what the index holds; else indexes the folders (and syncs a
/// `--store`), then prints what the run did.
pub fn run(args: IndexArgs) -> anyhow::Result<i32> {
    if args.status {
        return status(&args, &args.db.open_read_only()?);
    }
    let mut store = args.db.open()?;
    let clip = args.model.load()?.with_batch_size(args.batch_size);
    let space = space_of(&args.model, &clip, &args.image)?;
    let opts = IndexOptions {
        batch_size: args.batch_size,
        workers: args.workers.unwrap_or(IndexOptions::default().workers),
        decode: args.image.options(clip.resolution()),
        vector_type: if args.f16 {
            VectorType::F16
        } else {
            VectorType::F32
        },
    };
    let bar = progress_bar(0, "images");
    let mut on_progress = |e: ProgressEvent| match e {
        ProgressEvent::Total(n) => bar.set_length(n),
        ProgressEvent::Done(n) => bar.inc(n),
    };
    // Connect first so a wrong URL fails before the work, not after.
    let mut chroma = args
        .store
        .as_deref()
        .map(|url| ChromaStore::connect(url, &space))
        .transpose()?;
    let report = clip_index::index(
        &clip,
        &mut store,
        &space,
        &args.dirs,
        &opts,
        &mut on_progress,
    )?;
    bar.finish_and_clear();
    let synced = chroma
        .as_mut()
        .map(|c| c.sync(&store, &space))
        .transpose()?;
    if args.json {
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(p, r)| json!({"path": p, "reason": r}))
            .collect();
        print_json(&json!({
            "found": report.found,
            "embedded": report.embedded,
            "reused": report.reused,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "failed": failed,
            "store": synced.map(|s| json!({"upserted": s.upserted, "deleted": s.deleted})),
        }))?;
        return Ok(0);
    }
    println!(
        "{} image files: {} embedded, {} reused (renamed, touched or duplicate), {} unchanged, {} removed, {} failed",
        report.found,
        report.embedded,
        report.reused,
        report.unchanged,
        report.removed,
        report.failed.len()
    );
    if let (Some(url), Some(s)) = (&args.store, &synced) {
        println!(
            "{url}: {} vectors upserted, {} deleted",
            s.upserted, s.deleted
        );
    }
    for (path, reason) in &report.failed {
        eprintln!("clip: skipped {path}: {reason}");
    }
    Ok(0)
}

/// `--status`: counts for `--model`'s space, else for the space last indexed; the table also
/// lists every failure.
fn status(args: &IndexArgs, store: &CatalogStore) -> anyhow::Result<i32> {
    let space = match args.model.model {
        Some(_) => Some(space_of(&args.model, &args.model.load()?, &args.image)?),
        None => None,
    };
    let st = store.status(space.as_ref())?;
    let (model, dim) = st
        .space
        .as_ref()
        .map_or((None, 0), |s| (Some(s.model.clone()), s.dim));
    if args.json {
        print_json(&json!({
            "images": st.images,
            "failed": st.failed,
            "damaged": st.damaged,
            "model": model,
            "dim": dim,
        }))?;
        return Ok(0);
    }
    println!("index: {}", store.path().display());
    println!(
        "model: {}",
        model.as_deref().unwrap_or("(none indexed yet)")
    );
    println!("dim: {dim}\nimages: {}\nfailed: {}", st.images, st.failed);
    if st.damaged > 0 {
        println!(
            "damaged: {} stored vectors (left out of searches; `clip index` embeds them again)",
            st.damaged
        );
    }
    for (path, reason) in store.failures()? {
        println!("  failed: {path}: {reason}");
    }
    Ok(0)
}
