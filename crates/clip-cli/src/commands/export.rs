//! `clip embed --output OUT`: batch export of many images and texts to the clip-retrieval layout
//! (see `clip_tasks::export`), with progress, per-file failures logged and skipped, and sharding.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clip::tokenizer::Overflow;
use clip::{Clip, Embeddings};
use clip_tasks::discover::find_images;
use clip_tasks::export::{failed_path, EmbeddingSink, Modality};
use clip_tasks::npy::Dtype;
use clip_tasks::pipeline::{default_workers, embed_images, ImageSource};
use clip_tasks::shard::Shard;
use serde_json::json;

use super::inputs::{path_text, progress_bar, read_lines, warn_truncated, NON_UTF8_NAME};
use super::ImageArgs;
use crate::output::print_json;

/// Everything `clip embed` passes to an export.
pub struct ExportRequest<'a> {
    /// The output folder (`--output`).
    pub output: &'a Path,
    /// `--image` files, first in the image list.
    pub images: &'a [PathBuf],
    /// `--image-dir` folders, walked after the `--image` files.
    pub image_dirs: &'a [PathBuf],
    /// `--paths-file`, last in the image list.
    pub paths_file: Option<&'a Path>,
    /// `--text` texts, first in the text list.
    pub texts: &'a [String],
    /// `--texts-file`, after the `--text` texts.
    pub texts_file: Option<&'a Path>,
    /// Element type of the `.npy` files.
    pub dtype: Dtype,
    /// Which items of the full lists this run embeds.
    pub shard: Shard,
    /// Write the model's outputs as they are instead of L2-normalised.
    pub raw: bool,
    /// What to do with texts longer than the context.
    pub overflow: Overflow,
    /// How images are decoded.
    pub image_args: &'a ImageArgs,
}

/// Runs the export and prints a one-line JSON summary on stdout. Unreadable images are skipped
/// (listed in `failed_<shard>.jsonl` and counted on stderr), so the exit code is 0 unless the
/// export itself fails.
pub fn export(clip: &Clip, req: ExportRequest) -> anyhow::Result<i32> {
    // Ids are positions in the full ordered input list, identical on every shard.
    let mut images: Vec<PathBuf> = req.images.to_vec();
    if !req.image_dirs.is_empty() {
        let found = find_images(req.image_dirs).context("cannot list image folder")?;
        for (path, reason) in &found.problems {
            eprintln!("clip: warning: {}: {reason}", path.display());
        }
        images.extend(found.files.into_iter().map(|f| f.path));
    }
    if let Some(file) = req.paths_file {
        images.extend(read_lines(file, "paths")?.into_iter().map(PathBuf::from));
    }
    let mut texts: Vec<String> = req.texts.to_vec();
    if let Some(file) = req.texts_file {
        texts.extend(read_lines(file, "texts")?);
    }
    anyhow::ensure!(
        !images.is_empty() || !texts.is_empty(),
        "nothing to embed: the given --image/--image-dir/--paths-file/--text/--texts-file hold no inputs"
    );
    let finish = |e: Embeddings| if req.raw { e } else { e.normalized() };
    let shard = req.shard;
    let mine = |n: usize| {
        (0..n)
            .filter(|&k| shard.contains(k))
            .collect::<Vec<usize>>()
    };

    let (image_rows, failed) = if images.is_empty() {
        (0, 0)
    } else {
        // JSON Lines cannot carry a file name that is not UTF-8: such a file is a per-file
        // failure (listed with its name made lossy), the run goes on.
        let (named, unnamed): (Vec<usize>, Vec<usize>) = mine(images.len())
            .into_iter()
            .partition(|&k| images[k].to_str().is_some());
        let ids = named;
        let paths: Vec<PathBuf> = ids.iter().map(|&k| images[k].clone()).collect();
        let sources: Vec<ImageSource> = paths.iter().cloned().map(ImageSource::File).collect();
        let mut sink = EmbeddingSink::create(
            req.output,
            Modality::Image,
            shard.index(),
            clip.embed_dim(),
            req.dtype,
        )?;
        let failed_file = failed_path(req.output, shard.index());
        let mut failures = std::io::BufWriter::new(
            std::fs::File::create(&failed_file)
                .with_context(|| format!("{}: cannot create", failed_file.display()))?,
        );
        for &k in &unnamed {
            let path = path_text(&images[k]);
            let line = json!({"id": k, "path": path, "error": format!("{path}: {NON_UTF8_NAME}")});
            std::io::Write::write_all(&mut failures, format!("{line}\n").as_bytes())?;
            eprintln!("clip: skipped: {path}: {NON_UTF8_NAME}");
        }
        let mut failed = unnamed.len();
        let bar = progress_bar(paths.len(), "images");
        embed_images::<anyhow::Error>(
            clip,
            &sources,
            &req.image_args.options(clip.resolution()),
            default_workers(),
            |batch| {
                let meta: Vec<_> = batch
                    .embedded
                    .iter()
                    .map(|&r| json!({"id": ids[r], "image_path": path_text(&paths[r])}))
                    .collect();
                sink.push(&finish(batch.embeddings), &meta)?;
                for (r, err) in &batch.failed {
                    let line = json!({"id": ids[*r], "path": path_text(&paths[*r]), "error": err.to_string()});
                    std::io::Write::write_all(&mut failures, format!("{line}\n").as_bytes())?;
                    bar.suspend(|| eprintln!("clip: skipped: {err}"));
                }
                failed += batch.failed.len();
                bar.inc((batch.embedded.len() + batch.failed.len()) as u64);
                Ok(())
            },
        )?;
        bar.finish_and_clear();
        std::io::Write::flush(&mut failures)?;
        (sink.finish()?, failed)
    };

    let text_rows = if texts.is_empty() {
        0
    } else {
        let ids = mine(texts.len());
        let batch: Vec<String> = ids.iter().map(|&k| texts[k].clone()).collect();
        if req.overflow == Overflow::Truncate {
            warn_truncated(clip, &batch);
        }
        let mut sink = EmbeddingSink::create(
            req.output,
            Modality::Text,
            shard.index(),
            clip.embed_dim(),
            req.dtype,
        )?;
        let bar = progress_bar(batch.len(), "texts");
        for (chunk_ids, chunk) in ids
            .chunks(clip.batch_size())
            .zip(batch.chunks(clip.batch_size()))
        {
            let meta: Vec<_> = chunk_ids
                .iter()
                .zip(chunk)
                .map(|(id, t)| json!({"id": id, "caption": t}))
                .collect();
            sink.push(&finish(clip.encode_texts(chunk, req.overflow)?), &meta)?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        sink.finish()?
    };

    if failed > 0 {
        eprintln!(
            "clip: {failed} of {} images skipped (unreadable); listed in {}",
            image_rows + failed,
            failed_path(req.output, shard.index()).display()
        );
    }
    print_json(&json!({
        "output": path_text(req.output),
        "shard": shard.to_string(),
        "dim": clip.embed_dim(),
        "images": image_rows,
        "failed": failed,
        "texts": text_rows,
    }))?;
    Ok(0)
}
