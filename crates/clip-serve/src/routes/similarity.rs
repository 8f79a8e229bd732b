//! `POST /v1/similarity`: the cosine matrix between images and texts (rows images), with the
//! model's logits and per-image probabilities, as `clip similarity --logits --probs` prints.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use clip_tasks::similarity::Similarity;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{check_count, embed, embed_images, Item, Long};
use crate::state::AppState;

/// The body of `POST /v1/similarity`.
#[derive(Deserialize)]
pub struct SimilarityRequest {
    /// Base64 or data-URL images, as strings or `{"image"}` objects: the rows.
    images: Vec<Value>,
    /// Texts: the columns.
    texts: Vec<String>,
}

/// The cosine, logit and probability matrices of the images against the texts.
pub async fn similarity(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<SimilarityRequest>,
) -> Result<Json<Value>, ApiError> {
    check_count(&state, request.images.len() + request.texts.len(), "inputs")?;
    check_count(&state, request.images.len(), "images")?;
    check_count(&state, request.texts.len(), "texts")?;
    let images = embed_images(&state, &request.images).await?;
    let texts = embed(
        &state,
        request.texts.into_iter().map(Item::Text).collect(),
        "texts",
        Long::Truncate,
    )
    .await?;
    let s = Similarity::new(&images, &texts, &state.clip.scoring());
    Ok(Json(
        json!({"model": state.model_name, "cosine": s.cosine, "logits": s.logits, "probs": s.probs}),
    ))
}
