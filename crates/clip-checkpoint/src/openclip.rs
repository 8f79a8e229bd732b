//! OpenCLIP folders as `open_clip.push_to_hf_hub` writes them: `open_clip_config.json`
//! (`{"model_cfg": {...}, "preprocess_cfg": {...}}`) plus a weights file. The weights carry OpenAI
//! names (the shared name mapping handles the variants); `model_cfg` says what they cannot
//! (activation, heads, pooling, causal mask) and `preprocess_cfg` how images are prepared.
//!
//! Every `model_cfg` option of the ViT / ModifiedResNet towers and the standard text tower is
//! either honoured or refused by name: a silently ignored option would give other numbers than
//! `open_clip.create_model_and_transforms` does.

use std::path::Path;

use serde_json::{Map, Value};

use crate::format::{find_weights, read_file, read_json, Loaded};
use crate::{preprocessing, Activation, ArchHints, CheckpointError, CheckpointFormat, Family};
use crate::{StateDict, TensorData, TextPool, TokenizerSource, VisionPool};

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
    let config_path = dir.join(CONFIG);
    let config = read_json(&config_path)?;
    let invalid = |e: String| CheckpointError::invalid(&config_path, e);
    let (hints, image_size) = hints(&config).map_err(invalid)?;
    let empty = Map::new();
    let preprocess_cfg = match config.get("preprocess_cfg") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(other) => return Err(invalid(format!("preprocess_cfg {other} is not an object"))),
    };
    let preprocess = preprocessing::open_clip(preprocess_cfg, image_size).map_err(invalid)?;
    let weights = find_weights(dir, &WEIGHTS, "OpenCLIP")?;
    let state = fold_layer_scale(&weights, read_file(&weights)?.1)?;
    Ok(Loaded {
        format: CheckpointFormat::OpenClip,
        state,
        hints,
        family: Family::Clip,
        preprocess: Some(preprocess),
        tokenizer: TokenizerSource::Clip,
    })
}

/// How one `model_cfg` option is treated.
enum Rule {
    /// Read by [`hints`], or told by the weights' shapes.
    Used,
    /// Without effect at inference (dropout rates, initialisation, dtype casts).
    Inert,
    /// Supported only at this value (or absent / null).
    Only(Value),
}

fn rule_top(key: &str) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "embed_dim" | "quick_gelu" | "vision_cfg" | "text_cfg" => Used,
        // CustomTextCLIP keeps the text tower under `text.`: the name mapping lifts it.
        "custom_text" => Used,
        "init_logit_scale" | "init_logit_bias" | "cast_dtype" => Inert,
        _ => return None,
    })
}

fn rule_vision(key: &str) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "layers" | "width" | "head_width" | "mlp_ratio" | "patch_size" | "image_size" => Used,
        "ls_init_value" | "no_ln_pre" | "final_ln_after_pool" | "pool_type" => Used,
        "patch_dropout" | "timm_model_pretrained" | "timm_pool" | "timm_proj" => Inert,
        "timm_proj_bias" | "timm_drop" | "timm_drop_path" => Inert,
        "attn_pooler_queries" | "attn_pooler_heads" => Inert,
        "timm_model_name" => Only(Value::Null),
        "attentional_pool" | "output_tokens" => Only(Value::Bool(false)),
        "pos_embed_type" => Only(Value::from("learnable")),
        "act_kwargs" | "norm_kwargs" => Only(Value::Object(Map::new())),
        _ => return None,
    })
}

fn rule_text(key: &str) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "context_length" | "vocab_size" | "width" | "heads" | "layers" | "mlp_ratio" => Used,
        "ls_init_value" | "no_causal_mask" | "final_ln_after_pool" | "pool_type" => Used,
        "proj_bias" => Used,
        "hf_model_pretrained" | "hf_proj_type" | "hf_pooler_type" => Inert,
        "hf_model_name" | "hf_tokenizer_name" => Only(Value::Null),
        "pad_id" => Only(Value::from(0)),
        "embed_cls" | "output_tokens" => Only(Value::Bool(false)),
        "proj_type" => Only(Value::from("linear")),
        "tokenizer_kwargs" | "act_kwargs" | "norm_kwargs" => Only(Value::Object(Map::new())),
        _ => return None,
    })
}

