//! `POST /v1/classify`: zero-shot classification. Label prompts go through the same batcher as
//! everything else and are ensembled and scored by the task layer, as `clip classify` does (mean
//! of normalised prompt embeddings, renormalised; the model's scoring per image).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use clip_tasks::similarity::ranked;
use clip_tasks::zero_shot::{builtin_templates, ensemble, Classifier, Prompts};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{check_count, embed, embed_images, Item, Long};
use crate::state::AppState;

/// The body of `POST /v1/classify`.
#[derive(Deserialize)]
pub struct ClassifyRequest {
    /// Base64 or data-URL images, as strings or `{"image"}` objects.
    images: Vec<Value>,
    /// The labels to choose between.
    labels: Vec<String>,
    /// A list of templates with `{}` for the label, or a built-in set's name.
    #[serde(default)]
    templates: Option<Templates>,
    /// Labels per image in the answer, best first (all when absent).
    #[serde(default)]
    top_k: Option<usize>,
}

/// `templates` as sent: a name or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Templates {
    /// A built-in set (`imagenet`, `simple`).
    Named(String),
    /// Templates with `{}` for the label.
    List(Vec<String>),
}

/// Each image's label probabilities under the model's scoring, best first.
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
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
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
    let images = embed_images(&state, &request.images).await?;
    let texts = groups
        .iter()
        .flatten()
        .map(|p| Item::Text(p.clone()))
        .collect();
    let prompt_rows = embed(&state, texts, "prompts", Long::Truncate).await?;
    let classifier = Classifier::new(
        prompts.labels().to_vec(),
        ensemble(&groups, &prompt_rows),
        state.clip.scoring(),
    );
    let results: Vec<Value> = classifier
        .probabilities(&images)
        .iter()
        .enumerate()
        .map(|(index, probs)| {
            let scores: Vec<Value> = ranked(probs, request.top_k)
                .into_iter()
                .map(|j| json!({"label": prompts.labels()[j], "prob": probs[j]}))
                .collect();
            json!({"index": index, "scores": scores})
        })
        .collect();
    Ok(Json(json!({"model": state.model_name, "results": results})))
}
