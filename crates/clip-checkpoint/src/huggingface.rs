//! Hugging Face `CLIPModel` folders: `config.json` plus `model.safetensors` or `pytorch_model.bin`
//! (or their sharded `*.index.json` forms), and the name mapping from HF's layout to OpenAI's
//! (`docs/REFERENCE_NOTES.md`, "OpenAI -> Hugging Face name mapping"): separate q/k/v linears are
//! packed back into `in_proj_*`, and the `nn.Linear` projections `[embed, width]` are transposed
//! to `[width, embed]`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::format::{read_file, read_folder, read_json, Loaded};
use crate::{Activation, ArchHints, CheckpointError, CheckpointFormat, StateDict, TensorData};

/// Weight files transformers looks for, in its order of preference.
pub(crate) const WEIGHTS: [&str; 4] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
];

/// Loads a Hugging Face folder; `config.json` must exist (the caller checked).
pub(crate) fn load(dir: &Path) -> Result<Loaded, CheckpointError> {
    let (hints, weights) = read_folder(dir, "config.json", &WEIGHTS, "Hugging Face", hints)?;
    let state = if weights.extension().is_some_and(|e| e == "json") {
        read_sharded(dir, &weights)?
    } else {
        read_file(&weights)?.1
    };
    Ok(Loaded::clip(CheckpointFormat::HuggingFace, state, hints))
}

/// A sharded checkpoint: `{"weight_map": {tensor: shard file}}`; every shard is read and merged.
fn read_sharded(dir: &Path, index_path: &Path) -> Result<StateDict, CheckpointError> {
    let index = read_json(index_path)?;
    let bad = |reason: &str| CheckpointError::invalid(index_path, reason);
    let map = index
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no weight_map"))?;
    let mut shards: Vec<&str> = map
        .values()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| bad("weight_map values must be file names"))
        })
        .collect::<Result<_, _>>()?;
    shards.sort_unstable();
    shards.dedup();
    let mut state = StateDict::new();
    for shard in shards {
        // shard names are plain file names beside the index; never a path out of the folder
        if Path::new(shard).file_name().and_then(|f| f.to_str()) != Some(shard) {
            return Err(bad(&format!("shard {shard:?} is not a file name")));
        }
        state.extend(read_file(&dir.join(shard))?.1);
    }
    Ok(state)
}

/// Activation and head counts from `config.json`, with transformers' defaults for absent keys
/// (`CLIPTextConfig`: 8 heads, `CLIPVisionConfig`: 12 heads, both `quick_gelu`); old configs'
/// `text_config_dict`/`vision_config_dict` override as transformers does.
fn hints(config: &Value) -> Result<ArchHints, String> {
    if let Some(kind) = config.get("model_type").and_then(Value::as_str) {
        if kind != "clip" {
            return Err(format!("model_type {kind:?} is not a CLIP model"));
        }
    }
    let tower = |name: &str| -> Map<String, Value> {
        let mut merged = config
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(overrides) = config
            .get(format!("{name}_dict"))
            .and_then(Value::as_object)
        {
            merged.extend(overrides.clone());
        }
        merged
    };
    let (text, vision) = (tower("text_config"), tower("vision_config"));
    let activation = |cfg: &Map<String, Value>| match cfg.get("hidden_act") {
        None => Ok(Activation::QuickGelu),
        Some(v) => v
            .as_str()
            .and_then(Activation::from_hf)
            .ok_or(format!("unsupported hidden_act {v}")),
    };
    let (text_act, vision_act) = (activation(&text)?, activation(&vision)?);
    if text_act != vision_act {
        return Err(format!(
            "text hidden_act {text_act:?} differs from vision hidden_act {vision_act:?}"
        ));
    }
    let heads = |cfg: &Map<String, Value>, default: usize| match cfg.get("num_attention_heads") {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|&h| h > 0)
            .map(|h| h as usize)
            .ok_or(format!("bad num_attention_heads {v}")),
    };
    let eps = |cfg: &Map<String, Value>| match cfg.get("layer_norm_eps") {
        None => Ok(1e-5),
        Some(v) => v
            .as_f64()
            .filter(|e| e.is_finite() && *e > 0.0)
            .ok_or(format!("bad layer_norm_eps {v}")),
    };
    let layer_norm_eps = eps(&text)?;
    if eps(&vision)? != layer_norm_eps {
        return Err("text and vision towers use different layer_norm_eps".into());
    }
    Ok(ArchHints {
        activation: text_act,
        vision_heads: Some(heads(&vision, 12)?),
        text_heads: Some(heads(&text, 8)?),
        layer_norm_eps,
        ..ArchHints::default()
    })
}

