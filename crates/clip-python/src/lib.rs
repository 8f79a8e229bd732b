//! `clip_rs._native`: the engine and the task layer behind the `clip_rs` Python package. This
//! module only converts: Python values in, `clip` / `clip_tasks` calls, bytes and plain values
//! out. Everything that knows about torch, numpy, PIL, Chroma or Ray lives in the Python half
//! (`python/clip_rs/`), which turns the bytes returned here into arrays.
//!
//! Arrays cross the boundary as little-endian bytes (`float32`, `int32`) with their shape
//! given separately: the abi3 wheel cannot use the buffer protocol on Python 3.9, and the copies
//! are small next to the model's work. Every call that decodes or runs the model releases the
//! GIL. A Rust panic is caught and raised as `clip_rs.ClipError`, never an aborted interpreter.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use clip::candle::{Device, Tensor};
use clip::image::{DecodeOptions, DecodedImage, Pixels};
use clip::tokenizer::{Overflow, Tokenizer};
use clip::{Clip, Embeddings, LoadOptions, Precision, Towers};
use clip_tasks::moderation::{Moderator, Policy};
use clip_tasks::pipeline::{prepare_image, ImageSource};
use clip_tasks::zero_shot::{builtin_templates, Classifier, Prompts};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList};

/// The module's Rust allocations (tensors, layer outputs) come from mimalloc, not the host's
/// glibc malloc: glibc serves each large block with a fresh `mmap` and unmaps it on free, so
/// every layer's output was page-faulted and zeroed again on every call (the `clip` binary
/// tunes glibc instead, which a library must not do to its host process). docs/BENCHMARKS.md
/// measures the difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Python exception class `name` of `clip_rs._errors`, raised with `message`.
fn raise(py: Python<'_>, name: &str, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let made = py
        .import("clip_rs._errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1((message.clone(),)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// Runs `f` without the GIL, turning a panic into `ClipError`.
fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, (&'static str, String)> + Send,
) -> PyResult<T> {
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err((kind, message))) => Err(raise(py, kind, message)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            Err(raise(
                py,
                "ClipError",
                format!("internal error (a bug: please report it): {what}"),
            ))
        }
    }
}

/// The Python exception class a model error belongs to.
fn clip_error(e: clip::ClipError) -> (&'static str, String) {
    let kind = match &e {
        clip::ClipError::Checkpoint(_) => "CheckpointError",
        clip::ClipError::Image(_) => "ImageError",
        clip::ClipError::Tokenize(_) => "TokenizeError",
        _ => "ClipError",
    };
    (kind, e.to_string())
}

/// `f32` values as a `bytearray` (writable, so numpy arrays over it are too).
fn f32_bytes<'py>(py: Python<'py>, values: &[f32]) -> Bound<'py, PyByteArray> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    values
        .iter()
        .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    PyByteArray::new(py, &bytes)
}

/// Little-endian `f32` bytes back to values; the length must be a multiple of 4.
fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// What `embed_images` returns: the `[n, dim]` float32 bytes and `(index, message)` failures.
type Embedded<'py> = (Bound<'py, PyByteArray>, Vec<(usize, String)>);

/// One image as the Python half hands it over.
enum Item {
    /// A file path.
    Path(PathBuf),
    /// An encoded file in memory, with the name errors give it.
    Bytes(String, Vec<u8>),
    /// A decoded PIL image (its mode kept).
    Pil(DecodedImage),
}

/// `("path", str)`, `("bytes", name, bytes)` or `("pil", name, mode, width, height, data,
/// palette, palette_alpha)`.
fn item(obj: &Bound<'_, PyAny>) -> PyResult<Item> {
    let kind: String = obj.get_item(0)?.extract()?;
    match kind.as_str() {
        "path" => Ok(Item::Path(obj.get_item(1)?.extract()?)),
        "bytes" => Ok(Item::Bytes(
            obj.get_item(1)?.extract()?,
            obj.get_item(2)?.extract()?,
        )),
        "pil" => {
            let name: String = obj.get_item(1)?.extract()?;
            let mode: String = obj.get_item(2)?.extract()?;
            let (w, h): (u32, u32) = (obj.get_item(3)?.extract()?, obj.get_item(4)?.extract()?);
            let data: Vec<u8> = obj.get_item(5)?.extract()?;
            let palette: Option<Vec<u8>> = obj.get_item(6)?.extract()?;
            let alpha: Option<Vec<u8>> = obj.get_item(7)?.extract()?;
            let image = pil_image(&mode, w, h, data, palette)
                .map_err(|m| raise(obj.py(), "ImageError", format!("{name}: {m}")))?;
            Ok(Item::Pil(match alpha {
                Some(alpha) => image.with_palette_alpha(alpha),
                None => image,
            }))
        }
        other => Err(PyTypeError::new_err(format!(
            "unknown image item kind {other:?}"
        ))),
    }
}

