//! Accuracy of the reduced precisions against the reference's f32 goldens, on every fixture model
//! and every kernel set this CPU runs (so the AVX2 and portable fallbacks are checked everywhere,
//! not only on machines without AVX-512): embedding cosine and zero-shot top-1 agreement.
//!
//! The bounds are the issue's: cosine >= 0.999 for bf16 and f16, >= 0.995 for int8. Top-1
//! agreement (image -> best of the goldens' texts) is printed; with random weights the logits of a
//! tiny model are close together, so near-ties may flip and it is reported, not asserted.

use std::path::PathBuf;

use clip::candle::{Device, Tensor};
use clip::checkpoint::load_checkpoint;
use clip::{ClipModel, LoadOptions, Towers};
use clip::{Isa, Precision};
use clip_fixtures::{
    committed, fullsize, read_goldens, read_npy, reference, ModelGoldens, FULLSIZE_ARCHS,
};

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

fn min_cosine(precision: Precision) -> f64 {
    match precision {
        Precision::Int8 => 0.995,
        _ => 0.999,
    }
}

/// Runs one model in every reduced precision and kernel set; returns the printed rows.
fn check_model(label: &str, model: PathBuf, g: &ModelGoldens, pre: PathBuf) {
    let ckpt = load_checkpoint(&model).unwrap();
    let images: Vec<(usize, PathBuf)> = g
        .images
        .iter()
        .enumerate()
        .map(|(i, n)| (i, pre.join(format!("{n}.224.npy"))))
        .filter(|(_, p)| p.exists())
        .collect();
    assert!(
        !images.is_empty(),
        "{label}: no preprocessed images in {}",
        pre.display()
    );
    let mut px = Vec::new();
    for (_, p) in &images {
        px.extend(read_npy(p).data);
    }
    let pixels = Tensor::from_vec(px, (images.len(), 3, 224, 224), &Device::Cpu).unwrap();
    let n = g.text_tokens.len();
    let flat: Vec<i64> = g.text_tokens.iter().flatten().copied().collect();
    let tokens = Tensor::from_vec(flat, (n, g.text_tokens[0].len()), &Device::Cpu).unwrap();
    let golden_text = &g.text_embeddings;
    let norm = |v: &[f32]| -> Vec<f64> {
        let s = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        v.iter().map(|x| *x as f64 / s).collect()
    };
    let logits = |img: &[f32], texts: &[Vec<f32>]| -> Vec<f64> {
        let i = norm(img);
        texts
            .iter()
            .map(|t| norm(t).iter().zip(&i).map(|(a, b)| a * b).sum())
            .collect()
    };
    for precision in [Precision::Bf16, Precision::F16, Precision::Int8] {
        for isa in Isa::available(precision) {
            let opts = LoadOptions {
                precision,
                towers: Towers::Both,
                kernels: Some(isa),
            };
            let m = ClipModel::with_options(&ckpt, &Device::Cpu, opts).unwrap();
            let te = m.encode_text(&tokens).unwrap().to_vec2::<f32>().unwrap();
            let ie = m.encode_image(&pixels).unwrap().to_vec2::<f32>().unwrap();
            let text_cos = te
                .iter()
                .zip(golden_text)
                .map(|(a, b)| cosine(a, b))
                .fold(1f64, f64::min);
            let mut image_cos = 1f64;
            let mut agree = 0;
            for ((idx, _), ours) in images.iter().zip(&ie) {
                image_cos = image_cos.min(cosine(ours, &g.image_embeddings[*idx]));
                let want = argmax(&logits(&g.image_embeddings[*idx], golden_text));
                let got = argmax(&logits(ours, &te));
                agree += usize::from(want == got);
            }
            println!(
                "{label} {precision} {isa:?}: min cosine images {image_cos:.6}, texts {text_cos:.6}; \
                 zero-shot top-1 agreement {agree}/{}",
                images.len()
            );
            let min = min_cosine(precision);
            assert!(
                image_cos >= min && text_cos >= min,
                "{label} {precision} {isa:?}: cosine images {image_cos}, texts {text_cos} < {min}"
            );
        }
    }
}

