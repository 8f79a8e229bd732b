//! Parity of `ClipModel` with the reference (`clip.model.build_model` in float32 on CPU):
//! raw image/text embeddings and `logits_per_image` of the goldens, on the reference pixels
//! (`preprocess/<image>.224.npy`) and the goldens' own token ids.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clip::candle::{Device, Tensor};
use clip::checkpoint::{load_checkpoint, Activation, Checkpoint};
use clip::{ClipModel, LoadOptions, ModelError};
use clip::{Isa, Precision};
use clip_fixtures::{
    committed, fullsize, image_abs_tolerance, parity, read_goldens, read_npy, reference,
    ModelGoldens, FULLSIZE_ARCHS, MAX_ABS, MAX_LOGIT, MIN_COSINE,
};

#[derive(Debug, Default)]
struct Worst {
    cos: f64,
    abs: f64,
    what_cos: String,
    what_abs: String,
}

impl Worst {
    fn new() -> Self {
        Self {
            cos: 1.0,
            ..Default::default()
        }
    }
    fn add(&mut self, what: &str, ours: &[f32], golden: &[f32]) {
        let (c, a) = parity(ours, golden);
        if c < self.cos {
            self.cos = c;
            self.what_cos = what.to_string();
        }
        if a > self.abs {
            self.abs = a;
            self.what_abs = what.to_string();
        }
    }
}

fn normalize(v: &[f32]) -> Vec<f64> {
    let n = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    v.iter().map(|&x| x as f64 / n).collect()
}

fn pixels(paths: &[PathBuf]) -> Tensor {
    let mut data = Vec::new();
    for p in paths {
        let a = read_npy(p);
        assert_eq!(a.shape, vec![3, 224, 224], "{}", p.display());
        data.extend(a.data);
    }
    Tensor::from_vec(data, (paths.len(), 3, 224, 224), &Device::Cpu).unwrap()
}

/// Compares a model with its goldens, once per f32 kernel set this CPU runs (AVX-512 machines run
/// the packed kernels, others candle's GEMM: both paths are checked wherever they can run).
/// `images`: (index into the goldens' images, npy path).
fn check(
    label: &str,
    ckpt: &Checkpoint,
    g: &ModelGoldens,
    images: &[(usize, PathBuf)],
    max_abs_image: f64,
) {
    for isa in Isa::available(Precision::F32) {
        let label = format!("{label} ({isa:?} kernels)");
        check_with(&label, ckpt, g, images, max_abs_image, isa);
    }
}

