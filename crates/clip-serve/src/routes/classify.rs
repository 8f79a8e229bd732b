//! `POST /v1/classify`: zero-shot classification. Label prompts go through the same batcher as
//! everything else and are ensembled as `clip classify` does (mean of normalised prompt
//! embeddings, renormalised), then each image gets a softmax over the labels.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use clip::similarity::{dot, normalize, softmax};
use clip::zero_shot::{builtin_templates, ranked, Prompts, BUILTIN_TEMPLATE_SETS};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{check_count, embed, Item};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ClassifyRequest {
    images: Vec<Value>,
    labels: Vec<String>,
    /// A list of templates with `{}` for the label, or a built-in set's name.
    #[serde(default)]
    templates: Option<Templates>,
    #[serde(default)]
    top_k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Templates {
    Named(String),
    List(Vec<String>),
}

pub async fn classify(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<ClassifyRequest>,
) -> Result<Json<Value>, ApiError> {
    check_count(&state, request.images.len(), "images")?;
    check_count(&state, request.labels.len(), "labels")?;
    let templates = match request.templates {
        None => Vec::new(),
        Some(Templates::List(list)) => list,
        Some(Templates::Named(name)) => builtin_templates(&name)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown template set {name:?} (built-in: {})",
                    BUILTIN_TEMPLATE_SETS.join(", ")
                ))
            })?
            .iter()
            .map(|t| t.to_string())
            .collect(),
    };
    let prompts =
        Prompts::new(request.labels, templates).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let groups = prompts.groups();
    let n_prompts: usize = groups.iter().map(Vec::len).sum();
    // Prompts are queued at once, so a request may not ask for more than the queue holds.
    let max_prompts = state.limits.queue_capacity;
    if n_prompts > max_prompts {
        return Err(ApiError::BadRequest(format!(
            "{n_prompts} prompts (labels x templates) exceed the limit of {max_prompts}"
        )));
    }
    let images = request
        .images
        .iter()
        .enumerate()
        .map(|(i, v)| Item::parse_image(v, &format!("images[{i}]")));
    let images = embed(&state, images.collect::<Result<_, _>>()?, "images").await?;
    let texts = groups
        .iter()
        .flatten()
        .map(|p| Item::Text(p.clone()))
        .collect();
    let prompt_rows = embed(&state, texts, "prompts").await?;
    let classes = ensemble(&prompt_rows, &groups);
    let scale = state.clip.logit_scale();
    let results: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(index, image)| {
            let logits: Vec<f32> = classes.iter().map(|c| scale * dot(image, c)).collect();
            let probs = softmax(&logits);
            let scores: Vec<Value> = ranked(&probs, request.top_k)
                .into_iter()
                .map(|j| json!({"label": prompts.labels()[j], "prob": probs[j]}))
                .collect();
            json!({"index": index, "scores": scores})
        })
        .collect();
    Ok(Json(json!({"model": state.model_name, "results": results})))
}

/// One class embedding per label: the mean of its prompts' normalised embeddings, renormalised
/// (what `clip::zero_shot::ensemble_embeddings` computes, here over rows the batcher returned).
fn ensemble(rows: &[Vec<f32>], groups: &[Vec<String>]) -> Vec<Vec<f32>> {
    let mut rows = rows.iter();
    groups
        .iter()
        .map(|group| {
            let mut mean = vec![0f32; rows.as_slice().first().map_or(0, Vec::len)];
            for row in rows.by_ref().take(group.len()) {
                mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
            }
            mean.iter_mut().for_each(|m| *m /= group.len() as f32);
            normalize(&mut mean);
            mean
        })
        .collect()
}