/// A PIL image's samples in our representation of its mode (no conversion: the reference's
/// resize depends on the mode).
fn pil_image(
    mode: &str,
    width: u32,
    height: u32,
    data: Vec<u8>,
    palette: Option<Vec<u8>>,
) -> Result<DecodedImage, String> {
    let pixels = match mode {
        "RGB" => Pixels::Rgb(data),
        "RGBA" => Pixels::Rgba(data),
        "L" => Pixels::L(data),
        "LA" => Pixels::La(data),
        "CMYK" => Pixels::Cmyk(data),
        "1" => Pixels::Bilevel(data),
        "I;16" => Pixels::I16(
            data.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        "P" => Pixels::Palette {
            indices: data,
            palette: palette
                .unwrap_or_default()
                .chunks_exact(3)
                .take(256)
                .map(|c| [c[0], c[1], c[2]])
                .collect(),
        },
        other => {
            return Err(format!(
                "PIL mode {other:?} is not supported (RGB, RGBA, L, LA, P, 1, I;16, CMYK are): \
                 convert it first, e.g. image.convert(\"RGB\")"
            ))
        }
    };
    DecodedImage::new(width, height, pixels).map_err(|e| e.to_string())
}

/// The preprocessed pixels of one item for `clip`'s model.
fn pixels_of(clip: &Clip, item: Item, decode: &DecodeOptions) -> Result<Vec<f32>, String> {
    match item {
        Item::Path(p) => prepare_image(&ImageSource::File(p), clip.preprocessing(), decode),
        Item::Bytes(name, bytes) => prepare_image(
            &ImageSource::Bytes { name, bytes },
            clip.preprocessing(),
            decode,
        ),
        Item::Pil(image) => Ok(clip.preprocess(&image)),
    }
    .map_err(|e| e.to_string())
}

/// Sets the compute threads (rayon's pool, candle's matmul) before the first model work; later
/// calls cannot resize a pool that exists and say so.
#[pyfunction]
fn set_threads(n: usize) -> bool {
    if n == 0 {
        return false;
    }
    // rayon's pool is built once, here; already running, it is fine when it has this size.
    let ok = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .is_ok()
        || rayon::current_num_threads() == n;
    if ok {
        // candle's matmul reads the variable on each call.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    ok
}

/// A loaded model with its family's tokenizer, preprocessing and scoring.
#[pyclass(frozen, module = "clip_rs._native")]
struct Model {
    clip: Clip,
}

#[pymethods]
impl Model {
    /// Loads the checkpoint at `path` (any supported format) in `precision`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf, precision: &str) -> PyResult<Self> {
        let precision: Precision = precision
            .parse()
            .map_err(|e: String| raise(py, "ClipError", e))?;
        let clip = detached(py, move || {
            Clip::load_with(
                &path,
                LoadOptions {
                    precision,
                    towers: Towers::Both,
                    kernels: None,
                },
            )
            .map_err(clip_error)
        })?;
        Ok(Self { clip })
    }

    /// Width of the embeddings.
    #[getter]
    fn embed_dim(&self) -> usize {
        self.clip.embed_dim()
    }

    /// Input resolution of the image tower.
    #[getter]
    fn resolution(&self) -> u32 {
        self.clip.resolution()
    }

    /// Tokens per text.
    #[getter]
    fn context_length(&self) -> usize {
        self.clip.context_length()
    }

    /// Size of the text tower's vocabulary.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.clip.model().config().text.vocab_size
    }

    /// `logit_scale.exp()`.
    #[getter]
    fn logit_scale_exp(&self) -> f32 {
        self.clip.scoring().scale
    }

    /// The stored `logit_scale` parameter (the reference's `model.logit_scale`).
    #[getter]
    fn logit_scale(&self) -> f32 {
        self.clip.model().stored_logit_scale()
    }

    /// The logit bias (0 for CLIP).
    #[getter]
    fn logit_bias(&self) -> f32 {
        self.clip.scoring().bias
    }

    /// `"softmax"` or `"sigmoid"`.
    #[getter]
    fn probabilities(&self) -> &'static str {
        if self.clip.scoring().is_exclusive() {
            "softmax"
        } else {
            "sigmoid"
        }
    }

    /// The model family (`clip`, ...).
    #[getter]
    fn family(&self) -> &'static str {
        self.clip.family().as_str()
    }

    /// Precision of the linear layers.
    #[getter]
    fn precision(&self) -> &'static str {
        self.clip.precision().as_str()
    }

    /// Raw `encode_image` of `n` preprocessed images (`[n, 3, r, r]` float32 bytes).
    fn encode_pixels<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        n: usize,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let r = self.clip.resolution() as usize;
        if data.len() != n * 3 * r * r * 4 {
            return Err(raise(
                py,
                "ClipError",
                format!(
                    "pixels have {} bytes, expected [{n}, 3, {r}, {r}] float32",
                    data.len()
                ),
            ));
        }
        let values = f32_values(data);
        let out = detached(py, || {
            let pixels: Vec<Vec<f32>> = values.chunks(3 * r * r).map(<[f32]>::to_vec).collect();
            self.clip.encode_pixels(&pixels).map_err(clip_error)
        })?;
        Ok(f32_bytes(py, out.as_slice()))
    }

    /// Raw `encode_text` of `n` rows of `length` token ids (int64 bytes).
    fn encode_tokens<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        n: usize,
        length: usize,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        if data.len() != n * length * 8 {
            return Err(raise(
                py,
                "ClipError",
                format!(
                    "tokens have {} bytes, expected [{n}, {length}] int64",
                    data.len()
                ),
            ));
        }
        let ids: Vec<i64> = data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let dim = self.clip.embed_dim();
        let out = detached(py, || {
            let mut all = Vec::with_capacity(n * dim);
            for rows in ids.chunks((length * self.clip.batch_size()).max(1)) {
                let tensor = Tensor::from_vec(
                    rows.to_vec(),
                    (rows.len() / length.max(1), length),
                    &Device::Cpu,
                )
                .map_err(|e| ("ClipError", e.to_string()))?;
                let emb = self
                    .clip
                    .model()
                    .encode_text(&tensor)
                    .and_then(|t| {
                        t.flatten_all()
                            .and_then(|t| t.to_vec1::<f32>())
                            .map_err(|e| clip::ModelError::Input(e.to_string()))
                    })
                    .map_err(|e| ("ClipError", e.to_string()))?;
                all.extend(emb);
            }
            Ok(all)
        })?;
        Ok(f32_bytes(py, &out))
    }

    /// `[n, context_length]` int32 bytes: the model's own tokenizer (CLIP's BPE, or the
    /// folder's `tokenizer.json` / `spiece.model`), padded with its pad id; an over-long text
    /// raises `TokenizeError` naming it unless `truncate`.
    fn tokenize<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        truncate: bool,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let overflow = overflow(truncate);
        let mut out = Vec::with_capacity(texts.len() * self.clip.context_length() * 4);
        for text in &texts {
            let ids = self
                .clip
                .tokenize(text, overflow)
                .map_err(|e| raise(py, "TokenizeError", e.to_string()))?;
            ids.iter()
                .for_each(|&id| out.extend_from_slice(&(id as i32).to_le_bytes()));
        }
        Ok(PyByteArray::new(py, &out))
    }

    /// Text embeddings of `texts` (raw, or L2-normalised), tokenized by the model's tokenizer
    /// (over-long texts cut when `truncate`, else an error naming them).
    fn encode_texts<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        truncate: bool,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let overflow = overflow(truncate);
        let out = detached(py, || {
            let e = self
                .clip
                .encode_texts(&texts, overflow)
                .map_err(clip_error)?;
            Ok(if normalize { e.normalized() } else { e })
        })?;
        Ok(f32_bytes(py, out.as_slice()))
    }

    /// The model's input tensor for one image (`[3, r, r]` float32 bytes), exactly as the
    /// reference's transform gives it.
    fn preprocess<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let item = item(image)?;
        let decode = DecodeOptions::default();
        let pixels = detached(py, || {
            pixels_of(&self.clip, item, &decode).map_err(|m| ("ImageError", m))
        })?;
        Ok(f32_bytes(py, &pixels))
    }

    /// Embeddings of many images (paths, bytes, PIL images), decoded in parallel, in input
    /// order: `(bytes of [n, dim] float32, [(index, message)])`. A failed item's row is NaN.
    #[pyo3(signature = (items, normalize, workers, batch_size))]
    fn embed_images<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyList>,
        normalize: bool,
        workers: usize,
        batch_size: usize,
    ) -> PyResult<Embedded<'py>> {
        let items: Vec<Item> = items.iter().map(|o| item(&o)).collect::<PyResult<_>>()?;
        let dim = self.clip.embed_dim();
        let n = items.len();
        let (rows, errors) = detached(py, || {
            let decode = DecodeOptions::default();
            let mut rows = vec![f32::NAN; n * dim];
            let mut errors = Vec::new();
            let batch = batch_size.max(1);
            let mut pending: Vec<(usize, Vec<f32>)> = Vec::with_capacity(batch);
            let flush = |pending: &mut Vec<(usize, Vec<f32>)>, rows: &mut Vec<f32>| {
                let pixels: Vec<Vec<f32>> = pending.iter().map(|(_, p)| p.clone()).collect();
                let mut emb = self.clip.encode_pixels(&pixels).map_err(clip_error)?;
                if normalize {
                    emb = emb.normalized();
                }
                for ((i, _), row) in pending.iter().zip(emb.rows()) {
                    rows[i * dim..(i + 1) * dim].copy_from_slice(row);
                }
                pending.clear();
                Ok::<(), (&'static str, String)>(())
            };
            clip_tasks::pipeline::run_ordered::<_, _, (&'static str, String)>(
                &items,
                workers.max(1),
                2 * batch,
                |it| match it {
                    Item::Path(p) => pixels_of(&self.clip, Item::Path(p.clone()), &decode),
                    Item::Bytes(name, b) => {
                        pixels_of(&self.clip, Item::Bytes(name.clone(), b.clone()), &decode)
                    }
                    Item::Pil(image) => Ok(self.clip.preprocess(image)),
                },
                |i, prepared| {
                    match prepared {
                        Ok(Ok(p)) => pending.push((i, p)),
                        Ok(Err(message)) => errors.push((i, message)),
                        Err(_) => errors.push((i, format!("item {i}: the decoder crashed on it"))),
                    }
                    if pending.len() >= batch {
                        flush(&mut pending, &mut rows)?;
                    }
                    Ok(())
                },
            )?;
            if !pending.is_empty() {
                flush(&mut pending, &mut rows)?;
            }
            Ok((rows, errors))
        })?;
        Ok((f32_bytes(py, &rows), errors))
    }

    /// Images against texts under the model's scoring (the task layer's
    /// [`clip_tasks::similarity::Similarity`]): cosine, logits and probability matrices as
    /// `[n_images, n_texts]` float32 bytes. Embeddings may be raw or normalised.
    fn similarity<'py>(
        &self,
        py: Python<'py>,
        images: &[u8],
        texts: &[u8],
    ) -> PyResult<(
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
    )> {
        let dim = self.clip.embed_dim();
        if !images.len().is_multiple_of(dim * 4) || !texts.len().is_multiple_of(dim * 4) {
            return Err(raise(
                py,
                "ClipError",
                "embeddings are not rows of the model's width",
            ));
        }
        let (images, texts) = (
            Embeddings::new(dim, f32_values(images)),
            Embeddings::new(dim, f32_values(texts)),
        );
        let s = clip_tasks::similarity::Similarity::new(&images, &texts, &self.clip.scoring());
        let flat = |m: &[Vec<f32>]| m.concat();
        Ok((
            f32_bytes(py, &flat(&s.cosine)),
            f32_bytes(py, &flat(&s.logits)),
            f32_bytes(py, &flat(&s.probs)),
        ))
    }

    /// Zero-shot classification with the CLI's semantics: per image, `[(label, probability)]`
    /// best first (`top_k` cut), prompts from `templates` (a built-in set's name or a list).
    #[pyo3(signature = (image_embeddings, n, labels, templates, top_k))]
    fn classify(
        &self,
        py: Python<'_>,
        image_embeddings: &[u8],
        n: usize,
        labels: Vec<String>,
        templates: &Bound<'_, PyAny>,
        top_k: Option<usize>,
    ) -> PyResult<Vec<Vec<(String, f32)>>> {
        let templates: Vec<String> = if templates.is_none() {
            Vec::new()
        } else if let Ok(name) = templates.extract::<String>() {
            builtin_templates(&name)
                .map_err(|e| raise(py, "ClipError", e.to_string()))?
                .iter()
                .map(|t| t.to_string())
                .collect()
        } else {
            templates.extract()?
        };
        let prompts =
            Prompts::new(labels, templates).map_err(|e| raise(py, "ClipError", e.to_string()))?;
        if image_embeddings.len() != n * self.clip.embed_dim() * 4 {
            return Err(raise(
                py,
                "ClipError",
                "image embeddings do not match their count",
            ));
        }
        let images = Embeddings::new(self.clip.embed_dim(), f32_values(image_embeddings));
        detached(py, || {
            let classifier = Classifier::build(&prompts, self.clip.scoring(), None, |texts| {
                self.clip.encode_texts(texts, Overflow::Truncate)
            })
            .map_err(clip_error)?;
            Ok(classifier
                .probabilities(&images)
                .into_iter()
                .map(|row| {
                    clip_tasks::similarity::ranked(&row, top_k)
                        .into_iter()
                        .map(|j| (classifier.labels()[j].clone(), row[j]))
                        .collect()
                })
                .collect())
        })
    }

    /// Moderation with the CLI's semantics: `(policy id, [(flagged, [(name, score,
    /// threshold)])])` for each image embedding; `policy` is a TOML text (`None`: built-in).
    fn moderate<'py>(
        &self,
        py: Python<'py>,
        image_embeddings: &[u8],
        policy: Option<String>,
    ) -> PyResult<(String, Bound<'py, PyList>)> {
        let policy = match policy {
            None => Policy::builtin(),
            Some(text) => Policy::from_toml_str(&text, "policy")
                .map_err(|e| raise(py, "ClipError", e.to_string()))?,
        };
        let dim = self.clip.embed_dim();
        if !image_embeddings.len().is_multiple_of(dim * 4) {
            return Err(raise(
                py,
                "ClipError",
                "image embeddings are not rows of the model's width",
            ));
        }
        let images = Embeddings::new(dim, f32_values(image_embeddings));
        let (id, verdicts) = detached(py, || {
            let moderator = Moderator::build(policy, self.clip.scoring(), None, |texts| {
                self.clip.encode_texts(texts, Overflow::Truncate)
            })
            .map_err(clip_error)?;
            Ok((moderator.policy().id(), moderator.moderate(&images)))
        })?;
        let out = PyList::empty(py);
        for v in verdicts {
            let d = PyDict::new(py);
            d.set_item("flagged", v.flagged)?;
            let cats = PyList::empty(py);
            for c in v.categories {
                let cd = PyDict::new(py);
                cd.set_item("name", c.name)?;
                cd.set_item("score", c.score)?;
                cd.set_item("threshold", c.threshold)?;
                cats.append(cd)?;
            }
            d.set_item("categories", cats)?;
            out.append(d)?;
        }
        Ok((id, out))
    }
}

