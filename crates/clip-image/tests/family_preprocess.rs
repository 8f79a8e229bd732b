//! Model families' preprocessing against the reference processors: for each tiny model under
//! `fixtures/models`, the `Preprocess` its configuration describes (written out by hand here;
//! reading configurations belongs to the checkpoint crate) must give bit-identical float32 tensors
//! for every image of `fixtures/images/good`. The goldens in `fixtures/preprocess/<model>/` were
//! made with the reference packages (transformers' PIL backend, open_clip's `image_transform`).

use clip_fixtures::{committed, read_npy};
use clip_image::{
    decode_file, DecodeOptions, Interpolation, Normalization, Preprocess, ResizeMode, RgbConversion,
};

const N: u32 = 32;

#[derive(serde::Deserialize)]
struct Index {
    images: Vec<IndexEntry>,
}

#[derive(serde::Deserialize)]
struct IndexEntry {
    image: String,
    file: String,
}

/// Every golden of `model` through `pre`: prints a row per image and fails on any difference.
fn check(model: &str, pre: &Preprocess) {
    let index: Index = serde_json::from_str(
        &std::fs::read_to_string(committed(&format!("preprocess/{model}/index.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(index.images.len(), 22, "{model}: one golden per good image");
    let mut bad = Vec::new();
    for e in &index.images {
        let img = decode_file(
            &committed(&format!("images/good/{}", e.image)),
            &DecodeOptions::default(),
        )
        .unwrap_or_else(|err| panic!("{}: {err}", e.image));
        let want = read_npy(&committed(&format!("preprocess/{model}/{}", e.file)));
        assert_eq!(want.shape, [3, N as usize, N as usize], "{}", e.image);
        let got = pre.apply(&img);
        let differing = got
            .iter()
            .zip(&want.data)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        let max_abs = got
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{model:24} {:32} {:5} differing {differing:5} max |d| {max_abs}",
            e.image,
            img.mode().pillow_name()
        );
        if differing > 0 {
            bad.push(e.image.clone());
        }
    }
    assert!(
        bad.is_empty(),
        "{model}: {} of {} images differ: {bad:?}",
        bad.len(),
        index.images.len()
    );
}

const HALF: Normalization = Normalization {
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// `preprocessor_config.json`: SiglipImageProcessor, size 32x32, resample 2 (BILINEAR),
/// mean/std 0.5, rescale 1/255, RGB conversion on.
#[test]
fn tiny_siglip2() {
    check(
        "tiny-siglip2",
        &Preprocess {
            resolution: N,
            resize: ResizeMode::Squash,
            interpolation: Interpolation::Bilinear,
            rgb: RgbConversion::BeforeResizeOnWhite,
            normalization: HALF,
        },
    );
}

/// `preprocessor_config.json`: SiglipImageProcessor, size 32x32, resample 3 (BICUBIC),
/// mean/std 0.5, rescale 1/255, RGB conversion on.
#[test]
fn tiny_siglip1_spm() {
    check(
        "tiny-siglip1-spm",
        &Preprocess {
            resolution: N,
            resize: ResizeMode::Squash,
            interpolation: Interpolation::Bicubic,
            rgb: RgbConversion::BeforeResizeOnWhite,
            normalization: HALF,
        },
    );
}

/// `open_clip_config.json` `preprocess_cfg`: resize_mode "squash", interpolation "bilinear",
/// mean/std 0.5 (open_clip's `image_transform`: `Resize((n, n))`, then `convert("RGB")`).
#[test]
fn tiny_openclip_squash() {
    check(
        "tiny-openclip-squash",
        &Preprocess {
            resolution: N,
            resize: ResizeMode::Squash,
            interpolation: Interpolation::Bilinear,
            rgb: RgbConversion::AfterResize,
            normalization: HALF,
        },
    );
}

/// `open_clip_config.json` `preprocess_cfg`: resize_mode "longest", interpolation "bicubic",
/// fill_color 128, ImageNet mean/std (`ResizeKeepRatio(n, longest=1)`,
/// `CenterCropOrPad(n, fill=128)`, then `convert("RGB")`).
#[test]
fn tiny_openclip_longest() {
    check(
        "tiny-openclip-longest",
        &Preprocess {
            resolution: N,
            resize: ResizeMode::Longest { fill: [128; 3] },
            interpolation: Interpolation::Bicubic,
            rgb: RgbConversion::AfterResize,
            normalization: Normalization {
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
            },
        },
    );
}
