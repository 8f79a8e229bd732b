//! The one path from image files (or bytes) to embeddings that every command shares: items are
//! read, decoded and preprocessed on worker threads (decoding is the CPU-heavy part and
//! independent per file), handed back **in input order** with at most a window of prepared items
//! held at once (bounded memory whatever the input size), then embedded batch by batch. A bad
//! file is a failure of that item, never of the run; a decoder panic is contained.
//!
//! [`run_ordered`] is the engine; [`embed_images`] is the common use of it. The index runs its own
//! `prepare` (read, hash, skip known content) through the same engine.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use clip::image::{decode_bytes, decode_file, DecodeOptions, ImageError, Preprocess};
use clip::{Clip, ClipError, Embeddings};

/// Where one image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A file on disk (regular files only, size-capped by [`DecodeOptions::max_file_bytes`]).
    File(PathBuf),
    /// An encoded image in memory, with the name errors should give it.
    Bytes {
        /// What errors call it (`input[3]`, a URI, ...).
        name: String,
        /// The encoded file.
        bytes: Vec<u8>,
    },
}

impl ImageSource {
    /// The name errors use: the path, or the given name.
    pub fn name(&self) -> String {
        match self {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Decodes one image (panics contained) and applies the model's preprocessing.
pub fn prepare_image(
    source: &ImageSource,
    preprocess: &Preprocess,
    decode: &DecodeOptions,
) -> Result<Vec<f32>, ImageError> {
    let image = match source {
        ImageSource::File(path) => decode_file(path, decode)?,
        ImageSource::Bytes { name, bytes } => decode_bytes(bytes, name, decode)?,
    };
    Ok(preprocess.apply(&image))
}

/// A `prepare` call that panicked (its item is lost, the run is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

/// How many decode workers to run by default: one per core the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `prepare` on every item on `workers` threads and hands the results to `consume` on the
/// caller's thread in input order. At most `window` items are prepared ahead of the one
/// `consume` waits for, so memory is bounded by the window, not the input. A panic in `prepare`
/// reaches `consume` as `Err(Panicked)` for that item. The first error `consume` returns stops
/// the workers and is returned.
pub fn run_ordered<T, P, E>(
    items: &[T],
    workers: usize,
    window: usize,
    prepare: impl Fn(&T) -> P + Sync,
    mut consume: impl FnMut(usize, Result<P, Panicked>) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    P: Send,
{
    let window = window.max(1);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // How many items `consume` has taken, for the workers' window check.
    let consumed = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = mpsc::channel::<(usize, Result<P, Panicked>)>();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            let (tx, next, stop, consumed, prepare) =
                (tx.clone(), &next, &stop, &consumed, &prepare);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                {
                    let (lock, cv) = consumed;
                    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while i >= *done + window && !stop.load(Ordering::Relaxed) {
                        done = cv.wait(done).unwrap_or_else(|e| e.into_inner());
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let result =
                    catch_unwind(AssertUnwindSafe(|| prepare(&items[i]))).map_err(|_| Panicked);
                if tx.send((i, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0;
        let mut outcome = Ok(());
        'receive: for (i, p) in rx.iter() {
            pending.insert(i, p);
            while let Some(p) = pending.remove(&want) {
                if let Err(e) = consume(want, p) {
                    outcome = Err(e);
                    break 'receive;
                }
                want += 1;
                let (lock, cv) = &consumed;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = want;
                cv.notify_all();
            }
        }
        if outcome.is_err() {
            stop.store(true, Ordering::Relaxed);
            let (lock, cv) = &consumed;
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            cv.notify_all();
        }
        // Dropping the receiver ends every worker blocked on a send.
        drop(rx);
        outcome
    })
}

/// The outcome of one batch of [`embed_images`]. Indices are into the sources given.
#[derive(Debug)]
pub struct ImageBatch {
    /// Images embedded, in order; row `r` of `embeddings` belongs to `sources[embedded[r]]`.
    pub embedded: Vec<usize>,
    /// Raw `encode_image` outputs (not normalised).
    pub embeddings: Embeddings,
    /// Images that could not be read or decoded, with the reason (which names the image).
    pub failed: Vec<(usize, ImageError)>,
}

/// Decodes (in parallel, `workers` threads) and embeds (the model's batch size at a time) every
/// source, in order, handing each batch to `on_batch` as soon as it is done so that callers can
/// stream results and show progress. An unreadable image lands in [`ImageBatch::failed`]; a model
/// error stops the run.
pub fn embed_images<E: From<ClipError>>(
    clip: &Clip,
    sources: &[ImageSource],
    decode: &DecodeOptions,
    workers: usize,
    mut on_batch: impl FnMut(ImageBatch) -> Result<(), E>,
) -> Result<(), E> {
    let batch_size = clip.batch_size();
    let preprocess = clip.preprocessing();
    let mut batch = Pending::default();
    let flush = |batch: &mut Pending, on_batch: &mut dyn FnMut(ImageBatch) -> Result<(), E>| {
        let done = std::mem::take(batch);
        let embeddings = clip.encode_pixels(&done.pixels)?;
        on_batch(ImageBatch {
            embedded: done.embedded,
            embeddings,
            failed: done.failed,
        })
    };
    run_ordered::<_, _, E>(
        sources,
        workers,
        2 * batch_size,
        |source| prepare_image(source, preprocess, decode),
        |i, prepared| {
            match prepared {
                Ok(Ok(pixels)) => {
                    batch.embedded.push(i);
                    batch.pixels.push(pixels);
                }
                Ok(Err(e)) => batch.failed.push((i, e)),
                Err(Panicked) => batch.failed.push((
                    i,
                    ImageError::Crashed {
                        name: sources[i].name(),
                    },
                )),
            }
            if batch.embedded.len() + batch.failed.len() >= batch_size {
                flush(&mut batch, &mut on_batch)?;
            }
            Ok(())
        },
    )?;
    if batch.embedded.len() + batch.failed.len() > 0 {
        flush(&mut batch, &mut on_batch)?;
    }
    Ok(())
}

/// The items of the batch being gathered.
#[derive(Default)]
struct Pending {
    embedded: Vec<usize>,
    pixels: Vec<Vec<f32>>,
    failed: Vec<(usize, ImageError)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_the_workers() {
        let items: Vec<u64> = (0..200).collect();
        for workers in [1, 2, 5] {
            let mut seen = Vec::new();
            run_ordered::<_, _, ()>(
                &items,
                workers,
                3,
                |&x| {
                    // Uneven work so that workers finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros((x * 7919) % 300));
                    x * 2
                },
                |i, p| {
                    assert_eq!(p, Ok(items[i] * 2));
                    seen.push(i);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..200).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_window_bounds_what_is_prepared_ahead() {
        let items: Vec<usize> = (0..100).collect();
        let prepared = AtomicUsize::new(0);
        let mut max_ahead = 0;
        run_ordered::<_, _, ()>(
            &items,
            4,
            5,
            |_| prepared.fetch_add(1, Ordering::SeqCst),
            |i, _| {
                std::thread::sleep(std::time::Duration::from_micros(200));
                max_ahead = max_ahead.max(prepared.load(Ordering::SeqCst) - i);
                Ok(())
            },
        )
        .unwrap();
        assert!(
            max_ahead <= 5,
            "{max_ahead} items prepared ahead of a window of 5"
        );
    }

    #[test]
    fn panics_are_per_item_and_errors_stop_the_run() {
        let items: Vec<u32> = (0..50).collect();
        let mut failed = Vec::new();
        run_ordered::<_, _, ()>(
            &items,
            2,
            4,
            |&x| {
                assert!(x % 10 != 3, "hostile item");
                x
            },
            |i, p| {
                if p.is_err() {
                    failed.push(i);
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(failed, vec![3, 13, 23, 33, 43]);
        let mut count = 0;
        let err = run_ordered(
            &items,
            2,
            4,
            |&x| x,
            |i, _| {
                count += 1;
                if i == 7 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!((err, count), (Err("stop"), 8));
    }
}