#[test]
fn committed_tiny_vit_in_every_precision() {
    check_model(
        "tiny-vit (committed)",
        committed("models/tiny-vit.safetensors"),
        &read_goldens(&committed("goldens/tiny-vit.json")),
        committed("preprocess"),
    );
}

#[test]
fn reference_models_in_every_precision() {
    for name in ["tiny-rn", "tiny-vit-openclip-gelu"] {
        let model = match name {
            "tiny-rn" => reference("models/tiny-rn/tiny-rn.safetensors"),
            _ => reference("models/tiny-vit-openclip-gelu"),
        };
        let (Some(model), Some(g), Some(pre)) = (
            model,
            reference(&format!("goldens/{name}.json")),
            reference("preprocess"),
        ) else {
            return;
        };
        check_model(name, model, &read_goldens(&g), pre);
    }
}

#[test]
fn one_tower_models_refuse_the_other() {
    let ckpt = load_checkpoint(&committed("models/tiny-vit.safetensors")).unwrap();
    let both = ClipModel::new(&ckpt, &Device::Cpu).unwrap();
    let tokens = Tensor::from_vec(vec![49406u32, 320, 49407], (1, 3), &Device::Cpu).unwrap();
    let want = both.encode_text(&tokens).unwrap().to_vec2::<f32>().unwrap();
    let opts = |towers| LoadOptions {
        towers,
        ..Default::default()
    };
    let text = ClipModel::with_options(&ckpt, &Device::Cpu, opts(Towers::Text)).unwrap();
    assert_eq!(
        text.encode_text(&tokens).unwrap().to_vec2::<f32>().unwrap(),
        want
    );
    let px = Tensor::zeros((1, 3, 224, 224), clip::candle::DType::F32, &Device::Cpu).unwrap();
    let e = text.encode_image(&px).unwrap_err().to_string();
    assert_eq!(e, "the model was loaded without its image tower");
    let image = ClipModel::with_options(&ckpt, &Device::Cpu, opts(Towers::Image)).unwrap();
    assert_eq!(
        image.encode_image(&px).unwrap().to_vec2::<f32>().unwrap(),
        both.encode_image(&px).unwrap().to_vec2::<f32>().unwrap()
    );
    let e = image.encode_text(&tokens).unwrap_err().to_string();
    assert_eq!(e, "the model was loaded without its text tower");
}

/// Full-size random-weight checkpoints ([`fullsize`]); run with
/// `cargo test -p clip --release -- --ignored`.
#[test]
#[ignore]
fn fullsize_checkpoints_in_every_precision() {
    let mut found = 0;
    for arch in FULLSIZE_ARCHS {
        if let Some((model, g, pre)) = fullsize(arch) {
            found += 1;
            check_model(arch, model, &g, pre);
        }
    }
    assert!(found > 0, "no full-size checkpoints (CLIP_FULLSIZE_DIR)");
}

#[test]
fn kernels_the_cpu_lacks_are_refused() {
    let ckpt = load_checkpoint(&committed("models/tiny-vit.safetensors")).unwrap();
    for precision in [Precision::Bf16, Precision::F16, Precision::Int8] {
        let all = Isa::available(precision);
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Amx] {
            let opts = LoadOptions {
                precision,
                towers: Towers::Text,
                kernels: Some(isa),
            };
            match ClipModel::with_options(&ckpt, &Device::Cpu, opts) {
                Ok(_) => assert!(all.contains(&isa)),
                Err(e) => {
                    assert!(!all.contains(&isa), "{precision} {isa:?}: {e}");
                    assert!(
                        e.to_string()
                            .contains("need CPU features this machine lacks"),
                        "{e}"
                    );
                }
            }
        }
    }
}