/// Whether a name is in Hugging Face's layout (then the whole state dict is mapped).
pub(crate) fn is_hf_name(name: &str) -> bool {
    name.starts_with("text_model.") || name.starts_with("vision_model.")
}

/// What becomes of one Hugging Face tensor.
#[derive(Debug, PartialEq)]
enum Rename {
    Copy(String),
    Transpose(&'static str),
    /// Part `index` (q = 0, k = 1, v = 2) of the packed OpenAI tensor.
    Packed(String, usize),
    Drop,
}

const FIXED: [(&str, &str); 12] = [
    ("logit_scale", "logit_scale"),
    (
        "text_model.embeddings.token_embedding.weight",
        "token_embedding.weight",
    ),
    (
        "text_model.embeddings.position_embedding.weight",
        "positional_embedding",
    ),
    ("text_model.final_layer_norm.weight", "ln_final.weight"),
    ("text_model.final_layer_norm.bias", "ln_final.bias"),
    (
        "vision_model.embeddings.class_embedding",
        "visual.class_embedding",
    ),
    (
        "vision_model.embeddings.patch_embedding.weight",
        "visual.conv1.weight",
    ),
    (
        "vision_model.embeddings.position_embedding.weight",
        "visual.positional_embedding",
    ),
    ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
    ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
    (
        "vision_model.post_layernorm.weight",
        "visual.ln_post.weight",
    ),
    ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
];

const TOWERS: [(&str, &str); 2] = [
    ("text_model.encoder.layers.", "transformer.resblocks."),
    (
        "vision_model.encoder.layers.",
        "visual.transformer.resblocks.",
    ),
];

const LAYER: [(&str, &str); 5] = [
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
    ("self_attn.out_proj.", "attn.out_proj."),
];

fn rename(name: &str) -> Option<Rename> {
    if let Some(&(_, openai)) = FIXED.iter().find(|(hf, _)| *hf == name) {
        return Some(Rename::Copy(openai.into()));
    }
    match name {
        "text_projection.weight" => return Some(Rename::Transpose("text_projection")),
        "visual_projection.weight" => return Some(Rename::Transpose("visual.proj")),
        "text_model.embeddings.position_ids" | "vision_model.embeddings.position_ids" => {
            return Some(Rename::Drop)
        }
        _ => {}
    }
    let (layers, openai) = TOWERS
        .iter()
        .find_map(|(hf, oa)| Some((name.strip_prefix(hf)?, *oa)))?;
    let (index, rest) = layers.split_once('.')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let block = format!("{openai}{index}.");
    for (part, proj) in ["q_proj.", "k_proj.", "v_proj."].iter().enumerate() {
        if let Some(kind @ ("weight" | "bias")) = rest
            .strip_prefix("self_attn.")
            .and_then(|r| r.strip_prefix(proj))
        {
            return Some(Rename::Packed(format!("{block}attn.in_proj_{kind}"), part));
        }
    }
    LAYER.iter().find_map(|(hf, oa)| {
        Some(Rename::Copy(format!(
            "{block}{oa}{}",
            rest.strip_prefix(hf)?
        )))
    })
}

/// Maps a Hugging Face `CLIPModel` state dict to OpenAI names; an unknown name is an error rather
/// than a silently ignored weight.
pub(crate) fn to_openai(path: &Path, hf: StateDict) -> Result<StateDict, CheckpointError> {
    let mut out = StateDict::new();
    let mut packed: BTreeMap<String, [Option<TensorData>; 3]> = BTreeMap::new();
    for (name, t) in hf {
        let err = |reason: &str| CheckpointError::tensor(path, &name, reason);
        match rename(&name)
            .ok_or_else(|| err("unexpected tensor in a Hugging Face CLIP checkpoint"))?
        {
            Rename::Copy(openai) => out.insert(openai, t),
            Rename::Transpose(openai) => out.insert(
                openai,
                t.transposed().ok_or_else(|| err("projection is not 2-D"))?,
            ),
            Rename::Packed(openai, part) => packed.entry(openai).or_default()[part] = Some(t),
            Rename::Drop => {}
        }
    }
    for (openai, parts) in packed {
        let err = |reason: &str| CheckpointError::tensor(path, &openai, reason);
        let [Some(q), Some(k), Some(v)] = &parts else {
            return Err(err(
                "needs all of the Hugging Face q_proj, k_proj and v_proj tensors",
            ));
        };
        out.insert(
            openai.clone(),
            TensorData::concat_rows(&[q, k, v])
                .ok_or_else(|| err("q/k/v projections differ in dtype or shape"))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], start: f32) -> TensorData {
        let n: usize = shape.iter().product();
        TensorData::from_f32(
            shape.to_vec(),
            &(0..n).map(|i| start + i as f32).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn renames_follow_the_notes_table() {
        let copy = |s: &str| Some(Rename::Copy(s.into()));
        assert_eq!(
            rename("vision_model.pre_layrnorm.bias"),
            copy("visual.ln_pre.bias")
        );
        assert_eq!(
            rename("text_model.encoder.layers.11.mlp.fc2.weight"),
            copy("transformer.resblocks.11.mlp.c_proj.weight")
        );
        assert_eq!(
            rename("vision_model.encoder.layers.3.layer_norm1.weight"),
            copy("visual.transformer.resblocks.3.ln_1.weight")
        );
        assert_eq!(
            rename("vision_model.encoder.layers.0.self_attn.out_proj.bias"),
            copy("visual.transformer.resblocks.0.attn.out_proj.bias")
        );
        assert_eq!(
            rename("text_model.encoder.layers.2.self_attn.v_proj.bias"),
            Some(Rename::Packed(
                "transformer.resblocks.2.attn.in_proj_bias".into(),
                2
            ))
        );
        assert_eq!(
            rename("visual_projection.weight"),
            Some(Rename::Transpose("visual.proj"))
        );
        assert_eq!(
            rename("text_model.embeddings.position_ids"),
            Some(Rename::Drop)
        );
        assert_eq!(rename("text_model.encoder.layers.x.mlp.fc1.weight"), None);
        assert_eq!(
            rename("text_model.encoder.layers.0.self_attn.q_proj.scale"),
            None
        );
        assert_eq!(rename("vision_model.head.weight"), None);
    }

    #[test]
    fn qkv_are_packed_in_order_and_projections_transposed() {
        let mut hf = StateDict::new();
        let p = "text_model.encoder.layers.0.self_attn.";
        hf.insert(format!("{p}k_proj.weight"), t(&[1, 2], 10.0));
        hf.insert(format!("{p}q_proj.weight"), t(&[1, 2], 0.0));
        hf.insert(format!("{p}v_proj.weight"), t(&[1, 2], 20.0));
        hf.insert("text_projection.weight", t(&[2, 3], 0.0));
        let out = to_openai(Path::new("m"), hf).unwrap();
        let packed = out
            .get("transformer.resblocks.0.attn.in_proj_weight")
            .unwrap();
        assert_eq!(packed.shape(), [3, 2]);
        assert_eq!(packed.to_f32_vec(), [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
        let proj = out.get("text_projection").unwrap();
        assert_eq!(proj.shape(), [3, 2]);
        assert_eq!(proj.to_f32_vec(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn incomplete_qkv_and_unknown_names_are_errors() {
        let mut hf = StateDict::new();
        hf.insert(
            "vision_model.encoder.layers.0.self_attn.q_proj.bias",
            t(&[2], 0.0),
        );
        let err = to_openai(Path::new("m"), hf).unwrap_err().to_string();
        assert!(
            err.contains("visual.transformer.resblocks.0.attn.in_proj_bias")
                && err.contains("k_proj"),
            "{err}"
        );
        let mut hf = StateDict::new();
        hf.insert("vision_model.extra", t(&[2], 0.0));
        assert!(to_openai(Path::new("m"), hf)
            .unwrap_err()
            .to_string()
            .contains("vision_model.extra"));
    }

    #[test]
    fn hints_use_transformers_defaults() {
        let cfg = serde_json::json!({"model_type": "clip", "text_config": {"num_attention_heads": 1}, "vision_config": {}});
        assert_eq!(
            hints(&cfg).unwrap(),
            ArchHints {
                activation: Activation::QuickGelu,
                vision_heads: Some(12),
                text_heads: Some(1),
                ..ArchHints::default()
            }
        );
        let cfg = serde_json::json!({"text_config": {"hidden_act": "gelu"}, "vision_config": {"hidden_act": "gelu"},
                                     "vision_config_dict": {"num_attention_heads": 16}});
        assert_eq!(
            hints(&cfg).unwrap(),
            ArchHints {
                activation: Activation::Gelu,
                vision_heads: Some(16),
                text_heads: Some(8),
                ..ArchHints::default()
            }
        );
        assert!(
            hints(&serde_json::json!({"text_config": {"hidden_act": "gelu"}}))
                .unwrap_err()
                .contains("differs")
        );
        assert!(
            hints(&serde_json::json!({"text_config": {"hidden_act": "relu"}}))
                .unwrap_err()
                .contains("relu")
        );
        assert!(hints(&serde_json::json!({"model_type": "siglip"}))
            .unwrap_err()
            .contains("siglip"));
    }
}
