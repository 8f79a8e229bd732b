//! Helpers every end-to-end test shares: run the real binary isolated from the user's
//! environment (no `CLIP_MODEL`, `CLIP_PRECISION`, `CLIP_INDEX_DB`; offline; a cache folder of
//! the test process), parse JSON, check exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clip_fixtures::committed;
use serde_json::Value;

/// The committed fixture model (tiny-vit, random weights).
pub fn model() -> PathBuf {
    committed("models/tiny-vit.safetensors")
}

/// A committed good image.
pub fn good(name: &str) -> PathBuf {
    committed(&format!("images/good/{name}"))
}

/// A path as the `&str` argument lists want.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh folder per test (name) and process.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `clip` with the user's settings removed, offline (a test that names no model must not
/// download the default one), and `CLIP_CACHE` at `cache` (never the user's cache).
pub fn clip_command(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip"));
    for var in [
        "CLIP_MODEL",
        "CLIP_PRECISION",
        "CLIP_INDEX_DB",
        "CLIP_REGISTRY",
        "CLIP_KERNELS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CLIP_OFFLINE", "1").env("CLIP_CACHE", cache);
    cmd
}

/// Runs `clip` with `CLIP_CACHE` pointing at `cache`.
pub fn clip_in(cache: &Path, args: &[&str]) -> Output {
    clip_command(cache).args(args).output().expect("run clip")
}

/// The cache folder of this test process.
pub fn process_cache() -> PathBuf {
    std::env::temp_dir().join(format!("clip-cli-cache-{}", std::process::id()))
}

/// Runs `clip` with this process's cache folder.
pub fn clip(args: &[&str]) -> Output {
    clip_in(&process_cache(), args)
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Expects exit code `code`; returns stdout parsed as JSON.
pub fn json_with_code(out: &Output, code: i32, args: &[&str]) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "clip {args:?}: stderr: {}",
        stderr(out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("clip {args:?}: stdout is not JSON ({e})"))
}

/// Runs `clip`, expects exit 0, parses stdout as JSON.
pub fn clip_json(args: &[&str]) -> Value {
    json_with_code(&clip(args), 0, args)
}

/// Expects exit code 2 and every needle in stderr, and no panic.
pub fn clip_fails(args: &[&str], needles: &[&str]) {
    let out = clip(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clip {args:?}: expected exit 2, stderr: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "clip {args:?}: stderr lacks {n:?}: {err}");
    }
    assert!(!err.contains("panicked"), "clip {args:?} panicked: {err}");
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

/// `clip embed` (normalised) of images and texts: (image rows, text rows).
pub fn embed(images: &[&Path], texts: &[&str]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let m = model();
    let mut args = vec!["embed", "--model", s(&m)];
    for i in images {
        args.extend(["--image", s(i)]);
    }
    for t in texts {
        args.extend(["--text", t]);
    }
    let out = clip_json(&args);
    let rows = |k: &str| {
        out[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| floats(&e["embedding"]))
            .collect()
    };
    (rows("images"), rows("texts"))
}
