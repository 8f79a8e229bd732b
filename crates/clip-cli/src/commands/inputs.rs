//! Inputs shared by the commands that embed things: image files through the one batched,
//! parallel path of [`clip_tasks::pipeline`], text lists from files, progress bars, truncation
//! warnings, the class-embedding cache.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clip::image::ImageError;
use clip::tokenizer::Overflow;
use clip::{Clip, Embeddings};
use clip_tasks::cache::EmbeddingCache;
use clip_tasks::fingerprint::ModelFingerprint;
use clip_tasks::pipeline::{default_workers, ImageSource};
use indicatif::{ProgressBar, ProgressStyle};

use super::ImageArgs;

/// A progress bar on stderr with count, rate and ETA; hidden when stderr is not a terminal, so
/// piped or logged runs (and tests) stay clean.
pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let template = format!("{{bar:30}} {{pos}}/{{len}} {what} ({{per_sec}}, ETA {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Images embedded by [`embed_images`]: which of the given paths worked, and why the others did not.
pub struct Embedded {
    /// Indices into the given paths, one per embedding row.
    pub ok: Vec<usize>,
    /// Raw `encode_image` outputs.
    pub embeddings: Embeddings,
    /// Indices into the given paths of the images that could not be read or decoded, with why.
    pub failed: Vec<(usize, ImageError)>,
}

/// Decodes (in parallel) and embeds (in batches) every path, keeping going past unreadable files.
pub fn embed_images(
    clip: &Clip,
    paths: &[PathBuf],
    image_args: &ImageArgs,
) -> anyhow::Result<Embedded> {
    let bar = progress_bar(paths.len(), "images");
    let mut done = Embedded {
        ok: Vec::new(),
        embeddings: Embeddings::new(clip.embed_dim(), Vec::new()),
        failed: Vec::new(),
    };
    let sources: Vec<ImageSource> = paths.iter().cloned().map(ImageSource::File).collect();
    clip_tasks::pipeline::embed_images::<anyhow::Error>(
        clip,
        &sources,
        &image_args.options(clip.resolution()),
        default_workers(),
        |batch| {
            bar.inc((batch.embedded.len() + batch.failed.len()) as u64);
            done.ok.extend(batch.embedded);
            done.embeddings.extend(&batch.embeddings);
            done.failed.extend(batch.failed);
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    Ok(done)
}

/// JSON strings are Unicode: a path that is not valid UTF-8 cannot be printed in JSON output
/// without changing it. For the commands whose JSON output needs every image this is an error
/// naming the file (lossily) before any work; exports and moderation make it a per-file failure.
pub fn check_json_names(paths: &[PathBuf]) -> anyhow::Result<()> {
    match paths.iter().find(|p| p.to_str().is_none()) {
        Some(p) => anyhow::bail!("{}: {NON_UTF8_NAME}", p.display()),
        None => Ok(()),
    }
}

/// Why a file whose name is not UTF-8 is left out of JSON output.
pub const NON_UTF8_NAME: &str =
    "the file name is not valid UTF-8, which JSON output cannot carry unchanged (rename it, or use the table output)";

/// A path as JSON output writes it: as is when it is UTF-8 (every path that reaches a JSON
/// writer has been checked so), else with replacement characters, never a panic.
pub fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// [`embed_images`] for commands whose output needs every image: the first unreadable file is
/// the error (its message names the file).
pub fn embed_all_images(
    clip: &Clip,
    paths: &[PathBuf],
    image_args: &ImageArgs,
) -> anyhow::Result<Embeddings> {
    let done = embed_images(clip, paths, image_args)?;
    match done.failed.into_iter().next() {
        Some((_, err)) => Err(err.into()),
        None => Ok(done.embeddings),
    }
}

/// The largest list file read (labels, templates, texts, paths): far above any real list, low
/// enough that a wrong path cannot exhaust memory.
const MAX_LIST_BYTES: u64 = 256 << 20;

/// Non-empty lines of a UTF-8 text file (labels, templates, texts, paths), trimmed of the line end
/// only so that leading spaces in prompts survive. Only regular files are read (a FIFO would
/// block, a device never end), up to [`MAX_LIST_BYTES`].
pub fn read_lines(path: &Path, what: &str) -> anyhow::Result<Vec<String>> {
    let bytes =
        clip::image::read_file(path, &path.display().to_string(), MAX_LIST_BYTES).map_err(|e| {
            match e {
                clip::image::ImageError::NotAFile { kind, .. } => {
                    anyhow::anyhow!(
                        "{}: cannot read {what} file: not a regular file ({kind})",
                        path.display()
                    )
                }
                clip::image::ImageError::FileTooLarge { bytes, limit, .. } => anyhow::anyhow!(
                    "{}: {what} file of {bytes} bytes exceeds the limit of {limit} bytes",
                    path.display()
                ),
                other => anyhow::anyhow!("{}: cannot read {what} file: {other}", path.display()),
            }
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: {what} file is not UTF-8 text", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect())
}

/// Warns on stderr about each text that will be cut to the context length.
pub fn warn_truncated(clip: &Clip, texts: &[String]) {
    for text in texts {
        if clip.tokenize(text, Overflow::Error).is_err() {
            eprintln!(
                "clip: warning: text truncated to {} tokens: {text:?}",
                clip.context_length()
            );
        }
    }
}

/// `--no-cache`: shared by the commands that ensemble prompts.
#[derive(clap::Args)]
pub struct CacheArgs {
    /// Neither read nor write cached class embeddings ($CLIP_CACHE, else the XDG cache folder).
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    /// The class-embedding cache of `clip`'s embedding space, unless `--no-cache` (or no cache
    /// folder can be found). Keyed by the checkpoint's bytes, precision and preprocessing, so a
    /// hit is always the same model's numbers.
    pub fn cache(&self, clip: &Clip) -> anyhow::Result<Option<EmbeddingCache>> {
        if self.no_cache {
            return Ok(None);
        }
        // The same cache root as the model downloads (`$CLIP_CACHE`, else the XDG cache).
        let Ok(root) = clip_hub::default_cache_dir() else {
            return Ok(None);
        };
        Ok(Some(EmbeddingCache::new(
            root,
            &ModelFingerprint::of(clip)?,
        )))
    }
}

/// `embed` for the task layer: the prompts of a class ensemble, truncated to the context (a
/// wordy label should not fail a classification).
pub fn embed_prompts(clip: &Clip) -> impl FnOnce(&[String]) -> anyhow::Result<Embeddings> + '_ {
    move |texts| Ok(clip.encode_texts(texts, Overflow::Truncate)?)
}
