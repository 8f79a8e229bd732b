//! `POST /v1/moderate`: the built-in moderation policy (`clip moderate`'s default) per image.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{check_count, embed_images};
use crate::state::AppState;

/// The body of `POST /v1/moderate`.
#[derive(Deserialize)]
pub struct ModerateRequest {
    /// Base64 or data-URL images, as strings or `{"image"}` objects.
    images: Vec<Value>,
}

/// One verdict of the built-in policy per image, with every category's score.
pub async fn moderate(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<ModerateRequest>,
) -> Result<Json<Value>, ApiError> {
    check_count(&state, request.images.len(), "images")?;
    let embeddings = embed_images(&state, &request.images).await?;
    let moderator = state.moderator().await?;
    let results: Vec<Value> = moderator
        .moderate(&embeddings)
        .into_iter()
        .enumerate()
        .map(|(index, verdict)| {
            let categories: Vec<Value> = verdict
                .categories
                .iter()
                .map(|c| json!({"name": c.name, "score": c.score, "threshold": c.threshold}))
                .collect();
            json!({"index": index, "flagged": verdict.flagged, "categories": categories})
        })
        .collect();
    Ok(Json(
        json!({"policy": moderator.policy().id(), "results": results}),
    ))
}
