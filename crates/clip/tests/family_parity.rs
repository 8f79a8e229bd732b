//! Parity of the model families beside OpenAI CLIP (SigLIP 1 and 2, OpenCLIP folders with their
//! own `model_cfg` and `preprocess_cfg`) with their reference packages, through the public API a
//! user calls: `Clip::load(folder)`, its tokenizer, its preprocessing, its towers and its scoring.
//! Goldens: `fixtures/goldens/<model>.json`, made by transformers / open_clip loading the folders
//! as a user does (`tools/siglip/make_fixtures.py`, `tools/openclip/make_fixtures.py`).
//!
//! Full-size random models (SigLIP 2 base, ViT-B-32-256) made by `tools/siglip/make_fullsize.py`
//! and `tools/openclip/make_fullsize.py` are checked too when `CLIP_FULLSIZE_DIR` holds them (not
//! in CI: hundreds of MB).

use std::path::{Path, PathBuf};

use clip::image::{decode_file, DecodeOptions};
use clip::tokenizer::Overflow;
use clip::{Clip, Family};
use clip_fixtures::{committed, parity, read_npy, MAX_ABS, MAX_LOGIT, MIN_COSINE};
use serde_json::Value;

/// The committed family fixtures.
const MODELS: [&str; 4] = [
    "tiny-siglip2",
    "tiny-siglip1-spm",
    "tiny-openclip-squash",
    "tiny-openclip-longest",
];

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    v.iter().map(|&x| (f64::from(x) / n) as f32).collect()
}

/// Worst cosine and max abs difference over `ours` against `golden`, asserted within the
/// project's targets.
fn check_embeddings(label: &str, ours: &[Vec<f32>], golden: &[Vec<f32>]) -> (f64, f64) {
    assert_eq!(ours.len(), golden.len(), "{label}: count");
    let (mut cos, mut abs) = (1f64, 0f64);
    for (i, (o, g)) in ours.iter().zip(golden).enumerate() {
        let (c, a) = parity(o, g);
        assert!(
            c >= MIN_COSINE && a <= MAX_ABS,
            "{label} #{i}: cos {c}, max abs {a}"
        );
        cos = cos.min(c);
        abs = abs.max(a);
    }
    (cos, abs)
}

/// Everything a goldens file says about one model, checked against `Clip::load(folder)`.
/// `pixels_dir`: the reference's pixels, compared bit for bit when given.
fn check_model(
    label: &str,
    folder: &Path,
    goldens: &Value,
    pixels_dir: Option<&Path>,
    images_dir: &Path,
) {
    let clip = Clip::load(folder).unwrap_or_else(|e| panic!("{label}: {e}"));
    let family = match goldens["family"].as_str().unwrap() {
        "siglip" => Family::Siglip,
        "clip" => Family::Clip,
        other => panic!("{label}: family {other}"),
    };
    assert_eq!(clip.family(), family, "{label}");

    // Tokens as the model sees them.
    let texts: Vec<String> = goldens["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    for (text, want) in texts.iter().zip(goldens["text_tokens"].as_array().unwrap()) {
        let want: Vec<u32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            clip.tokenize(text, Overflow::Truncate).unwrap(),
            want,
            "{label}: tokens of {text:?}"
        );
    }

    // Pixels from our decoder and preprocessing, bit for bit; the image tower on them.
    let images: Vec<String> = goldens["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let mut ours_px = Vec::new();
    for name in &images {
        let img = decode_file(&images_dir.join(name), &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{label}: {name}: {e}"));
        let px = clip.preprocess(&img);
        if let Some(dir) = pixels_dir {
            let want = read_npy(&dir.join(format!("{name}.npy")));
            let n = clip.resolution() as usize;
            assert_eq!(want.shape, [3, n, n], "{label}: {name}");
            let differ = px
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "{label}: {name}: {differ} values differ from the reference's"
            );
        }
        ours_px.push(px);
    }
    let image_emb = clip.encode_pixels(&ours_px).unwrap();
    let image_emb: Vec<Vec<f32>> = image_emb.rows().map(<[f32]>::to_vec).collect();
    let (ic, ia) = check_embeddings(
        &format!("{label} image"),
        &image_emb,
        &rows(&goldens["image_embeddings"]),
    );

    let text_emb = clip.encode_texts(&texts, Overflow::Truncate).unwrap();
    let text_emb: Vec<Vec<f32>> = text_emb.rows().map(<[f32]>::to_vec).collect();
    let (tc, ta) = check_embeddings(
        &format!("{label} text"),
        &text_emb,
        &rows(&goldens["text_embeddings"]),
    );

    // Logits and probabilities with the family's scoring.
    let scoring = clip.scoring();
    let bias = goldens["logit_bias"].as_f64().unwrap_or(0.0) as f32;
    assert!((scoring.bias - bias).abs() <= 1e-6, "{label}: logit bias");
    let mut logit_err = 0f64;
    for (i, (img, (want_logits, want_probs))) in image_emb
        .iter()
        .zip(
            rows(&goldens["logits_per_image"])
                .iter()
                .zip(rows(&goldens["probs_per_image"])),
        )
        .enumerate()
    {
        let a = normalized(img);
        let logits: Vec<f32> = text_emb
            .iter()
            .map(|t| scoring.logit(clip::dot(&a, &normalized(t))))
            .collect();
        for (o, w) in logits.iter().zip(want_logits) {
            logit_err = logit_err.max(f64::from((o - w).abs()));
        }
        let probs = scoring.probabilities(&logits);
        for (o, w) in probs.iter().zip(&want_probs) {
            assert!((o - w).abs() <= 1e-4, "{label}: image {i}: prob {o} vs {w}");
        }
    }
    assert!(
        logit_err <= MAX_LOGIT,
        "{label}: logits differ by {logit_err}"
    );
    println!(
        "{label}: {} images, {} texts; pixels {}; image cos >= {ic:.7} max abs {ia:.2e}; \
         text cos >= {tc:.7} max abs {ta:.2e}; logits max abs {logit_err:.2e}",
        images.len(),
        texts.len(),
        if pixels_dir.is_some() {
            "identical"
        } else {
            "not compared (no goldens)"
        }
    );
}

fn goldens(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn family_fixtures_match_their_reference_packages() {
    for model in MODELS {
        let folder = committed(&format!("models/{model}"));
        let g = goldens(&committed(&format!("goldens/{model}.json")));
        let pixels = committed(&format!("preprocess/{model}"));
        check_model(model, &folder, &g, Some(&pixels), &committed("images/good"));
    }
}

/// `CLIP_FULLSIZE_DIR/<name>/` (the model folder) and `<name>.json` (its goldens), as the
/// full-size scripts write them.
fn fullsize(name: &str) -> Option<(PathBuf, Value)> {
    let dir = PathBuf::from(std::env::var_os("CLIP_FULLSIZE_DIR")?);
    let folder = dir.join(name);
    let g = dir.join(format!("{name}.json"));
    (folder.is_dir() && g.is_file()).then(|| (folder, goldens(&g)))
}

#[test]
fn full_size_families_when_made() {
    for name in [
        "siglip2-base-patch16-224-random",
        "ViT-B-32-256-datacomp-random",
    ] {
        match fullsize(name) {
            Some((folder, g)) => check_model(name, &folder, &g, None, &committed("images/good")),
            None => println!("{name}: not in CLIP_FULLSIZE_DIR (made by tools/*/make_fullsize.py)"),
        }
    }
}
