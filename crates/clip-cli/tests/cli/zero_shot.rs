//! `clip classify` (templates, ensembles, label files, top-k, multi-label, cache) and
//! `clip similarity`, end to end through the binary, checked against the library API and
//! `clip embed`.

use crate::util::*;
use clip::normalize;
use clip::tokenizer::Overflow;
use clip_fixtures::{committed, read_goldens};
use clip_tasks::zero_shot::IMAGENET_TEMPLATES;
use serde_json::Value;

/// Library computation "by hand", as OpenAI's ImageNet notebook does it: normalise each template
/// embedding, average, renormalise; then softmax of logit_scale * cosine.
fn probs_by_hand(image: &std::path::Path, labels: &[&str], templates: &[&str]) -> Vec<f32> {
    let clip = clip::Clip::load(model()).unwrap();
    let img = clip::image::decode_file(image, &Default::default()).unwrap();
    let mut img_emb = clip.encode_images(&[img]).unwrap().row(0).to_vec();
    normalize(&mut img_emb);
    let logits: Vec<f32> = labels
        .iter()
        .map(|label| {
            let prompts: Vec<String> = templates.iter().map(|t| t.replace("{}", label)).collect();
            let emb = clip
                .encode_texts(&prompts, Overflow::Truncate)
                .unwrap()
                .normalized();
            let mut mean = vec![0f32; emb.dim()];
            for row in emb.rows() {
                mean.iter_mut()
                    .zip(row)
                    .for_each(|(m, x)| *m += x / prompts.len() as f32);
            }
            normalize(&mut mean);
            clip.logit_scale() * mean.iter().zip(&img_emb).map(|(a, b)| a * b).sum::<f32>()
        })
        .collect();
    softmax(&logits)
}

