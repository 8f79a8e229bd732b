//! Operational endpoints: liveness, Prometheus metrics, the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// The hand-written OpenAPI 3 description of this API, embedded in the binary.
const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /healthz`: liveness only (open without a token, so it says nothing about the model, its
/// path or the index).
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /v1/info`: the served model, its embedding width, scoring and the index size (behind the
/// token; the search page shows it).
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let scoring = state.clip.scoring();
    Json(json!({
        "model": state.model_name,
        "family": state.clip.family().as_str(),
        "dim": state.clip.embed_dim(),
        "resolution": state.clip.resolution(),
        "context_length": state.clip.context_length(),
        "probabilities": if scoring.is_exclusive() { "softmax" } else { "sigmoid" },
        "index": state.index.as_ref().map(|i| i.current().len()),
    }))
}

/// `GET /v1/models`: the one served model in the shape of OpenAI's list, so clients that ask
/// which models exist (and tools that check before embedding) find it.
pub async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": state.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "clip-rs",
        }],
    }))
}

/// `GET /metrics`: the Prometheus exposition.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.batcher.depth()),
    )
}

/// `GET /openapi.json`: the API description.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Any unknown path: a JSON 404 rather than axum's empty one.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint (see /openapi.json)".into())
}

/// A known path with the wrong method: a JSON 405 rather than axum's empty one.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
