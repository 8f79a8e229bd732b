//! Helpers shared by the task-level end-to-end tests (zero-shot, moderation, export): run the
//! real binary with an isolated cache folder, parse JSON, check exit codes and messages.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clip_fixtures::committed;
use serde_json::Value;

pub fn model() -> PathBuf {
    committed("models/tiny-vit.safetensors")
}

pub fn good(name: &str) -> PathBuf {
    committed(&format!("images/good/{name}"))
}

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

/// Runs `clip` with `CLIP_CACHE` pointing at `cache` (never the user's cache).
pub fn clip_in(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clip"))
        .args(args)
        .env_remove("CLIP_MODEL")
        .env("CLIP_CACHE", cache)
        .output()
        .expect("run clip")
}

pub fn clip(args: &[&str]) -> Output {
    clip_in(
        &std::env::temp_dir().join(format!("clip-cli-cache-{}", std::process::id())),
        args,
    )
}

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

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

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
