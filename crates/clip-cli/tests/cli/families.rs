//! The model families beside OpenAI CLIP through the real binary: SigLIP 2 (a `tokenizer.json`
//! of the Gemma kind), SigLIP 1 (`spiece.model`) and OpenCLIP folders with their own
//! `preprocess_cfg`, against goldens made by transformers and open_clip loading the same folders.

use std::path::{Path, PathBuf};

use crate::util::*;
use clip_fixtures::{committed, parity, read_npy, MAX_ABS, MAX_LOGIT, MIN_COSINE};
use serde_json::Value;

const MODELS: [&str; 4] = [
    "tiny-siglip2",
    "tiny-siglip1-spm",
    "tiny-openclip-squash",
    "tiny-openclip-longest",
];

fn folder(model: &str) -> PathBuf {
    committed(&format!("models/{model}"))
}

fn goldens(model: &str) -> Value {
    let p = committed(&format!("goldens/{model}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Every line of the multilingual corpus: `clip tokenize --model` gives the reference's ids
/// (padded, truncated as the model card prescribes), and without `--truncate` exactly the
/// over-long lines are refused, naming the text.
#[test]
fn tokenize_with_a_model_gives_the_reference_ids() {
    for model in MODELS {
        let dir = folder(model);
        let lines =
            std::fs::read_to_string(committed(&format!("goldens/{model}.tokens.jsonl"))).unwrap();
        let lines: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ctx = ids(&lines[0]["ids"]).len();
        let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
        let mut args = vec!["tokenize", "--truncate", "--model", s(&dir)];
        args.extend(texts.iter().copied());
        let out = clip_json(&args);
        let rows = out["tokens"].as_array().unwrap();
        assert_eq!(rows.len(), lines.len());
        for (row, line) in rows.iter().zip(&lines) {
            assert_eq!(ids(row), ids(&line["ids"]), "{model}: {:?}", line["text"]);
        }
        for line in &lines {
            let text = line["text"].as_str().unwrap();
            let over = line["untruncated_len"].as_u64().unwrap() as usize > ctx;
            let out = clip(&["tokenize", "--model", s(&dir), text]);
            assert_eq!(
                out.status.code(),
                Some(if over { 2 } else { 0 }),
                "{model}: {text:?}: {}",
                stderr(&out)
            );
        }
    }
}

/// `clip preprocess --model` writes the reference processor's pixels, bit for bit.
#[test]
fn preprocess_with_a_model_gives_the_reference_pixels() {
    let out_dir = tempdir("family-preprocess");
    for model in MODELS {
        let g = goldens(model);
        for name in strings(&g["images"]).iter().take(8) {
            let out = out_dir.join(format!("{model}-{name}.npy"));
            let dir = folder(model);
            let image = good(name);
            let args = ["preprocess", s(&image), "--model", s(&dir), "-o", s(&out)];
            let run = clip(&args);
            assert_eq!(run.status.code(), Some(0), "{args:?}: {}", stderr(&run));
            let ours = read_npy(&out);
            let want = read_npy(&committed(&format!("preprocess/{model}/{name}.npy")));
            assert_eq!(ours.shape, want.shape, "{model}: {name}");
            let differ = ours
                .data
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "{model}: {name}: {differ} values differ");
        }
    }
}

/// `clip embed --raw` returns what the family's reference feature functions return.
#[test]
fn embed_raw_matches_the_reference_features() {
    for model in MODELS {
        let g = goldens(model);
        let dir = folder(model);
        let images = strings(&g["images"]);
        let texts = strings(&g["texts"]);
        let paths: Vec<PathBuf> = images.iter().map(|n| good(n)).collect();
        let mut args = vec!["embed", "--raw", "--model", s(&dir)];
        for p in &paths {
            args.extend(["--image", s(p)]);
        }
        for t in &texts {
            args.extend(["--text", t.as_str()]);
        }
        let out = clip_json(&args);
        let check = |key: &str, golden: &str| {
            let ours = out[key].as_array().unwrap();
            let want = g[golden].as_array().unwrap();
            assert_eq!(ours.len(), want.len(), "{model}: {key}");
            for (i, (o, w)) in ours.iter().zip(want).enumerate() {
                let (c, a) = parity(&floats(&o["embedding"]), &floats(w));
                assert!(
                    c >= MIN_COSINE && a <= MAX_ABS,
                    "{model}: {key} #{i}: cos {c} max abs {a}"
                );
            }
        };
        check("images", "image_embeddings");
        check("texts", "text_embeddings");
    }
}

/// SigLIP's `classify --json` gives each label its own sigmoid probability (not a softmax:
/// they need not sum to 1), best first, in the usual schema.
#[test]
fn classify_gives_sigmoid_probabilities_for_siglip() {
    for model in ["tiny-siglip2", "tiny-siglip1-spm"] {
        let g = goldens(model);
        let images = strings(&g["images"]);
        let texts: Vec<String> = strings(&g["texts"])
            .into_iter()
            .filter(|t| !t.is_empty() && !t.contains(','))
            .collect();
        let all = strings(&g["texts"]);
        let i = 0;
        let dir = folder(model);
        let img = good(&images[i]);
        let labels = texts.join(",");
        let out = clip_json(&[
            "classify",
            s(&img),
            "--model",
            s(&dir),
            "--labels",
            &labels,
            "--json",
        ]);
        let scores = out["results"][0]["scores"].as_array().unwrap();
        assert_eq!(scores.len(), texts.len());
        let mut last = f64::INFINITY;
        for sc in scores {
            let label = sc["label"].as_str().unwrap();
            let p = sc["prob"].as_f64().unwrap();
            assert!(p <= last, "{model}: not best first");
            last = p;
            let j = all.iter().position(|t| t == label).unwrap();
            let logit = g["logits_per_image"][i][j].as_f64().unwrap();
            let want = 1.0 / (1.0 + (-logit).exp());
            assert!(
                (p - want).abs() <= 1e-4 + MAX_LOGIT * want * (1.0 - want),
                "{model}: {label}: {p} vs sigmoid {want}"
            );
        }
    }
}

/// The issue's own example: a SigLIP folder, offline, a German text.
#[test]
fn embed_a_german_text_with_siglip_offline() {
    let dir = folder("tiny-siglip2");
    let out = clip_json(&["embed", "--model", s(&dir), "--text", "ein Hund"]);
    let e = floats(&out["texts"][0]["embedding"]);
    let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
}

/// A copy of a fixture folder in a temporary place, to break one file of it.
fn copy_folder(model: &str, name: &str) -> PathBuf {
    let dst = tempdir(name).join(model);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(folder(model)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn an_open_clip_option_we_do_not_implement_is_named() {
    let dir = copy_folder("tiny-openclip-squash", "family-unknown-option");
    edit_json(&dir.join("open_clip_config.json"), |v| {
        v["model_cfg"]["vision_cfg"]["attentional_pool"] = Value::Bool(true);
    });
    clip_fails(
        &["embed", "--model", s(&dir), "--text", "a dog"],
        &["attentional_pool", "open_clip_config.json"],
    );
    edit_json(&dir.join("open_clip_config.json"), |v| {
        v["model_cfg"]["vision_cfg"]["attentional_pool"] = Value::Bool(false);
        v["model_cfg"]["text_cfg"]["frobnicate"] = Value::from(3);
    });
    clip_fails(
        &["embed", "--model", s(&dir), "--text", "a dog"],
        &["text_cfg.frobnicate"],
    );
    edit_json(&dir.join("open_clip_config.json"), |v| {
        v["model_cfg"]["text_cfg"]
            .as_object_mut()
            .unwrap()
            .remove("frobnicate");
        v["preprocess_cfg"]["resize_mode"] = Value::from("random");
    });
    clip_fails(
        &["embed", "--model", s(&dir), "--text", "a dog"],
        &["resize_mode"],
    );
}

#[test]
fn a_malformed_tokenizer_file_is_a_clear_error() {
    let dir = copy_folder("tiny-siglip2", "family-bad-tokenizer");
    std::fs::write(dir.join("tokenizer.json"), "{\"model\": {\"type\": ").unwrap();
    clip_fails(
        &["embed", "--model", s(&dir), "--text", "ein Hund"],
        &["tokenizer.json"],
    );
    let dir = copy_folder("tiny-siglip1-spm", "family-bad-spm");
    let bytes = std::fs::read(dir.join("spiece.model")).unwrap();
    std::fs::write(dir.join("spiece.model"), &bytes[..bytes.len() / 3]).unwrap();
    clip_fails(
        &["tokenize", "--model", s(&dir), "ein Hund"],
        &["spiece.model"],
    );
}

/// Semantic search works with a SigLIP model as with CLIP: its index is a space of its own
/// beside a CLIP model's in the same database, and a text query returns the image the goldens
/// rank first.
#[test]
fn index_and_search_with_siglip_beside_clip() {
    let model = "tiny-siglip2";
    let g = goldens(model);
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let images = strings(&g["images"]);
    for name in &images {
        std::fs::copy(good(name), photos.join(name)).unwrap();
    }
    let db = dir.path().join("index.db");
    let siglip = folder(model);
    let clip_model = committed("models/tiny-vit.safetensors");
    for m in [&siglip, &clip_model] {
        clip_json(&[
            "index",
            s(&photos),
            "--model",
            s(m),
            "--db",
            s(&db),
            "--json",
        ]);
    }
    for m in [&siglip, &clip_model] {
        let status = clip_json(&[
            "index",
            "--status",
            "--model",
            s(m),
            "--db",
            s(&db),
            "--json",
        ]);
        assert_eq!(
            status["images"].as_u64(),
            Some(images.len() as u64),
            "{status}"
        );
        assert_eq!(status["model"].as_str(), Some(s(m)), "{status}");
    }

    let cos = |a: &Value, b: &Value| parity(&floats(a), &floats(b)).0;
    let mut checked = 0;
    for (ti, text) in strings(&g["texts"]).iter().enumerate() {
        if text.is_empty() {
            continue;
        }
        let mut ranked: Vec<(f64, &str)> = images
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    cos(&g["text_embeddings"][ti], &g["image_embeddings"][i]),
                    n.as_str(),
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        if ranked[0].0 - ranked[1].0 < 2e-3 {
            continue;
        }
        let out = clip_json(&[
            "search",
            text,
            "-k",
            "1",
            "--model",
            s(&siglip),
            "--db",
            s(&db),
            "--json",
        ]);
        let hit = out["results"][0]["path"].as_str().unwrap();
        assert!(
            hit.ends_with(&format!("/{}", ranked[0].1)),
            "{text:?}: {out}"
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} texts had a clear golden nearest image"
    );
}