/// Python's `truncate` flag as the tokenizer's choice.
fn overflow(truncate: bool) -> Overflow {
    if truncate {
        Overflow::Truncate
    } else {
        Overflow::Error
    }
}

/// CLIP's tokenizer: `[n, context_length]` int32 bytes, zero-padded; an over-long text raises
/// the reference's `RuntimeError` message unless `truncate`.
#[pyfunction]
fn tokenize<'py>(
    py: Python<'py>,
    texts: Vec<String>,
    context_length: usize,
    truncate: bool,
) -> PyResult<Bound<'py, PyByteArray>> {
    let overflow = overflow(truncate);
    let mut out = Vec::with_capacity(texts.len() * context_length * 4);
    for text in &texts {
        let ids = Tokenizer::global()
            .tokenize(text, context_length, overflow)
            .map_err(|_| {
                raise(
                    py,
                    "TokenizeError",
                    format!("Input {text} is too long for context length {context_length}"),
                )
            })?;
        ids.iter()
            .for_each(|&id| out.extend_from_slice(&(id as i32).to_le_bytes()));
    }
    Ok(PyByteArray::new(py, &out))
}

/// The names `load` accepts besides paths (the registry of `clip models`).
#[pyfunction]
fn available_models(py: Python<'_>) -> PyResult<Vec<String>> {
    let hub = clip_hub::Hub::from_env(None).map_err(|e| raise(py, "ClipError", e.to_string()))?;
    Ok(hub
        .registry()
        .entries()
        .iter()
        .map(|e| e.name.clone())
        .collect())
}

/// A path as is, else a registry name fetched into the cache (`download_root` replaces it).
#[pyfunction]
#[pyo3(signature = (name, download_root))]
fn resolve_model(
    py: Python<'_>,
    name: String,
    download_root: Option<PathBuf>,
) -> PyResult<PathBuf> {
    detached(py, move || {
        let mut hub =
            clip_hub::Hub::from_env(None).map_err(|e| ("CheckpointError", e.to_string()))?;
        if let Some(root) = download_root {
            hub = clip_hub::Hub::new(
                hub.registry().clone(),
                root,
                clip_hub::FetchOptions::from_env().map_err(|e| ("ClipError", e.to_string()))?,
            );
        }
        hub.resolve(&name)
            .map_err(|e| ("CheckpointError", e.to_string()))
    })
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(tokenize, m)?)?;
    m.add_function(wrap_pyfunction!(available_models, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_model, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    Ok(())
}