fn check_with(
    label: &str,
    ckpt: &Checkpoint,
    g: &ModelGoldens,
    images: &[(usize, PathBuf)],
    max_abs_image: f64,
    isa: Isa,
) {
    let t0 = Instant::now();
    let options = LoadOptions {
        kernels: Some(isa),
        ..Default::default()
    };
    let model = ClipModel::with_options(ckpt, &Device::Cpu, options)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let t_load = t0.elapsed();
    assert_eq!(model.config().embed_dim, g.embed_dim);
    assert_eq!(model.config().image_resolution(), g.resolution);
    assert!(
        (model.logit_scale() as f64 - g.logit_scale_exp).abs() <= 1e-5 * g.logit_scale_exp,
        "{label}: logit scale {} vs {}",
        model.logit_scale(),
        g.logit_scale_exp
    );

    // Texts: one batch of the goldens' 77-id rows.
    let t1 = Instant::now();
    let n = g.text_tokens.len();
    let flat: Vec<i64> = g.text_tokens.iter().flatten().copied().collect();
    let tokens = Tensor::from_vec(flat, (n, g.text_tokens[0].len()), &Device::Cpu).unwrap();
    let te = model
        .encode_text(&tokens)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let t_text = t1.elapsed();
    let mut wt = Worst::new();
    for (i, (ours, gold)) in te.iter().zip(&g.text_embeddings).enumerate() {
        wt.add(
            &format!(
                "text {i} {:?}",
                g.texts[i].chars().take(30).collect::<String>()
            ),
            ours,
            gold,
        );
    }

    // Images: one batch.
    let t2 = Instant::now();
    let paths: Vec<PathBuf> = images.iter().map(|(_, p)| p.clone()).collect();
    let ie = model
        .encode_image(&pixels(&paths))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let t_img = t2.elapsed();
    let mut wi = Worst::new();
    for ((idx, _), ours) in images.iter().zip(&ie) {
        wi.add(&g.images[*idx], ours, &g.image_embeddings[*idx]);
    }

    // logits_per_image from our embeddings.
    let scale = model.logit_scale() as f64;
    let tn: Vec<Vec<f64>> = te.iter().map(|v| normalize(v)).collect();
    let mut wl = (0f64, String::new());
    for ((idx, _), img) in images.iter().zip(&ie) {
        let inorm = normalize(img);
        for (j, t) in tn.iter().enumerate() {
            let ours = scale * inorm.iter().zip(t).map(|(a, b)| a * b).sum::<f64>();
            let d = (ours - g.logits_per_image[*idx][j] as f64).abs();
            if d > wl.0 {
                wl = (d, format!("{} x text {j}", g.images[*idx]));
            }
        }
    }
    let max_img = images
        .iter()
        .flat_map(|(i, _)| &g.image_embeddings[*i])
        .fold(0f32, |m, &x| m.max(x.abs()));
    println!(
        "{label}: image tolerance {max_abs_image:.1e} (max |golden| {max_img:.1})\n  {label}: texts {n}: worst 1-cosine {:.1e} ({}), max abs {:.3e} ({}); images {}: worst 1-cosine {:.1e} ({}), max abs {:.3e} ({}); logits max diff {:.3e} ({}); load {:.2?}, {} texts {:.2?}, {} images {:.2?}",
        1.0 - wt.cos, wt.what_cos, wt.abs, wt.what_abs, images.len(), 1.0 - wi.cos, wi.what_cos, wi.abs, wi.what_abs, wl.0, wl.1,
        t_load, n, t_text, images.len(), t_img
    );
    assert!(
        wt.cos >= MIN_COSINE && wt.abs <= MAX_ABS,
        "{label}: text parity {wt:?}"
    );
    assert!(
        wi.cos >= MIN_COSINE && wi.abs <= max_abs_image,
        "{label}: image parity {wi:?}"
    );
    assert!(
        wl.0 <= MAX_LOGIT,
        "{label}: logits differ by {} at {}",
        wl.0,
        wl.1
    );
}

fn reference_images(g: &ModelGoldens, dir: &Path) -> Vec<(usize, PathBuf)> {
    g.images
        .iter()
        .enumerate()
        .map(|(i, name)| (i, dir.join(format!("{name}.224.npy"))))
        .collect()
}

#[test]
fn committed_tiny_vit_matches_goldens() {
    let ckpt = load_checkpoint(&committed("models/tiny-vit.safetensors")).unwrap();
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let dir = committed("preprocess");
    let images: Vec<(usize, PathBuf)> = reference_images(&g, &dir)
        .into_iter()
        .filter(|(_, p)| p.exists())
        .collect();
    assert_eq!(images.len(), 5, "committed preprocess npys");
    check(
        "tiny-vit (committed, 5 images)",
        &ckpt,
        &g,
        &images,
        MAX_ABS,
    );
}

#[test]
fn reference_tiny_vit_matches_goldens() {
    let (Some(m), Some(g), Some(pre)) = (
        reference("models/tiny-vit/tiny-vit.safetensors"),
        reference("goldens/tiny-vit.json"),
        reference("preprocess"),
    ) else {
        return;
    };
    let g = read_goldens(&g);
    check(
        "tiny-vit",
        &load_checkpoint(&m).unwrap(),
        &g,
        &reference_images(&g, &pre),
        MAX_ABS,
    );
}

