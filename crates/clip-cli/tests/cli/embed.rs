//! End-to-end tests: they run the real `clip` binary and check its output against goldens made by
//! the reference implementation (never against our own earlier output).

use std::path::{Path, PathBuf};

use crate::util::*;
use clip_fixtures::{
    committed, image_abs_tolerance, parity, read_goldens, read_npy, reference, ModelGoldens,
    MAX_ABS, MAX_LOGIT, MIN_COSINE,
};

/// Worst (cosine, max abs diff) of `embed --raw` over the given images and all golden texts,
/// plus the worst logit difference recomputed from our embeddings.
struct Figures {
    image_cos: f64,
    image_diff: f64,
    text_cos: f64,
    text_diff: f64,
    logit_diff: f64,
    image_tolerance: f64,
}

fn embed_parity(model: &Path, image_dir: &Path, images: &[String], g: &ModelGoldens) -> Figures {
    let mut args: Vec<String> = vec![
        "embed".into(),
        "--raw".into(),
        "--model".into(),
        s(model).into(),
    ];
    for name in images {
        args.extend([
            "--image".into(),
            image_dir.join(name).to_str().unwrap().into(),
        ]);
    }
    for t in &g.texts {
        args.extend(["--text".into(), t.clone()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = clip_json(&argv);
    assert_eq!(out["dim"].as_u64(), Some(g.embed_dim as u64));
    assert_eq!(out["model"].as_str(), Some(s(model)));
    let mut f = Figures {
        image_cos: 1.0,
        image_diff: 0.0,
        text_cos: 1.0,
        text_diff: 0.0,
        logit_diff: 0.0,
        image_tolerance: image_abs_tolerance(g),
    };
    let ours_img: Vec<Vec<f32>> = out["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| floats(&e["embedding"]))
        .collect();
    let ours_txt: Vec<Vec<f32>> = out["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| floats(&e["embedding"]))
        .collect();
    for (t, ours) in ours_txt.iter().enumerate() {
        assert_eq!(out["texts"][t]["text"].as_str(), Some(g.texts[t].as_str()));
        let (c, d) = parity(ours, &g.text_embeddings[t]);
        f.text_cos = f.text_cos.min(c);
        f.text_diff = f.text_diff.max(d);
    }
    for (i, name) in images.iter().enumerate() {
        let gi = g
            .images
            .iter()
            .position(|n| n == name)
            .expect("image in goldens");
        let (c, d) = parity(&ours_img[i], &g.image_embeddings[gi]);
        f.image_cos = f.image_cos.min(c);
        f.image_diff = f.image_diff.max(d);
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (t, txt) in ours_txt.iter().enumerate() {
            let cos: f32 = ours_img[i].iter().zip(txt).map(|(a, b)| a * b).sum::<f32>()
                / (norm(&ours_img[i]) * norm(txt));
            let logit = g.logit_scale_exp as f32 * cos;
            f.logit_diff = f
                .logit_diff
                .max((logit - g.logits_per_image[gi][t]).abs() as f64);
        }
    }
    f
}

fn assert_parity(label: &str, f: &Figures) {
    eprintln!(
        "{label}: image cos {:.7} diff {:.2e} | text cos {:.7} diff {:.2e} | logits {:.2e}",
        f.image_cos, f.image_diff, f.text_cos, f.text_diff, f.logit_diff
    );
    assert!(
        f.text_cos >= MIN_COSINE && f.text_diff <= MAX_ABS,
        "{label}: text parity"
    );
    assert!(
        f.image_cos >= MIN_COSINE && f.image_diff <= f.image_tolerance,
        "{label}: image parity"
    );
    assert!(f.logit_diff <= MAX_LOGIT, "{label}: logits parity");
}

fn all_images(g: &ModelGoldens) -> Vec<String> {
    g.images.clone()
}

#[test]
fn embed_matches_goldens_on_committed_fixture() {
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let f = embed_parity(
        &committed("models/tiny-vit.safetensors"),
        &committed("images/good"),
        &all_images(&g),
        &g,
    );
    assert_parity("tiny-vit.safetensors (committed)", &f);
}

/// Every public fixture model and format, end to end through the binary: decode, preprocess,
/// tokenise, encode.
#[test]
fn embed_matches_goldens_for_every_reference_model_and_format() {
    let Some(root) = reference("models") else {
        return;
    };
    let goldens = reference("goldens").unwrap();
    let images = reference("images/good").unwrap();
    let cases: &[(&str, &str)] = &[
        ("tiny-vit/tiny-vit.safetensors", "tiny-vit"),
        ("tiny-vit/tiny-vit.pt", "tiny-vit"),
        ("tiny-vit/tiny-vit.torchscript.pt", "tiny-vit"),
        ("tiny-rn/tiny-rn.safetensors", "tiny-rn"),
        ("tiny-rn/tiny-rn.torchscript.pt", "tiny-rn"),
        ("tiny-vit-hf", "tiny-vit-hf"),
        ("tiny-vit-openclip-gelu", "tiny-vit-openclip-gelu"),
    ];
    for (model, golden) in cases {
        let g = read_goldens(&goldens.join(format!("{golden}.json")));
        let f = embed_parity(&root.join(model), &images, &all_images(&g), &g);
        assert_parity(model, &f);
    }
}

#[test]
fn embed_normalises_unless_raw() {
    let out = clip_json(&[
        "embed",
        "--model",
        s(&committed("models/tiny-vit.safetensors")),
        "--image",
        s(&committed("images/good/chelsea_small.bmp")),
        "--text",
        "a cat",
    ]);
    for e in [
        &out["images"][0]["embedding"],
        &out["texts"][0]["embedding"],
    ] {
        let n: f32 = floats(e).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "norm {n}");
    }
}

#[test]
fn embed_truncates_long_text_with_a_warning_or_fails_with_no_truncate() {
    let model = committed("models/tiny-vit.safetensors");
    let long = "word ".repeat(100);
    let out = clip(&["embed", "--model", s(&model), "--text", &long]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    clip_fails(
        &[
            "embed",
            "--model",
            s(&model),
            "--no-truncate",
            "--text",
            &long,
        ],
        &["too long", "word word"],
    );
}

#[test]
fn tokenize_matches_reference_rows() {
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let texts: Vec<&str> = g.texts.iter().map(String::as_str).collect();
    let mut args = vec!["tokenize", "--truncate"];
    args.extend(&texts);
    let out = clip_json(&args);
    let rows = out["tokens"].as_array().unwrap();
    assert_eq!(rows.len(), g.text_tokens.len());
    for (row, want) in rows.iter().zip(&g.text_tokens) {
        let got: Vec<i64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(&got, want);
    }
}

#[test]
fn tokenize_context_length_and_overflow_error() {
    let out = clip_json(&[
        "tokenize",
        "--context-length",
        "5",
        "--truncate",
        "a b c d e f",
    ]);
    let row: Vec<i64> = out["tokens"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(row.len(), 5);
    assert_eq!(row[0], 49406);
    assert_eq!(row[4], 49407);
    clip_fails(
        &["tokenize", "--context-length", "5", "a b c d e f"],
        &["a b c d e f", "too long"],
    );
}

#[test]
fn preprocess_writes_the_reference_tensor() {
    let dir = tempdir();
    for name in [
        "chelsea_small.bmp",
        "logo_rgba.png",
        "hubble_portrait_rgb.png",
        "text_1bit.png",
    ] {
        let out = dir.join(format!("{name}.npy"));
        let img = committed(&format!("images/good/{name}"));
        let status = clip(&[
            "preprocess",
            s(&img),
            "--resolution",
            "224",
            "--output",
            s(&out),
        ]);
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let ours = read_npy(&out);
        let want = read_npy(&committed(&format!("preprocess/{name}.224.npy")));
        assert_eq!(ours.shape, vec![3, 224, 224]);
        let (_, diff) = parity(&ours.data, &want.data);
        assert!(diff <= 1e-6, "{name}: max abs diff {diff}");
    }
}

#[test]
fn classify_probabilities_follow_the_golden_logits() {
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let labels = &g.texts[..4];
    assert!(labels.iter().all(|l| !l.contains(',')));
    let joined = labels.join(",");
    let name = "chelsea_small.bmp";
    let gi = g.images.iter().position(|n| n == name).unwrap();
    let out = clip_json(&[
        "classify",
        s(&committed(&format!("images/good/{name}"))),
        "--labels",
        &joined,
        "--model",
        s(&committed("models/tiny-vit.safetensors")),
        "--json",
    ]);
    let scores = out["results"][0]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 4);
    let logits = &g.logits_per_image[gi][..4];
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let z: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let mut sum = 0.0;
    let mut prev = f64::INFINITY;
    for s in scores {
        let label = s["label"].as_str().unwrap();
        let p = s["prob"].as_f64().unwrap();
        let li = labels.iter().position(|l| l == label).unwrap();
        let want = ((logits[li] - max).exp() / z) as f64;
        assert!((p - want).abs() < 1e-4, "{label}: {p} vs {want}");
        assert!(p <= prev, "best first");
        prev = p;
        sum += p;
    }
    assert!((sum - 1.0).abs() < 1e-5);
}

#[test]
fn classify_prints_a_table() {
    let out = clip(&[
        "classify",
        s(&committed("images/good/chelsea_small.bmp")),
        "--labels",
        "a cat, a dog",
        "--model",
        s(&committed("models/tiny-vit.safetensors")),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("chelsea_small.bmp") && text.contains("a cat") && text.contains('%'),
        "{text}"
    );
}

#[test]
fn bad_inputs_fail_with_exit_2_and_name_the_input() {
    let model = committed("models/tiny-vit.safetensors");
    let m = s(&model);
    clip_fails(
        &["embed", "--model", m, "--image", "no/such/file.png"],
        &["no/such/file.png"],
    );
    clip_fails(
        &[
            "embed",
            "--model",
            "no/such/model.safetensors",
            "--text",
            "x",
        ],
        &["no/such/model.safetensors"],
    );
    clip_fails(&["embed", "--text", "x"], &["--model"]);
    clip_fails(&["embed", "--model", m], &["nothing to embed"]);
    clip_fails(
        &[
            "classify",
            s(&committed("images/good/chelsea_small.bmp")),
            "--model",
            m,
            "--labels",
            " , ",
        ],
        &["empty label list"],
    );
    for entry in std::fs::read_dir(committed("images/bad")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        clip_fails(&["embed", "--model", m, "--image", s(&path)], &[&name]);
    }
}

#[test]
fn malformed_checkpoints_fail_with_exit_2_and_a_reason() {
    let Some(dir) = reference("models/malformed") else {
        return;
    };
    let cases: &[(&str, &str)] = &[
        ("truncated.safetensors", "truncated"),
        (
            "bad-header.safetensors",
            "header length 10485760 exceeds file size",
        ),
        (
            "missing-tensor.safetensors",
            "missing tensor ln_final.weight",
        ),
        (
            "wrong-shape.safetensors",
            "tensor text_projection has shape [64, 16], expected [64, 32]",
        ),
        ("nan-weights.safetensors", "text_projection"),
        ("empty.safetensors", "no tensors"),
        ("not-a-checkpoint.pt", "not a"),
        ("truncated.pt", "truncated"),
        ("evil-pickle.pt", "disallowed pickle global os.system"),
        ("evil-plain.pkl", "disallowed pickle global builtins.eval"),
        ("hf-missing-config", "without config.json"),
    ];
    let marker = Path::new("/tmp/clip-evil-pickle-ran");
    let _ = std::fs::remove_file(marker);
    for (file, reason) in cases {
        let path = dir.join(file);
        clip_fails(
            &["embed", "--model", s(&path), "--text", "a dog"],
            &[file, reason],
        );
    }
    assert!(!marker.exists(), "a malicious pickle executed code");
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