/// Checks every key of `cfg` against `rule`; `path` names the object in errors.
fn check(
    cfg: &Map<String, Value>,
    path: &str,
    rule: fn(&str) -> Option<Rule>,
) -> Result<(), String> {
    for (key, v) in cfg {
        match rule(key) {
            None => {
                return Err(format!(
                    "{path}{key} is an open_clip option clip-rs does not implement"
                ))
            }
            Some(Rule::Only(want)) if !v.is_null() && *v != want => {
                return Err(format!("{path}{key} = {v} is not supported (only {want})"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The hints `model_cfg` gives, and the tower's `image_size` (for `preprocess_cfg`). Absent keys
/// take open_clip's `CLIPVisionCfg` / `CLIPTextCfg` defaults (width 768, head_width 64, text
/// heads 8, `pool_type` "tok" and "argmax", causal text); `quick_gelu: true` means QuickGELU,
/// absent or false `nn.GELU`.
fn hints(config: &Value) -> Result<(ArchHints, Option<u32>), String> {
    let model = config
        .get("model_cfg")
        .and_then(Value::as_object)
        .ok_or("no model_cfg object")?;
    check(model, "model_cfg.", rule_top)?;
    let empty = Map::new();
    let tower = |name: &str| match model.get(name) {
        None | Some(Value::Null) => Ok(&empty),
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(format!("model_cfg.{name} {other} is not an object")),
    };
    let (vision, text) = (tower("vision_cfg")?, tower("text_cfg")?);
    if vision.get("timm_model_name").is_some_and(|v| !v.is_null())
        || text.get("hf_model_name").is_some_and(|v| !v.is_null())
    {
        return Err(
            "OpenCLIP towers from timm or Hugging Face models are not supported \
             (model_cfg names timm_model_name or hf_model_name)"
                .into(),
        );
    }
    check(vision, "model_cfg.vision_cfg.", rule_vision)?;
    check(text, "model_cfg.text_cfg.", rule_text)?;
    let activation = match model.get("quick_gelu") {
        Some(Value::Bool(true)) => Activation::QuickGelu,
        None | Some(Value::Bool(false)) | Some(Value::Null) => Activation::Gelu,
        Some(other) => return Err(format!("model_cfg.quick_gelu {other} is not a boolean")),
    };
    let positive = |cfg: &Map<String, Value>, key: &str, default: usize| match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or(format!("bad {key} {v}")),
    };
    let flag = |cfg: &Map<String, Value>, key: &str| match cfg.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("{key} {v} is not a boolean")),
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
    let vision_pool = match vision
        .get("pool_type")
        .and_then(|v| v.as_str().map(str::to_owned))
    {
        None => VisionPool::ClassToken,
        Some(t) if t == "tok" => VisionPool::ClassToken,
        Some(t) if t == "avg" => VisionPool::Average,
        Some(t) => {
            return Err(format!(
                "model_cfg.vision_cfg.pool_type {t:?} is not supported (tok or avg)"
            ))
        }
    };
    let text_pool = match text
        .get("pool_type")
        .and_then(|v| v.as_str().map(str::to_owned))
    {
        None => TextPool::Argmax,
        Some(t) if t == "argmax" => TextPool::Argmax,
        Some(t) if t == "first" => TextPool::First,
        Some(t) if t == "last" => TextPool::Last,
        Some(t) => {
            return Err(format!(
                "model_cfg.text_cfg.pool_type {t:?} is not supported (argmax, first or last)"
            ))
        }
    };
    let image_size = match vision.get("image_size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|&n| (1..=8192).contains(&n))
                .map(|n| n as u32)
                .ok_or(format!(
                    "model_cfg.vision_cfg.image_size {v} is not supported (a square size in pixels)"
                ))?,
        ),
    };
    let hints = ArchHints {
        activation,
        vision_heads: Some(vision_heads),
        text_heads: Some(positive(text, "heads", 8)?),
        layer_norm_eps: 1e-5,
        causal_text: !flag(text, "no_causal_mask")?,
        text_pool,
        vision_pool,
        vision_ln_after_pool: flag(vision, "final_ln_after_pool")?,
    };
    Ok((hints, image_size))
}

/// open_clip's LayerScale (`ls_init_value`): `x + gamma * f(x)` per block, with `gamma` stored as
/// `<block>.ls_1.gamma` (attention) and `<block>.ls_2.gamma` (MLP). Scaling the rows of the
/// branch's last linear layer (weight and bias) by `gamma` gives the same function, so the model
/// needs no layer of its own for it.
fn fold_layer_scale(path: &Path, mut state: StateDict) -> Result<StateDict, CheckpointError> {
    let gammas: Vec<String> = state
        .names()
        .filter(|n| n.ends_with(".ls_1.gamma") || n.ends_with(".ls_2.gamma"))
        .map(str::to_owned)
        .collect();
    for name in gammas {
        let gamma = state.remove(&name).expect("listed above").to_f32_vec();
        let (block, which) = name
            .strip_suffix(".gamma")
            .and_then(|s| s.rsplit_once('.'))
            .expect("suffix checked above");
        let target = if which == "ls_1" {
            "attn.out_proj"
        } else {
            "mlp.c_proj"
        };
        for part in ["weight", "bias"] {
            let tname = format!("{block}.{target}.{part}");
            let t = state.get(&tname).ok_or_else(|| {
                CheckpointError::tensor(path, &name, format!("LayerScale without {tname}"))
            })?;
            let shape = t.shape().to_vec();
            if shape.first() != Some(&gamma.len()) {
                return Err(CheckpointError::tensor(
                    path,
                    &name,
                    format!(
                        "{} values do not match {tname} of shape {shape:?}",
                        gamma.len()
                    ),
                ));
            }
            let mut v = t.to_f32_vec();
            let row = v.len() / gamma.len();
            for (chunk, g) in v.chunks_mut(row).zip(&gamma) {
                chunk.iter_mut().for_each(|x| *x *= g);
            }
            state.insert(tname, TensorData::from_f32(shape, &v));
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hints_follow_open_clip() {
        let vit = json!({"model_cfg": {"quick_gelu": true, "vision_cfg": {"width": 1024, "head_width": 64, "layers": 24, "image_size": 256},
                                       "text_cfg": {"heads": 12}}});
        let (h, size) = hints(&vit).unwrap();
        assert_eq!(
            (h.activation, h.vision_heads, h.text_heads, size),
            (Activation::QuickGelu, Some(16), Some(12), Some(256))
        );
        assert!(h.causal_text);
        let rn = json!({"model_cfg": {"vision_cfg": {"width": 64, "layers": [3, 4, 6, 3]}, "text_cfg": {}}});
        let (h, _) = hints(&rn).unwrap();
        assert_eq!(
            (h.activation, h.vision_heads, h.text_heads),
            (Activation::Gelu, Some(32), Some(8))
        );
        let opts = json!({"model_cfg": {"vision_cfg": {"pool_type": "avg", "final_ln_after_pool": true},
                                        "text_cfg": {"no_causal_mask": true, "pool_type": "last", "proj_bias": true}}});
        let (h, _) = hints(&opts).unwrap();
        assert_eq!(
            (
                h.vision_pool,
                h.text_pool,
                h.causal_text,
                h.vision_ln_after_pool
            ),
            (VisionPool::Average, TextPool::Last, false, true)
        );
    }

    #[test]
    fn options_we_do_not_implement_are_named() {
        for (cfg, word) in [
            (
                json!({"model_cfg": {"vision_cfg": {"timm_model_name": "vit"}}}),
                "timm",
            ),
            (
                json!({"model_cfg": {"vision_cfg": {"head_width": 0}}}),
                "head_width",
            ),
            (json!({}), "model_cfg"),
            (
                json!({"model_cfg": {"vision_cfg": {"attentional_pool": true}}}),
                "attentional_pool",
            ),
            (
                json!({"model_cfg": {"vision_cfg": {"frobnicate": 1}}}),
                "vision_cfg.frobnicate",
            ),
            (
                json!({"model_cfg": {"text_cfg": {"pool_type": "eos"}}}),
                "pool_type",
            ),
            (
                json!({"model_cfg": {"text_cfg": {"embed_cls": true}}}),
                "embed_cls",
            ),
            (
                json!({"model_cfg": {"multimodal_cfg": {}}}),
                "multimodal_cfg",
            ),
        ] {
            let e = hints(&cfg).unwrap_err();
            assert!(e.contains(word), "{cfg}: {e}");
        }
    }

    #[test]
    fn layer_scale_folds_into_the_branch_output() {
        let mut state = StateDict::new();
        state.insert("b.0.ls_1.gamma", TensorData::from_f32(vec![2], &[2.0, 3.0]));
        state.insert(
            "b.0.attn.out_proj.weight",
            TensorData::from_f32(vec![2, 2], &[1.0, 1.0, 1.0, 1.0]),
        );
        state.insert(
            "b.0.attn.out_proj.bias",
            TensorData::from_f32(vec![2], &[1.0, 1.0]),
        );
        let out = fold_layer_scale(Path::new("m"), state).unwrap();
        assert!(!out.contains("b.0.ls_1.gamma"));
        assert_eq!(
            out.get("b.0.attn.out_proj.weight").unwrap().to_f32_vec(),
            [2.0, 2.0, 3.0, 3.0]
        );
        assert_eq!(
            out.get("b.0.attn.out_proj.bias").unwrap().to_f32_vec(),
            [2.0, 3.0]
        );
        let mut lone = StateDict::new();
        lone.insert("b.0.ls_2.gamma", TensorData::from_f32(vec![2], &[2.0, 3.0]));
        assert!(fold_layer_scale(Path::new("m"), lone)
            .unwrap_err()
            .to_string()
            .contains("mlp.c_proj"));
    }
}
