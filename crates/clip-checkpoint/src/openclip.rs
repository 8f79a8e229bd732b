//! OpenCLIP folders as `open_clip.push_to_hf_hub` writes them: `open_clip_config.json`
//! (`{"model_cfg": {...}, "preprocess_cfg": {...}}`) plus a weights file. The weights carry OpenAI
//! names (the shared name mapping handles the variants); what they cannot say is the activation
//! and the head counts, which come from `model_cfg`.

use std::path::Path;

use serde_json::Value;

use crate::format::{read_file, read_folder, Loaded};
use crate::{Activation, ArchHints, CheckpointError, CheckpointFormat};

pub(crate) const CONFIG: &str = "open_clip_config.json";

/// Weight files in open_clip's order of preference (`create_model('local-dir:...')`).
const WEIGHTS: [&str; 5] = [
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
];

/// Loads an OpenCLIP folder; `open_clip_config.json` must exist (the caller checked).
pub(crate) fn load(dir: &Path) -> Result<Loaded, CheckpointError> {
    let (hints, weights) = read_folder(dir, CONFIG, &WEIGHTS, "OpenCLIP", hints)?;
    Ok(Loaded {
        format: CheckpointFormat::OpenClip,
        state: read_file(&weights)?.1,
        hints,
    })
}

/// `quick_gelu: true` means QuickGELU, absent or false means `nn.GELU`; text heads are
/// `text_cfg.heads`; vision heads are `width / head_width` (ViT) or `width * 32 / head_width`
/// (ModifiedResNet, `layers` a list), as open_clip builds them. Absent keys take open_clip's
/// `CLIPVisionCfg`/`CLIPTextCfg` defaults (width 768, head_width 64, text heads 8).
fn hints(config: &Value) -> Result<ArchHints, String> {
    let model = config.get("model_cfg").ok_or("no model_cfg")?;
    let empty = Value::Object(Default::default());
    let vision = model.get("vision_cfg").unwrap_or(&empty);
    let text = model.get("text_cfg").unwrap_or(&empty);
    let present = |cfg: &Value, key: &str| cfg.get(key).is_some_and(|v| !v.is_null());
    if present(vision, "timm_model_name") || present(text, "hf_model_name") {
        return Err("OpenCLIP towers from timm or Hugging Face models are not supported".into());
    }
    let activation = match model.get("quick_gelu") {
        Some(Value::Bool(true)) => Activation::QuickGelu,
        None | Some(Value::Bool(false)) | Some(Value::Null) => Activation::Gelu,
        Some(other) => return Err(format!("bad quick_gelu {other}")),
    };
    let positive = |cfg: &Value, key: &str, default: usize| match cfg.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or(format!("bad {key} {v}")),
    };
    let (width, head_width) = (
        positive(vision, "width", 768)?,
        positive(vision, "head_width", 64)?,
    );
    let resnet = vision.get("layers").is_some_and(Value::is_array);
    let vision_heads = if resnet {
        width * 32 / head_width
    } else {
        width / head_width
    };
    Ok(ArchHints {
        activation,
        vision_heads: Some(vision_heads),
        text_heads: Some(positive(text, "heads", 8)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hints_follow_open_clip() {
        let vit = json!({"model_cfg": {"quick_gelu": true, "vision_cfg": {"width": 1024, "head_width": 64, "layers": 24},
                                       "text_cfg": {"heads": 12}}});
        assert_eq!(
            hints(&vit).unwrap(),
            ArchHints {
                activation: Activation::QuickGelu,
                vision_heads: Some(16),
                text_heads: Some(12)
            }
        );
        let rn = json!({"model_cfg": {"vision_cfg": {"width": 64, "layers": [3, 4, 6, 3]}, "text_cfg": {}}});
        assert_eq!(
            hints(&rn).unwrap(),
            ArchHints {
                activation: Activation::Gelu,
                vision_heads: Some(32),
                text_heads: Some(8)
            }
        );
        assert!(hints(&json!({"model_cfg": {"vision_cfg": {"timm_model_name": "vit"}}})).is_err());
        assert!(
            hints(&json!({"model_cfg": {"vision_cfg": {"head_width": 0}}}))
                .unwrap_err()
                .contains("head_width")
        );
        assert!(hints(&json!({})).unwrap_err().contains("model_cfg"));
    }
}
