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

/// `GET /healthz`: liveness, with the served model and the index size (open without a token).
pub async fn healthz(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "model": state.model_name,
        "dim": state.clip.embed_dim(),
        "index": state.index.as_ref().map(|i| i.len()),
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
