//! SigLIP and SigLIP 2 ("FixRes") folders as the Hugging Face hub carries them: `config.json`
//! (`model_type: "siglip"`), `model.safetensors`, `preprocessor_config.json`, and the tokenizer
//! files (`tokenizer.json` + `tokenizer_config.json`, or SigLIP 1's `spiece.model`).
//!
//! The towers map onto CLIP's names wherever the maths is the same (blocks, embeddings, final
//! norms), so one transformer implementation serves both families; what SigLIP adds keeps names
//! of its own: the patch embedding's bias (`visual.conv1.bias`), the attention-pooling head
//! (`visual.attn_pool.*`), the text head as a linear layer with bias (`text_projection.weight`,
//! `.bias`, as open_clip's `proj_bias` towers store it) and `logit_bias`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::format::{find_weights, read_file, read_json, Loaded};
use crate::huggingface::{self, WEIGHTS};
use crate::{preprocessing, Activation, ArchHints, CheckpointError, CheckpointFormat, Family};
use crate::{StateDict, TensorData, TextPool, TokenizerSource, VisionPool};

/// Whether a `config.json` describes a SigLIP model. SigLIP 2's NaFlex variant (`siglip2`)
/// takes variable-sized patch grids and is refused by the caller with its own message.
pub(crate) fn is_siglip(config: &Value) -> bool {
    config.get("model_type").and_then(Value::as_str) == Some("siglip")
}

/// Loads a SigLIP folder whose `config.json` the caller read.
pub(crate) fn load(dir: &Path, config: &Value) -> Result<Loaded, CheckpointError> {
    let config_path = dir.join("config.json");
    let hints = hints(config).map_err(|e| CheckpointError::invalid(&config_path, e))?;
    // Sharded indexes (`*.index.json`) are for models far larger than any SigLIP release.
    let files: Vec<&str> = WEIGHTS
        .into_iter()
        .filter(|w| !w.ends_with(".json"))
        .collect();
    let weights = find_weights(dir, &files, "SigLIP")?;
    let state = to_openai(&weights, read_file(&weights)?.1)?;
    let processor = dir.join("preprocessor_config.json");
    let preprocess = if processor.is_file() {
        let cfg = read_json(&processor)?;
        let cfg = cfg
            .as_object()
            .ok_or_else(|| CheckpointError::invalid(&processor, "not a JSON object"))?;
        preprocessing::siglip(cfg).map_err(|e| CheckpointError::invalid(&processor, e))?
    } else {
        preprocessing::siglip(&Map::new()).map_err(|e| CheckpointError::invalid(dir, e))?
    };
    Ok(Loaded {
        format: CheckpointFormat::HuggingFace,
        state,
        hints,
        family: Family::Siglip,
        preprocess: Some(preprocess),
        tokenizer: TokenizerSource::Folder(dir.to_path_buf()),
    })
}

/// Heads, activation and LayerNorm epsilon of each tower, with `SiglipTextConfig` /
/// `SiglipVisionConfig`'s defaults for absent keys (12 heads, `gelu_pytorch_tanh`, 1e-6). The
/// towers must agree on activation and epsilon (every released SigLIP does).
fn hints(config: &Value) -> Result<ArchHints, String> {
    let empty = Map::new();
    let tower = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
    };
    let (text, vision) = (tower("text_config"), tower("vision_config"));
    let act = |cfg: &Map<String, Value>, which: &str| match cfg.get("hidden_act") {
        None => Ok(Activation::GeluTanh),
        Some(v) => v
            .as_str()
            .and_then(Activation::from_hf)
            .ok_or(format!("{which}.hidden_act {v} is not supported")),
    };
    let eps = |cfg: &Map<String, Value>, which: &str| match cfg.get("layer_norm_eps") {
        None => Ok(1e-6),
        Some(v) => v
            .as_f64()
            .filter(|e| e.is_finite() && *e > 0.0)
            .ok_or(format!(
                "{which}.layer_norm_eps {v} is not a positive number"
            )),
    };
    let heads = |cfg: &Map<String, Value>, which: &str| match cfg.get("num_attention_heads") {
        None => Ok(12),
        Some(v) => v
            .as_u64()
            .filter(|&h| h > 0)
            .map(|h| h as usize)
            .ok_or(format!(
                "{which}.num_attention_heads {v} is not a positive integer"
            )),
    };
    let activation = act(text, "text_config")?;
    if act(vision, "vision_config")? != activation {
        return Err("text and vision towers use different hidden_act".into());
    }
    let layer_norm_eps = eps(text, "text_config")?;
    if eps(vision, "vision_config")? != layer_norm_eps {
        return Err("text and vision towers use different layer_norm_eps".into());
    }
    if vision.get("vision_use_head") == Some(&Value::Bool(false)) {
        return Err("vision_use_head: false (no pooling head) is not supported".into());
    }
    Ok(ArchHints {
        activation,
        vision_heads: Some(heads(vision, "vision_config")?),
        text_heads: Some(heads(text, "text_config")?),
        layer_norm_eps,
        causal_text: false,
        text_pool: TextPool::Last,
        vision_pool: VisionPool::ClassToken,
        vision_ln_after_pool: false,
    })
}

