//! One index run: walk, forget deleted files, find what changed, then the shared pipeline —
//! worker threads read, hash, decode and preprocess (at most a window of prepared files held, so
//! memory stays at a few batches of pixels), the caller's thread runs the model in batches and
//! commits each batch in one transaction. A file whose size and mtime match the catalog is not
//! even opened; one that changed is hashed, and only content with no vector in this space is
//! decoded and embedded.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use clip::image::{decode_bytes, read_file, DecodeOptions, Preprocess};
use clip::Clip;
use clip_tasks::discover::{find_images, FoundFile};
use clip_tasks::pipeline::{default_workers, run_ordered, Panicked};

use crate::catalog::{CatalogStore, ContentHash, FileRow};
use crate::matrix::VectorType;
use crate::{IndexError, Space};

/// Catalog rows without pixels (renames, touches, failures) are committed at least this often, so
/// a run over unchanged-content files is crash-safe too.
const MAX_ROWS_PER_COMMIT: usize = 512;

/// How to run the pipeline.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Images per model forward pass and per transaction.
    pub batch_size: usize,
    /// Decode/preprocess threads.
    pub workers: usize,
    /// How files are decoded; part of the [`Space`] id, so it must match the space's.
    pub decode: DecodeOptions,
    /// How new vectors are stored.
    pub vector_type: VectorType,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            batch_size: clip::DEFAULT_BATCH_SIZE,
            workers: default_workers(),
            decode: DecodeOptions::default(),
            vector_type: VectorType::F32,
        }
    }
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// How many image files the walk found.
    Total(u64),
    /// This many more files are settled (unchanged, committed, or failed).
    Done(u64),
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// Image files found by the walk.
    pub found: usize,
    /// Files whose size and mtime matched the catalog (not opened).
    pub unchanged: usize,
    /// Files whose content was new to this space and went through the model.
    pub embedded: usize,
    /// Files that were read and hashed but whose content already had a vector (touched, renamed,
    /// moved, duplicate).
    pub reused: usize,
    /// Catalog rows of files no longer there.
    pub removed: usize,
    /// `(path, reason)` of every file found that could not be read or decoded, and of folders or
    /// links the walk could not follow.
    pub failed: Vec<(String, String)>,
}

/// What a worker made of one file.
enum Prepared {
    /// Content that already has a vector.
    Known(FileRow),
    /// New content, preprocessed.
    Pixels(FileRow, ContentHash, Vec<f32>),
    Failed(FileRow),
}

/// Indexes the image files under `roots` into `store` for `model` (whose weights define `space`).
pub fn index(
    model: &Clip,
    store: &mut CatalogStore,
    space: &Space,
    roots: &[PathBuf],
    opts: &IndexOptions,
    progress: &mut dyn FnMut(ProgressEvent),
) -> Result<IndexReport, IndexError> {
    let walk = find_images(roots)?;
    store.use_space(space)?;
    let mut report = IndexReport {
        failed: walk
            .problems
            .iter()
            .map(|(p, r)| (p.display().to_string(), r.clone()))
            .collect(),
        ..Default::default()
    };
    // The catalog keys files by their UTF-8 path.
    let mut files = Vec::with_capacity(walk.files.len());
    for f in walk.files {
        match candidate(f) {
            Ok(c) => files.push(c),
            Err((path, reason)) => report.failed.push((path, reason)),
        }
    }
    report.found = files.len();
    progress(ProgressEvent::Total(files.len() as u64));

    let catalog: HashMap<String, FileRow> = store
        .files()?
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
    let present: HashSet<&str> = files.iter().map(|c| c.key.as_str()).collect();
    let removed: Vec<String> = catalog
        .keys()
        .filter(|p| {
            !present.contains(p.as_str()) && walk.roots.iter().any(|r| Path::new(p).starts_with(r))
        })
        .cloned()
        .collect();
    report.removed = removed.len();
    store.commit(&space.id, &[], &[], &removed)?;

    let known = store.hashes_in(space)?;
    let mut todo = Vec::new();
    for c in files {
        match catalog.get(&c.key) {
            Some(row) if row.size == c.size && row.mtime_ns == c.mtime_ns => match &row.content {
                Ok(hash) if known.contains(hash) => report.unchanged += 1,
                Err(reason) => {
                    report.unchanged += 1;
                    report.failed.push((c.key, reason.clone()));
                }
                Ok(_) => todo.push(c),
            },
            _ => todo.push(c),
        }
    }
    progress(ProgressEvent::Done(report.unchanged as u64));

    run_pipeline(
        model,
        store,
        space,
        &todo,
        &known,
        opts,
        &mut report,
        progress,
    )?;
    store.collect_garbage()?;
    Ok(report)
}

