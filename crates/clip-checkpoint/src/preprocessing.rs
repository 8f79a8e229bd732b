//! The preprocessing a checkpoint folder describes, read into [`clip_image::Preprocess`]: open_clip's
//! `preprocess_cfg` and transformers' `preprocessor_config.json`. A setting we cannot reproduce
//! exactly is an error naming it: feeding a model other pixels than its reference does would give
//! quietly wrong embeddings (a port that ignored SigLIP's squash resize did exactly that).

use clip_image::{Interpolation, Normalization, Preprocess, ResizeMode, RgbConversion};
use serde_json::{Map, Value};

/// A number as f32 (JSON numbers are f64; torch reads the constants as float32 as Rust does).
fn f32_of(v: &Value, what: &str) -> Result<f32, String> {
    v.as_f64()
        .map(|x| x as f32)
        .ok_or(format!("{what} is not a number: {v}"))
}

/// A 3-vector (`image_mean`, `std`, ...); a single number is broadcast as torchvision does.
fn triple(v: &Value, what: &str) -> Result<[f32; 3], String> {
    match v {
        Value::Array(a) if a.len() == 3 => Ok([
            f32_of(&a[0], what)?,
            f32_of(&a[1], what)?,
            f32_of(&a[2], what)?,
        ]),
        Value::Number(_) => Ok([f32_of(v, what)?; 3]),
        other => Err(format!("{what} must be 3 numbers, not {other}")),
    }
}

fn normalization(mean: &Value, std: &Value) -> Result<Normalization, String> {
    let std_v = triple(std, "std")?;
    if std_v.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(format!("std {std_v:?} must be positive"));
    }
    Ok(Normalization {
        mean: triple(mean, "mean")?,
        std: std_v,
    })
}

/// A square side: an integer, or `[h, w]` / `{"height", "width"}` with `h == w`.
fn square(v: &Value, what: &str) -> Result<u32, String> {
    let side = |x: &Value| {
        x.as_u64()
            .filter(|&n| (1..=8192).contains(&n))
            .map(|n| n as u32)
            .ok_or(format!("{what} {x} is not a size in pixels"))
    };
    let (h, w) = match v {
        Value::Number(_) => return side(v),
        Value::Array(a) if a.len() == 2 => (side(&a[0])?, side(&a[1])?),
        Value::Object(o) => match (o.get("height"), o.get("width")) {
            (Some(h), Some(w)) => (side(h)?, side(w)?),
            _ => return Err(format!("{what} {v} has no height and width")),
        },
        other => return Err(format!("{what} {other} is not a size")),
    };
    if h != w {
        return Err(format!(
            "{what} {h}x{w} is not square (only square inputs are supported)"
        ));
    }
    Ok(h)
}

/// open_clip's `preprocess_cfg` (`open_clip_config.json`), applied to the eval transform
/// `image_transform(..., is_train=False)`: resize by `resize_mode`, `convert("RGB")` after the
/// resize, `ToTensor`, `Normalize`. Absent keys take open_clip's defaults (CLIP's constants,
/// bicubic, `shortest`, fill 0); `size` must agree with the tower's `image_size` when both exist.
pub(crate) fn open_clip(
    cfg: &Map<String, Value>,
    image_size: Option<u32>,
) -> Result<Preprocess, String> {
    let mut p = Preprocess::clip(image_size.unwrap_or(224));
    let clip = Normalization::default();
    let mean = cfg.get("mean").cloned();
    let std = cfg.get("std").cloned();
    for (key, v) in cfg {
        match key.as_str() {
            "size" => {
                let n = square(v, "preprocess_cfg.size")?;
                if let Some(tower) = image_size.filter(|&t| t != n) {
                    return Err(format!(
                        "preprocess_cfg.size {n} differs from vision_cfg.image_size {tower}"
                    ));
                }
                p.resolution = n;
            }
            "mode" => {
                if v.as_str() != Some("RGB") {
                    return Err(format!(
                        "preprocess_cfg.mode {v} is not supported (only RGB)"
                    ));
                }
            }
            "mean" | "std" => {}
            "interpolation" => {
                p.interpolation = match v.as_str() {
                    Some("bicubic") => Interpolation::Bicubic,
                    Some("bilinear") => Interpolation::Bilinear,
                    _ => {
                        return Err(format!(
                        "preprocess_cfg.interpolation {v} is not supported (bicubic or bilinear)"
                    ))
                    }
                }
            }
            "resize_mode" => {
                p.resize = match v.as_str() {
                    Some("shortest") => ResizeMode::Shortest,
                    Some("squash") => ResizeMode::Squash,
                    Some("longest") => ResizeMode::Longest { fill: [0; 3] },
                    _ => {
                        return Err(format!(
                    "preprocess_cfg.resize_mode {v} is not supported (shortest, squash or longest)"
                ))
                    }
                }
            }
            "fill_color" => {}
            other => return Err(format!("preprocess_cfg option {other:?} is not supported")),
        }
    }
    if let ResizeMode::Longest { fill } = &mut p.resize {
        if let Some(v) = cfg.get("fill_color") {
            let f = v
                .as_u64()
                .filter(|&f| f <= 255)
                .ok_or(format!("preprocess_cfg.fill_color {v} is not a byte value"))?;
            *fill = [f as u8; 3];
        }
    }
    p.normalization = normalization(
        &mean.unwrap_or(Value::from(clip.mean.map(f64::from).to_vec())),
        &std.unwrap_or(Value::from(clip.std.map(f64::from).to_vec())),
    )?;
    Ok(p)
}