/// SigLIP's own tensors, beyond the transformer blocks and embeddings it shares with Hugging
/// Face's CLIP layout.
const SIGLIP_ONLY: [(&str, &str); 14] = [
    ("logit_bias", "logit_bias"),
    (
        "vision_model.embeddings.patch_embedding.bias",
        "visual.conv1.bias",
    ),
    ("vision_model.head.probe", "visual.attn_pool.probe"),
    (
        "vision_model.head.attention.in_proj_weight",
        "visual.attn_pool.attn.in_proj_weight",
    ),
    (
        "vision_model.head.attention.in_proj_bias",
        "visual.attn_pool.attn.in_proj_bias",
    ),
    (
        "vision_model.head.attention.out_proj.weight",
        "visual.attn_pool.attn.out_proj.weight",
    ),
    (
        "vision_model.head.attention.out_proj.bias",
        "visual.attn_pool.attn.out_proj.bias",
    ),
    (
        "vision_model.head.layernorm.weight",
        "visual.attn_pool.ln.weight",
    ),
    (
        "vision_model.head.layernorm.bias",
        "visual.attn_pool.ln.bias",
    ),
    (
        "vision_model.head.mlp.fc1.weight",
        "visual.attn_pool.mlp.c_fc.weight",
    ),
    (
        "vision_model.head.mlp.fc1.bias",
        "visual.attn_pool.mlp.c_fc.bias",
    ),
    (
        "vision_model.head.mlp.fc2.weight",
        "visual.attn_pool.mlp.c_proj.weight",
    ),
    (
        "vision_model.head.mlp.fc2.bias",
        "visual.attn_pool.mlp.c_proj.bias",
    ),
    ("text_model.head.weight", "text_projection.weight"),
];

/// Maps a SigLIP state dict: SigLIP's own tensors by [`SIGLIP_ONLY`] (and the text head's bias),
/// the rest through the Hugging Face CLIP mapping (blocks with q/k/v packed, embeddings, norms).
fn to_openai(path: &Path, state: StateDict) -> Result<StateDict, CheckpointError> {
    let own: BTreeMap<&str, &str> = SIGLIP_ONLY.into_iter().collect();
    let mut out = StateDict::new();
    let mut shared = StateDict::new();
    for (name, t) in state {
        let name = name
            .strip_prefix("module.")
            .map(str::to_string)
            .unwrap_or(name);
        if let Some(&to) = own.get(name.as_str()) {
            out.insert(to, t);
        } else if name == "text_model.head.bias" {
            out.insert("text_projection.bias", t);
        } else {
            shared.insert(name, t);
        }
    }
    for (name, t) in huggingface::to_openai(path, shared)? {
        out.insert(name, t);
    }
    // The HF logit parameters are `[1]`; a scalar `[]` (older exports) reads the same.
    if let Some(b) = out.get("logit_bias").filter(|b| b.shape().is_empty()) {
        let b: TensorData = b.reshaped(vec![1]);
        out.insert("logit_bias", b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hints_take_siglip_defaults() {
        let h = hints(
            &json!({"model_type": "siglip", "text_config": {"num_attention_heads": 4},
                             "vision_config": {"num_attention_heads": 2}}),
        )
        .unwrap();
        assert_eq!(
            (h.activation, h.layer_norm_eps, h.text_heads, h.vision_heads),
            (Activation::GeluTanh, 1e-6, Some(4), Some(2))
        );
        assert!(!h.causal_text);
        assert_eq!(h.text_pool, TextPool::Last);
        let e = hints(&json!({"text_config": {"hidden_act": "relu"}})).unwrap_err();
        assert!(e.contains("hidden_act"), "{e}");
        let e = hints(&json!({"vision_config": {"vision_use_head": false}})).unwrap_err();
        assert!(e.contains("vision_use_head"), "{e}");
    }
}