#[test]
fn reference_tiny_rn_matches_goldens() {
    let (Some(m), Some(g), Some(pre)) = (
        reference("models/tiny-rn/tiny-rn.safetensors"),
        reference("goldens/tiny-rn.json"),
        reference("preprocess"),
    ) else {
        return;
    };
    let g = read_goldens(&g);
    let ckpt = load_checkpoint(&m).unwrap();
    let model = ClipModel::new(&ckpt, &Device::Cpu).unwrap();
    assert_eq!(
        model.config().vision,
        clip::VisionConfig::ResNet {
            layers: [1, 1, 1, 1],
            width: 16,
            heads: 8,
            resolution: 224
        }
    );
    check(
        "tiny-rn",
        &ckpt,
        &g,
        &reference_images(&g, &pre),
        image_abs_tolerance(&g),
    );
}

#[test]
fn reference_tiny_vit_openclip_gelu_matches_goldens() {
    let (Some(m), Some(g), Some(pre)) = (
        reference("models/tiny-vit-openclip-gelu"),
        reference("goldens/tiny-vit-openclip-gelu.json"),
        reference("preprocess"),
    ) else {
        return;
    };
    let g = read_goldens(&g);
    // The folder loader takes activation and heads from open_clip_config.json.
    let mut ckpt = load_checkpoint(&m).unwrap();
    assert_eq!(ckpt.hints.activation, Activation::Gelu);
    check(
        "tiny-vit-openclip-gelu",
        &ckpt,
        &g,
        &reference_images(&g, &pre),
        MAX_ABS,
    );

    // The activation matters: QuickGELU gives different text embeddings.
    ckpt.hints.activation = Activation::QuickGelu;
    let model = ClipModel::new(&ckpt, &Device::Cpu).unwrap();
    let tokens = Tensor::new(g.text_tokens[0].as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let te = model
        .encode_text(&tokens)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let (_, abs) = parity(&te[0], &g.text_embeddings[0]);
    assert!(
        abs > 1e-3,
        "QuickGELU should not reproduce the GELU goldens (max abs {abs})"
    );
}

#[test]
fn text_batches_and_short_rows_give_the_same_embeddings() {
    let ckpt = load_checkpoint(&committed("models/tiny-vit.safetensors")).unwrap();
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let model = ClipModel::new(&ckpt, &Device::Cpu).unwrap();
    for (i, row) in g.text_tokens.iter().enumerate() {
        // Alone, as u32, cut right after the EOT token (shorter than the context).
        let eot = row.iter().position(|&t| t == 49407).unwrap();
        let ids: Vec<u32> = row[..=eot].iter().map(|&t| t as u32).collect();
        let tokens = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let te = model
            .encode_text(&tokens)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let (c, a) = parity(&te[0], &g.text_embeddings[i]);
        assert!(
            c >= MIN_COSINE && a <= MAX_ABS,
            "text {i} alone: cosine {c}, max abs {a}"
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    let ckpt = load_checkpoint(&committed("models/tiny-vit.safetensors")).unwrap();
    let model = ClipModel::new(&ckpt, &Device::Cpu).unwrap();
    let px = Tensor::zeros((1, 3, 200, 224), clip::candle::DType::F32, &Device::Cpu).unwrap();
    let e = model.encode_image(&px).unwrap_err().to_string();
    assert!(e.contains("expected [batch, 3, 224, 224]"), "{e}");
    let long = Tensor::zeros((1, 78), clip::candle::DType::U32, &Device::Cpu).unwrap();
    let e = model.encode_text(&long).unwrap_err().to_string();
    assert!(e.contains("length <= 77"), "{e}");
    let oov = Tensor::new(&[[49406u32, 49408]], &Device::Cpu).unwrap();
    let e = model.encode_text(&oov).unwrap_err().to_string();
    assert!(
        e.contains("token id 49408 at [0, 1] is outside the vocabulary (size 49408)"),
        "{e}"
    );
    let neg = Tensor::new(&[[49406i64, -1]], &Device::Cpu).unwrap();
    assert!(matches!(model.encode_text(&neg), Err(ModelError::Input(_))));
}

fn malformed(name: &str) -> Option<(PathBuf, String)> {
    let p = reference(&format!("models/malformed/{name}"))?;
    let ckpt =
        load_checkpoint(&p).unwrap_or_else(|e| panic!("{name} should load as a checkpoint: {e}"));
    let e = ClipModel::new(&ckpt, &Device::Cpu).expect_err(name);
    assert_eq!(e.path(), Some(p.as_path()));
    Some((p, e.to_string()))
}

#[test]
fn missing_tensor_is_named() {
    let Some((p, e)) = malformed("missing-tensor.safetensors") else {
        return;
    };
    println!("{e}");
    assert_eq!(
        e,
        format!("{}: missing tensor ln_final.weight", p.display())
    );
}

#[test]
fn wrong_shape_is_named() {
    let Some((p, e)) = malformed("wrong-shape.safetensors") else {
        return;
    };
    println!("{e}");
    assert_eq!(
        e,
        format!(
            "{}: tensor text_projection has shape [64, 16], expected [64, 32]",
            p.display()
        )
    );
}

#[test]
fn nan_weights_are_refused() {
    let Some((p, e)) = malformed("nan-weights.safetensors") else {
        return;
    };
    println!("{e}");
    assert_eq!(
        e,
        format!("{}: tensor text_projection contains NaN", p.display())
    );
}

/// Random full-size checkpoints (`tools/make_fullsize.py`): `CLIP_FULLSIZE_DIR` holds
/// `<arch>.safetensors` + `<arch>.goldens.json` (ViT-B-32, RN50, ...). Images are compared when the
/// reference preprocess npy of each golden image exists, otherwise texts only.
#[test]
#[ignore]
fn fullsize_checkpoints_match_goldens() {
    let mut found = 0;
    for arch in FULLSIZE_ARCHS {
        let Some((m, g, pre)) = fullsize(arch) else {
            continue;
        };
        found += 1;
        // Pixels: `<dir>/preprocess/<image>.224.npy` (make_fullsize's helper writes them), else
        // the reference preprocess goldens.
        let pre = if pre.is_dir() {
            Some(pre)
        } else {
            reference("preprocess")
        };
        let images: Vec<(usize, PathBuf)> = match &pre {
            Some(pre) => reference_images(&g, pre)
                .into_iter()
                .filter(|(_, p)| p.exists())
                .collect(),
            None => vec![],
        };
        if images.len() < g.images.len() {
            println!(
                "{arch}: only {} of {} images have reference pixels",
                images.len(),
                g.images.len()
            );
        }
        let tol = if arch.starts_with("RN") {
            image_abs_tolerance(&g)
        } else {
            MAX_ABS
        };
        check(arch, &load_checkpoint(&m).unwrap(), &g, &images, tol);
    }
    assert!(found > 0, "no full-size checkpoints (CLIP_FULLSIZE_DIR)");
}

/// Rows of a batch come back in input order even when a longer text precedes a shorter one
/// (regression: when captions still ran in length groups, a single group came back sorted).
#[test]
fn text_rows_keep_their_input_order() {
    let clip = clip::Clip::load(committed("models/tiny-vit.safetensors")).unwrap();
    let texts = ["a photo of a cat sitting on the mat.", "x", "a dog"];
    let batch = clip
        .encode_texts(&texts, clip::tokenizer::Overflow::Error)
        .unwrap();
    for (i, t) in texts.iter().enumerate() {
        let alone = clip
            .encode_texts(&[t], clip::tokenizer::Overflow::Error)
            .unwrap();
        let (c, a) = parity(batch.row(i), alone.row(0));
        assert!(
            c >= MIN_COSINE && a <= MAX_ABS,
            "{t:?}: cosine {c}, max abs {a}"
        );
    }
}