fn scores_by_label(result: &Value, key: &str) -> Vec<(String, f32)> {
    result["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_string(),
                s[key].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

#[test]
fn classify_with_templates_matches_the_library_computed_by_hand() {
    let image = good("chelsea_small.bmp");
    let labels = ["cat", "dog", "rocket ship"];
    let templates = [
        "a photo of a {}.",
        "a drawing of the {}.",
        "{} in a video game",
    ];
    let m = model();
    let mut args = vec![
        "classify",
        s(&image),
        "--model",
        s(&m),
        "--labels",
        "cat, dog,rocket ship",
        "--json",
    ];
    for t in &templates {
        args.extend(["--template", t]);
    }
    let out = clip_json(&args);
    let want = probs_by_hand(&image, &labels, &templates);
    let got = scores_by_label(&out["results"][0], "prob");
    assert_eq!(got.len(), 3);
    for (label, p) in &got {
        let i = labels.iter().position(|l| l == label).unwrap();
        assert!((p - want[i]).abs() < 1e-5, "{label}: {p} vs {}", want[i]);
    }
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
}

#[test]
fn imagenet_and_simple_sets_and_files_combine_and_probabilities_sum_to_one() {
    let dir = tempdir("zs-files");
    let labels_file = dir.join("labels.txt");
    std::fs::write(&labels_file, "cat\n\n dog\r\nrocket\n").unwrap();
    let templates_file = dir.join("templates.txt");
    std::fs::write(&templates_file, "itap of a {}.\n").unwrap();
    let m = model();
    let (a, b, c) = (
        good("chelsea_small.bmp"),
        good("logo_rgba.png"),
        good("coffee_lossy.webp"),
    );
    let out = clip_json(&[
        "classify",
        s(&a),
        s(&b),
        s(&c),
        "--model",
        s(&m),
        "--labels-file",
        s(&labels_file),
        "--templates",
        "imagenet",
        "--templates",
        "simple",
        "--templates-file",
        s(&templates_file),
        "--json",
    ]);
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        let scores = scores_by_label(r, "prob");
        assert_eq!(scores.len(), 3);
        let sum: f32 = scores.iter().map(|(_, p)| p).sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
    }
    // The same prompts spelled out by hand give the same numbers.
    let mut templates: Vec<&str> = IMAGENET_TEMPLATES.to_vec();
    templates.extend(["a photo of a {}.", "itap of a {}."]);
    let want = probs_by_hand(&a, &["cat", "dog", "rocket"], &templates);
    for (label, p) in scores_by_label(&results[0], "prob") {
        let i = ["cat", "dog", "rocket"]
            .iter()
            .position(|l| *l == label)
            .unwrap();
        assert!((p - want[i]).abs() < 1e-5, "{label}: {p} vs {}", want[i]);
    }
}

#[test]
fn verbatim_labels_keep_following_the_golden_logits_and_top_k_cuts() {
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let gi = g
        .images
        .iter()
        .position(|n| n == "chelsea_small.bmp")
        .unwrap();
    let labels = &g.texts[..4];
    let m = model();
    let out = clip_json(&[
        "classify",
        s(&good("chelsea_small.bmp")),
        "--model",
        s(&m),
        "--labels",
        &labels.join(","),
        "--json",
        "--top-k",
        "2",
    ]);
    let got = scores_by_label(&out["results"][0], "prob");
    assert_eq!(got.len(), 2);
    let want = softmax(&g.logits_per_image[gi][..4]);
    let mut sorted = want.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    for (k, (label, p)) in got.iter().enumerate() {
        let i = labels.iter().position(|l| l == label).unwrap();
        assert!(
            (p - want[i]).abs() < 1e-4 && (p - sorted[k]).abs() < 1e-4,
            "{label}: {p}"
        );
    }
}

#[test]
fn multi_label_thresholds_each_cosine_on_its_own() {
    let image = good("chelsea_small.bmp");
    let labels = ["a cat", "a dog", "a rocket"];
    let (imgs, texts) = embed(&[&image], &labels);
    let cos: Vec<f32> = texts.iter().map(|t| cosine(&imgs[0], t)).collect();
    let mut sorted = cos.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let threshold = (sorted[0] + sorted[1]) / 2.0; // exactly one label applies
    let m = model();
    let t = threshold.to_string();
    let out = clip_json(&[
        "classify",
        s(&image),
        "--model",
        s(&m),
        "--labels",
        &labels.join(","),
        "--multi-label",
        "--threshold",
        &t,
        "--json",
    ]);
    let scores = out["results"][0]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    let mut matched = 0;
    for sc in scores {
        let label = sc["label"].as_str().unwrap();
        let c = sc["cosine"].as_f64().unwrap() as f32;
        let i = labels.iter().position(|l| *l == label).unwrap();
        assert!((c - cos[i]).abs() < 1e-5, "{label}: {c} vs {}", cos[i]);
        assert_eq!(sc["match"].as_bool(), Some(c >= threshold));
        matched += usize::from(sc["match"].as_bool().unwrap());
        assert!(sc.get("prob").is_none());
    }
    assert_eq!(matched, 1);
    clip_fails(
        &[
            "classify",
            s(&image),
            "--model",
            s(&m),
            "--labels",
            "a",
            "--multi-label",
        ],
        &["--threshold"],
    );
}

#[test]
fn class_embeddings_are_cached_per_model_and_prompts() {
    let cache = tempdir("zs-cache");
    let m = model();
    let image = good("chelsea_small.bmp");
    let args = [
        "classify",
        s(&image),
        "--model",
        s(&m),
        "--labels",
        "cat,dog",
        "--templates",
        "simple",
        "--json",
    ];
    let first = json_with_code(&clip_in(&cache, &args), 0, &args);
    let entries = || {
        std::fs::read_dir(cache.join("class-embeddings"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(entries(), 1);
    let second = json_with_code(&clip_in(&cache, &args), 0, &args);
    assert_eq!(first, second, "a cache hit gives the same numbers");
    assert_eq!(entries(), 1);
    let other = [
        "classify",
        s(&image),
        "--model",
        s(&m),
        "--labels",
        "cat,bird",
        "--templates",
        "simple",
        "--json",
    ];
    json_with_code(&clip_in(&cache, &other), 0, &other);
    assert_eq!(entries(), 2, "other labels, other entry");
    let uncached = tempdir("zs-nocache");
    let mut no = args.to_vec();
    no.push("--no-cache");
    assert_eq!(json_with_code(&clip_in(&uncached, &no), 0, &no), first);
    assert!(!uncached.join("class-embeddings").exists());
}

#[test]
fn classify_errors_name_the_input() {
    let m = model();
    let img = good("chelsea_small.bmp");
    let dir = tempdir("zs-errors");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n \n").unwrap();
    clip_fails(
        &[
            "classify",
            s(&img),
            "--model",
            s(&m),
            "--labels-file",
            s(&empty),
        ],
        &["empty label list"],
    );
    clip_fails(
        &[
            "classify",
            s(&img),
            "--model",
            s(&m),
            "--labels-file",
            "no/such/labels.txt",
        ],
        &["no/such/labels.txt"],
    );
    clip_fails(
        &[
            "classify",
            s(&img),
            "--model",
            s(&m),
            "--labels",
            "a",
            "--templates",
            "fancy",
        ],
        &["\"fancy\"", "imagenet"],
    );
    clip_fails(
        &[
            "classify",
            s(&img),
            "--model",
            s(&m),
            "--labels",
            "a",
            "--template",
            "a photo",
        ],
        &["\"a photo\"", "{}"],
    );
    clip_fails(
        &[
            "classify",
            s(&img),
            "no/such/image.png",
            "--model",
            s(&m),
            "--labels",
            "a",
        ],
        &["no/such/image.png"],
    );
    clip_fails(&["classify", s(&img), "--model", s(&m)], &["--labels"]);
}

#[test]
fn similarity_matrix_equals_the_cosine_of_embed_output() {
    let (a, b) = (good("chelsea_small.bmp"), good("hubble_portrait_rgb.png"));
    let texts = ["a cat", "a galaxy, far away", "say \"hi\""];
    let (imgs, txts) = embed(&[&a, &b], &texts);
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let m = model();
    let mut args = vec![
        "similarity",
        "--model",
        s(&m),
        "--image",
        s(&a),
        "--image",
        s(&b),
        "--format",
        "json",
        "--logits",
        "--probs",
    ];
    for t in &texts {
        args.extend(["--text", t]);
    }
    let out = clip_json(&args);
    assert_eq!(out["texts"].as_array().unwrap().len(), 3);
    for i in 0..2 {
        let cos = floats(&out["cosine"][i]);
        let logits = floats(&out["logits"][i]);
        let probs = floats(&out["probs"][i]);
        for j in 0..3 {
            let want = cosine(&imgs[i], &txts[j]);
            assert!(
                (cos[j] - want).abs() < 1e-5,
                "[{i}][{j}] {} vs {want}",
                cos[j]
            );
            assert!((logits[j] - g.logit_scale_exp as f32 * cos[j]).abs() < 1e-3);
        }
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        softmax(&logits)
            .iter()
            .zip(&probs)
            .for_each(|(w, p)| assert!((w - p).abs() < 1e-6));
    }
    // CSV: a header and one quoted-as-needed row per pair.
    args.retain(|a| !["json", "--logits", "--probs"].contains(a));
    args.retain(|a| *a != "--format");
    args.extend(["--format", "csv"]);
    let out = clip(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "image,text,cosine");
    assert_eq!(lines.len(), 1 + 2 * 3);
    assert!(
        lines.iter().any(|l| l.contains(",\"a galaxy, far away\",")),
        "{csv}"
    );
    assert!(
        lines.iter().any(|l| l.contains(",\"say \"\"hi\"\"\",")),
        "{csv}"
    );
}

#[test]
fn similarity_errors_name_the_input() {
    let m = model();
    clip_fails(
        &[
            "similarity",
            "--model",
            s(&m),
            "--image",
            "no/such.png",
            "--text",
            "x",
        ],
        &["no/such.png"],
    );
    clip_fails(
        &["similarity", "--model", s(&m), "--text", "x"],
        &["--image"],
    );
    let bad = committed("images/bad/truncated_half.jpg");
    clip_fails(
        &[
            "similarity",
            "--model",
            s(&m),
            "--image",
            s(&bad),
            "--text",
            "x",
        ],
        &["truncated_half.jpg", "truncated"],
    );
}

/// Softmax of one row, the reference's `logits.softmax(dim=-1)`.
fn softmax(row: &[f32]) -> Vec<f32> {
    clip::Scoring::softmax(1.0).probabilities(row)
}
