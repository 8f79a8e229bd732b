//! The opt-in speed modes through the real binary. `--precision`: every reduced precision stays
//! within its accuracy bar of f32 end to end (decode, preprocess, tokenise, encode), the forced
//! portable kernels (`CLIP_KERNELS=portable`, what a CPU without AVX-512 or AVX2 runs) give the
//! same result, a text-only run loads only the text tower, and `clip bench` reports the precision
//! it measured. `--fast-jpeg`: close to the exact decode, and never the default.

use std::process::Command;

use crate::util::{clip_fails, clip_json, good, model, s};
use serde_json::Value;

fn embeddings(v: &Value, key: &str) -> Vec<Vec<f64>> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// Embeddings are L2-normalised: the dot product is the cosine.
fn min_cosine(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .fold(1.0, f64::min)
}

fn embed_args(precision: &str) -> Vec<String> {
    let m = model();
    let mut args = vec![
        "embed".into(),
        "--model".into(),
        s(&m).into(),
        "--precision".into(),
        precision.into(),
    ];
    for img in [
        "astronaut_progressive.jpg",
        "rocket_cmyk.jpg",
        "camera_gray.jpg",
        "logo_rgba.png",
    ] {
        args.extend(["--image".into(), s(&good(img)).into()]);
    }
    for t in ["a photo of an astronaut", "a cup of coffee", "x"] {
        args.extend(["--text".into(), t.into()]);
    }
    args
}

fn run_embed(precision: &str, kernels: Option<&str>) -> Value {
    let args = embed_args(precision);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip"));
    cmd.args(&args)
        .env_remove("CLIP_MODEL")
        .env_remove("CLIP_PRECISION");
    match kernels {
        Some(k) => cmd.env("CLIP_KERNELS", k),
        None => cmd.env_remove("CLIP_KERNELS"),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn reduced_precisions_stay_close_to_f32_end_to_end() {
    let f32 = run_embed("f32", None);
    for (precision, bar) in [("bf16", 0.999), ("f16", 0.999), ("int8", 0.995)] {
        for kernels in [None, Some("portable")] {
            let got = run_embed(precision, kernels);
            for key in ["images", "texts"] {
                let c = min_cosine(&embeddings(&f32, key), &embeddings(&got, key));
                println!("{precision} {kernels:?} {key}: min cosine to f32 {c:.6}");
                assert!(
                    c >= bar,
                    "{precision} ({kernels:?}) {key}: cosine {c} < {bar}"
                );
            }
        }
    }
}

#[test]
fn text_only_runs_and_bad_precisions_are_refused() {
    let m = model();
    let v = clip_json(&[
        "embed",
        "--model",
        s(&m),
        "--precision",
        "bf16",
        "--text",
        "a dog",
    ]);
    assert_eq!(v["texts"].as_array().unwrap().len(), 1);
    clip_fails(
        &[
            "embed",
            "--model",
            s(&m),
            "--precision",
            "fp8",
            "--text",
            "a dog",
        ],
        &["fp8", "one of f32, bf16, f16, int8"],
    );
}

#[test]
fn bench_reports_the_precision_it_measured() {
    // ViT-B/32's image tower: 87 849 216 parameters, 335.1 MiB in f32 (packing pads a little).
    for (precision, weights_mib) in [("f32", 335.1..339.0), ("int8", 80.0..90.0)] {
        let v = clip_json(&[
            "bench",
            "--arch",
            "ViT-B/32",
            "--batch",
            "2",
            "--rounds",
            "1",
            "--no-b1",
            "--threads",
            "2",
            "--precision",
            precision,
            "--json",
        ]);
        assert_eq!(v["precision"], precision);
        assert!(v["images_per_s"].as_f64().unwrap() > 0.0);
        let (peak, weights) = (
            v["peak_rss_mb"].as_f64().unwrap(),
            v["weights_mb"].as_f64().unwrap(),
        );
        assert!(weights_mib.contains(&weights), "{precision}: {weights} MiB");
        assert!(peak > 0.0);
        assert!((v["rss_over_weights"].as_f64().unwrap() - peak / weights).abs() < 1e-2);
    }
}

#[test]
fn fast_jpeg_is_close_and_opt_in() {
    let m = model();
    let images = [
        good("astronaut_progressive.jpg"),
        good("camera_gray.jpg"),
        good("rocket_cmyk.jpg"),
    ];
    let run = |fast: bool| {
        let mut args = vec!["embed", "--model", s(&m)];
        for img in &images {
            args.extend(["--image", s(img)]);
        }
        if fast {
            args.push("--fast-jpeg");
        }
        embeddings(&clip_json(&args), "images")
    };
    let (exact, quick) = (run(false), run(true));
    for (i, (a, b)) in exact.iter().zip(&quick).enumerate() {
        let c: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        println!(
            "{}: fast JPEG embedding cosine to the exact decode {c:.6}",
            images[i].display()
        );
        assert!(c > 0.99, "{}: cosine {c}", images[i].display());
    }
    // rocket_cmyk.jpg (480x320) is too small to scale for a 224-pixel model: identical.
    assert_eq!(exact[2], quick[2]);
    assert_ne!(exact[0], quick[0], "a 512x512 JPEG is decoded at half size");
}
