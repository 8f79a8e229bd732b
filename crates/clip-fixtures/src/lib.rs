//! Test support shared by every crate of the workspace.
//!
//! Two fixture roots exist:
//! - the *committed* core set under `fixtures/` at the repository root (one f16 tiny-vit model, its
//!   goldens, the tokenizer goldens, all reference images, a few preprocessing goldens), so that a
//!   fresh clone runs real parity tests offline;
//! - the full *reference* set (`CLIP_REFERENCE_DIR`, default `../shared/reference`), read when present.
//!
//! Under `CI=true` a missing reference fixture is a failure (a panic in the test), never a silent skip:
//! CI always has the reference folder beside the clone.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// Repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A file of the committed core set, e.g. `committed("models/tiny-vit.safetensors")`.
/// Panics when it is missing: the committed set is part of the repository.
pub fn committed(rel: &str) -> PathBuf {
    let p = repo_root().join("fixtures").join(rel);
    assert!(p.exists(), "committed fixture {} is missing", p.display());
    p
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// The full reference folder, or `None` outside CI when it is absent (the caller skips, loudly).
pub fn reference_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CLIP_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("../shared/reference"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if in_ci() {
        panic!(
            "CI=true but the reference fixtures are missing at {} (set CLIP_REFERENCE_DIR)",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: reference fixtures not found at {} (set CLIP_REFERENCE_DIR)",
        dir.display()
    );
    None
}

/// A file or folder inside the reference set. `None` (with a message) only when the whole reference
/// folder is absent outside CI; a missing file inside a present folder is always a failure.
pub fn reference(rel: &str) -> Option<PathBuf> {
    let p = reference_dir()?.join(rel);
    assert!(p.exists(), "reference fixture {} is missing", p.display());
    Some(p)
}

/// A numpy array as read from a `.npy` file: shape and values widened to f32.
#[derive(Debug, Clone)]
pub struct NpyArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in C order, widened to f32 so that every dtype compares the same way.
    pub data: Vec<f32>,
}

/// Reads a little-endian `.npy` (version 1/2) holding `<f4`, `|u1` or `<f2`... only what the
/// fixtures use: `<f4` and `|u1`, C order.
pub fn read_npy(path: &Path) -> NpyArray {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{} is not a .npy file",
        path.display()
    );
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("npy header");
    assert!(
        header.contains("'fortran_order': False"),
        "{}: fortran order unsupported",
        path.display()
    );
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("npy shape");
    let shape: Vec<usize> = shape_str
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let body = &bytes[start + hlen..];
    let data: Vec<f32> = if header.contains("'<f4'") {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else if header.contains("'|u1'") {
        body.iter().map(|&b| b as f32).collect()
    } else {
        panic!("{}: unsupported dtype in header {header}", path.display())
    };
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}: size mismatch",
        path.display()
    );
    NpyArray { shape, data }
}

/// A full-size random-weight checkpoint made by `tools/make_fullsize.py` in `CLIP_FULLSIZE_DIR`
/// (default `fullsize/` beside the repository, like the reference set: too large to commit):
/// `(<arch>.safetensors, its goldens, the folder of their preprocessed pixels)`, or `None` when
/// that architecture was not made. Those goldens may lack `embed_dim`; it is taken from the text
/// embeddings.
pub fn fullsize(arch: &str) -> Option<(PathBuf, ModelGoldens, PathBuf)> {
    let dir = match std::env::var("CLIP_FULLSIZE_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => repo_root().join("../fullsize"),
    };
    let (model, goldens) = (
        dir.join(format!("{arch}.safetensors")),
        dir.join(format!("{arch}.goldens.json")),
    );
    if !model.exists() || !goldens.exists() {
        println!("{arch}: not in {}", dir.display());
        return None;
    }
    let text = std::fs::read_to_string(&goldens).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let obj = v.as_object_mut().unwrap();
    let embed = obj["text_embeddings"][0].as_array().unwrap().len();
    obj.entry("embed_dim")
        .or_insert_with(|| serde_json::json!(embed));
    Some((
        model,
        serde_json::from_value(v).unwrap(),
        dir.join("preprocess"),
    ))
}

/// The architectures [`fullsize`] knows, in file-name form.
pub const FULLSIZE_ARCHS: [&str; 4] = ["ViT-B-32", "RN50", "ViT-B-16", "ViT-L-14"];

/// `goldens/<model>.json` as written by the reference's `tools/make_goldens.py`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelGoldens {
    /// The model's name.
    pub model: String,
    /// Input side in pixels.
    pub resolution: usize,
    /// The stored `logit_scale` parameter (a log).
    pub logit_scale: f64,
    /// `exp(logit_scale)`, the factor the logits were computed with.
    pub logit_scale_exp: f64,
    /// Length of each embedding.
    pub embed_dim: usize,
    /// The input texts, in order.
    pub texts: Vec<String>,
    /// The reference's token ids of each text (`clip.tokenize(texts, truncate=True)`).
    pub text_tokens: Vec<Vec<i64>>,
    /// Raw `encode_text` outputs (not normalised), one per text.
    pub text_embeddings: Vec<Vec<f32>>,
    /// The input images: file names under `images/good`.
    pub images: Vec<String>,
    /// Raw `encode_image` outputs (not normalised), one per image.
    pub image_embeddings: Vec<Vec<f32>>,
    /// `logit_scale_exp * norm(image) . norm(text)`, one row per image.
    pub logits_per_image: Vec<Vec<f32>>,
}

/// Reads a goldens JSON file; panics naming the file when it is missing or malformed, since
/// goldens are fixtures, not user input.
pub fn read_goldens(path: &Path) -> ModelGoldens {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Cosine similarity and max absolute difference between two vectors: the parity figures we report.
pub fn parity(a: &[f32], b: &[f32]) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let (mut dot, mut na, mut nb, mut max) = (0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
        max = max.max((x - y).abs());
    }
    (dot / (na.sqrt() * nb.sqrt()).max(f64::MIN_POSITIVE), max)
}

/// Parity targets of the project (issue "inference core"): embeddings within cosine 0.99999 and
/// 1e-4 absolute of the goldens, logits within 1e-3.
pub const MIN_COSINE: f64 = 0.99999;
/// Largest absolute difference allowed per embedding component (see [`MIN_COSINE`]).
pub const MAX_ABS: f64 = 1e-4;
/// Largest absolute difference allowed per logit (see [`MIN_COSINE`]).
pub const MAX_LOGIT: f64 = 1e-3;

/// Absolute tolerance for image embeddings: [`MAX_ABS`], or 1e-5 of the largest golden component
/// when that is larger. Why: ResNet image embeddings are large (components in the tens for
/// tiny-rn, hundreds for RN50) and the reference's own float32 rounding exceeds 1e-4 there:
/// re-running the reference itself (in float32, or in float64) lands further from its own goldens
/// than 1e-4. For ViT goldens (components below 10) the rule reduces to [`MAX_ABS`], so it is one
/// rule for every model, not a per-fixture exception.
pub fn image_abs_tolerance(g: &ModelGoldens) -> f64 {
    let max = g
        .image_embeddings
        .iter()
        .flatten()
        .fold(0f64, |m, &x| m.max((x as f64).abs()));
    MAX_ABS.max(1e-5 * max)
}
