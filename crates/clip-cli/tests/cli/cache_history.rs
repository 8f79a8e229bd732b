//! Results never depend on what ran before: the class-embedding cache is keyed by the model's
//! fingerprint (its weights' bytes, precision, preprocessing), so neither another precision nor
//! another checkpoint written to the same path can answer from a warm cache.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// `clip classify` of the fixture photo with the ImageNet templates, `--json`, in `cache`
/// (`None`: `--no-cache`).
fn classify(model: &Path, precision: &str, cache: Option<&Path>) -> Value {
    let image = good("chelsea_small.bmp");
    let mut args = vec![
        "classify",
        s(&image),
        "--model",
        s(model),
        "--labels",
        "a cat,a dog,a rocket",
        "--templates",
        "imagenet",
        "--precision",
        precision,
        "--json",
    ];
    let fresh = tempdir(&format!("history-nocache-{precision}"));
    let cache = match cache {
        Some(c) => c,
        None => {
            args.push("--no-cache");
            &fresh
        }
    };
    json_with_code(&clip_in(cache, &args), 0, &args)
}

#[test]
fn a_warm_cache_of_another_precision_does_not_answer() {
    let m = model();
    let cold = classify(&m, "int8", None);
    let cache = tempdir("history-precision");
    let f32_run = classify(&m, "f32", Some(&cache));
    let warm = classify(&m, "int8", Some(&cache));
    assert_eq!(warm, cold, "int8 after an f32 run must equal int8 alone");
    assert_ne!(f32_run, cold, "the precisions give different numbers here");
    // And the f32 entry still answers f32.
    assert_eq!(classify(&m, "f32", Some(&cache)), f32_run);
}

/// Rewrites one weight of a safetensors file in place (its values reversed): the same size, the
/// same architecture, another model.
fn perturb(path: &Path, tensor: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let info = &header[tensor];
    let offsets = &info["data_offsets"];
    let (a, b) = (
        8 + header_len + offsets[0].as_u64().unwrap() as usize,
        8 + header_len + offsets[1].as_u64().unwrap() as usize,
    );
    let width = match info["dtype"].as_str().unwrap() {
        "F16" | "BF16" => 2,
        _ => 4,
    };
    let values: Vec<Vec<u8>> = bytes[a..b]
        .chunks(width)
        .rev()
        .map(<[u8]>::to_vec)
        .collect();
    bytes[a..b].copy_from_slice(&values.concat());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn another_checkpoint_at_the_same_path_does_not_answer_from_the_cache() {
    let dir = tempdir("history-checkpoint");
    let path = dir.join("model.safetensors");
    std::fs::copy(model(), &path).unwrap();
    let cache = dir.join("cache");
    let before = classify(&path, "f32", Some(&cache));
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    perturb(&path, "transformer.resblocks.0.mlp.c_fc.weight");
    // Same path, same size, same modification time: only the bytes tell them apart.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let after = classify(&path, "f32", Some(&cache));
    assert_ne!(after, before, "the new weights must be used");
    assert_eq!(after, classify(&path, "f32", None));
}