/// transformers' `preprocessor_config.json` of a SigLIP folder (`SiglipImageProcessor`, read by
/// its Pillow backend): convert to RGB first (over white), resize to `size` with `resample`,
/// rescale by `1/255`, normalise. Absent keys take `SiglipImageProcessor`'s defaults (224,
/// bilinear, mean and std 0.5). Any step switched off, or a factor we cannot reproduce, is refused.
pub(crate) fn siglip(cfg: &Map<String, Value>) -> Result<Preprocess, String> {
    let on = |key: &str| cfg.get(key).and_then(Value::as_bool).unwrap_or(true);
    for step in ["do_resize", "do_rescale", "do_normalize"] {
        if !on(step) {
            return Err(format!("{step}: false is not supported"));
        }
    }
    if let Some(f) = cfg.get("rescale_factor") {
        let f = f
            .as_f64()
            .ok_or(format!("rescale_factor {f} is not a number"))?;
        if (f - 1.0 / 255.0).abs() > 1e-12 {
            return Err(format!("rescale_factor {f} is not supported (only 1/255)"));
        }
    }
    let resolution = match cfg.get("size") {
        Some(v) => square(v, "size")?,
        None => 224,
    };
    let interpolation = match cfg.get("resample").map(|v| v.as_u64()) {
        None | Some(Some(2)) => Interpolation::Bilinear,
        Some(Some(3)) => Interpolation::Bicubic,
        Some(_) => {
            return Err(format!(
                "resample {} is not supported (2 = bilinear or 3 = bicubic)",
                cfg["resample"]
            ))
        }
    };
    let half = Value::from(vec![0.5, 0.5, 0.5]);
    Ok(Preprocess {
        resolution,
        resize: ResizeMode::Squash,
        interpolation,
        rgb: RgbConversion::BeforeResizeOnWhite,
        normalization: normalization(
            cfg.get("image_mean").unwrap_or(&half),
            cfg.get("image_std").unwrap_or(&half),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn open_clip_defaults_are_clips_transform() {
        assert_eq!(
            open_clip(&obj(json!({})), Some(224)).unwrap(),
            Preprocess::clip(224)
        );
        let p = open_clip(
            &obj(
                json!({"size": 256, "resize_mode": "squash", "interpolation": "bilinear",
                        "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}),
            ),
            Some(256),
        )
        .unwrap();
        assert_eq!(
            (
                p.resolution,
                p.resize,
                p.interpolation,
                p.normalization.mean
            ),
            (256, ResizeMode::Squash, Interpolation::Bilinear, [0.5; 3])
        );
        let p = open_clip(
            &obj(json!({"resize_mode": "longest", "fill_color": 7})),
            None,
        )
        .unwrap();
        assert_eq!(p.resize, ResizeMode::Longest { fill: [7; 3] });
    }

    #[test]
    fn open_clip_refuses_what_it_cannot_reproduce() {
        for (cfg, word) in [
            (json!({"resize_mode": "random"}), "resize_mode"),
            (json!({"interpolation": "random"}), "interpolation"),
            (json!({"size": [224, 256]}), "square"),
            (json!({"size": 256}), "differs"),
            (json!({"std": [0, 1, 1]}), "positive"),
            (json!({"mode": "L"}), "mode"),
            (json!({"color_jitter": 0.4}), "color_jitter"),
        ] {
            let e = open_clip(&obj(cfg.clone()), Some(224)).unwrap_err();
            assert!(e.contains(word), "{cfg}: {e}");
        }
    }

    #[test]
    fn siglip_processor_config() {
        let p = siglip(&obj(
            json!({"size": {"height": 256, "width": 256}, "resample": 2,
                                   "rescale_factor": 0.00392156862745098,
                                   "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}),
        ))
        .unwrap();
        assert_eq!(
            (p.resolution, p.resize, p.interpolation, p.rgb),
            (
                256,
                ResizeMode::Squash,
                Interpolation::Bilinear,
                RgbConversion::BeforeResizeOnWhite
            )
        );
        assert!(siglip(&obj(json!({"resample": 0})))
            .unwrap_err()
            .contains("resample"));
        assert!(siglip(&obj(json!({"do_normalize": false})))
            .unwrap_err()
            .contains("do_normalize"));
        assert!(siglip(&obj(json!({"size": {"height": 224, "width": 256}})))
            .unwrap_err()
            .contains("square"));
    }
}