/// A file to index, keyed as the catalog stores it.
struct Candidate {
    /// The absolute path, as the catalog stores it.
    key: String,
    size: u64,
    mtime_ns: i64,
}

/// The catalog's view of a found file, or why it cannot have one.
fn candidate(f: FoundFile) -> Result<Candidate, (String, String)> {
    match f.path.to_str() {
        Some(key) => Ok(Candidate {
            key: key.to_owned(),
            size: f.size,
            mtime_ns: f.mtime_ns,
        }),
        None => Err((
            f.path.display().to_string(),
            "the path is not valid UTF-8".into(),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    model: &Clip,
    store: &mut CatalogStore,
    space: &Space,
    todo: &[Candidate],
    known: &HashSet<ContentHash>,
    opts: &IndexOptions,
    report: &mut IndexReport,
    progress: &mut dyn FnMut(ProgressEvent),
) -> Result<(), IndexError> {
    let batch_size = opts.batch_size.max(1);
    let preprocess = model.preprocessing();
    let mut batch = Batch::default();
    let mut have = known.clone();
    run_ordered::<_, _, IndexError>(
        todo,
        opts.workers,
        batch_size * 2,
        |c| prepare(c, known, preprocess, &opts.decode),
        |i, item| {
            let item = item.unwrap_or_else(|Panicked| {
                Prepared::Failed(row(
                    &todo[i],
                    Err("the decoder crashed on this file".into()),
                ))
            });
            match item {
                Prepared::Known(row) => {
                    report.reused += 1;
                    batch.rows.push(row);
                }
                Prepared::Failed(row) => {
                    report.failed.push((
                        row.path.clone(),
                        row.content.clone().err().unwrap_or_default(),
                    ));
                    batch.rows.push(row);
                }
                Prepared::Pixels(row, hash, pixels) => {
                    if have.insert(hash) {
                        report.embedded += 1;
                        batch.hashes.push(hash);
                        batch.pixels.push(pixels);
                    } else {
                        report.reused += 1; // a duplicate of content embedded earlier in this run
                    }
                    batch.rows.push(row);
                }
            }
            if batch.pixels.len() >= batch_size || batch.rows.len() >= MAX_ROWS_PER_COMMIT {
                batch.flush(model, store, space, opts.vector_type, progress)?;
            }
            Ok(())
        },
    )?;
    batch.flush(model, store, space, opts.vector_type, progress)
}

/// What the next transaction writes.
#[derive(Default)]
struct Batch {
    rows: Vec<FileRow>,
    hashes: Vec<ContentHash>,
    pixels: Vec<Vec<f32>>,
}

impl Batch {
    /// Embeds the pixels and commits vectors and rows together.
    fn flush(
        &mut self,
        model: &Clip,
        store: &mut CatalogStore,
        space: &Space,
        ty: VectorType,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<(), IndexError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let vectors = if self.pixels.is_empty() {
            Vec::new()
        } else {
            let emb = model.encode_pixels(&self.pixels)?.normalized();
            self.hashes
                .iter()
                .zip(emb.rows())
                .map(|(h, v)| (*h, ty.encode(v)))
                .collect()
        };
        store.commit(&space.id, &vectors, &self.rows, &[])?;
        progress(ProgressEvent::Done(self.rows.len() as u64));
        *self = Batch::default();
        Ok(())
    }
}

/// The catalog row of `c` with `content`.
fn row(c: &Candidate, content: Result<ContentHash, String>) -> FileRow {
    FileRow {
        path: c.key.clone(),
        size: c.size,
        mtime_ns: c.mtime_ns,
        content,
    }
}

/// Reads, hashes and (for new content) decodes and preprocesses one file. Never panics: a decoder
/// panic on a hostile file becomes that file's failure.
fn prepare(
    c: &Candidate,
    known: &HashSet<ContentHash>,
    preprocess: &Preprocess,
    decode: &DecodeOptions,
) -> Prepared {
    // The decoder's messages start with the name it was given; the row already has the path.
    let reason = |e: clip::image::ImageError| {
        let msg = e.to_string();
        msg.strip_prefix(&format!("{}: ", c.key))
            .map_or(msg.clone(), str::to_owned)
    };
    let bytes = match read_file(Path::new(&c.key), &c.key, decode.max_file_bytes) {
        Ok(b) => b,
        Err(e) => return Prepared::Failed(row(c, Err(reason(e)))),
    };
    let hash: ContentHash = *blake3::hash(&bytes).as_bytes();
    if known.contains(&hash) {
        return Prepared::Known(row(c, Ok(hash)));
    }
    match decode_bytes(&bytes, &c.key, decode) {
        Ok(image) => Prepared::Pixels(row(c, Ok(hash)), hash, preprocess.apply(&image)),
        Err(e) => Prepared::Failed(row(c, Err(reason(e)))),
    }
}
