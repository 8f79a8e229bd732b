//! `POST /v1/embeddings`, in the shape OpenAI clients send. Embeddings are L2-normalised, as
//! OpenAI's are, so a dot product is the cosine similarity.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{check_count, embed, Item};
use crate::state::AppState;

/// The body of `POST /v1/embeddings`.
#[derive(Deserialize)]
pub struct EmbeddingsRequest {
    // `model` (and any other OpenAI field) is ignored: the server embeds with the model it loaded.
    /// One input or an array of them: texts, data URLs, `{"text"}` or `{"image"}` objects.
    input: Value,
    /// Only `"float"` is supported (the default).
    #[serde(default)]
    encoding_format: Option<String>,
}

/// Embeds every input (L2-normalised), in order, with OpenAI's response shape; `usage` counts the
/// texts' tokens.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<EmbeddingsRequest>,
) -> Result<Json<Value>, ApiError> {
    if let Some(format) = request.encoding_format.as_deref().filter(|f| *f != "float") {
        return Err(ApiError::BadRequest(format!(
            "encoding_format {format:?} is not supported (use \"float\")"
        )));
    }
    let values = match request.input {
        Value::Array(values) => values,
        single => vec![single],
    };
    check_count(&state, values.len(), "inputs")?;
    let items = values
        .iter()
        .enumerate()
        .map(|(i, v)| Item::parse(v, &format!("input[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let tokens: usize = items
        .iter()
        .map(|item| match item {
            Item::Text(t) => state
                .clip
                .tokenize(t, clip::tokenizer::Overflow::Truncate)
                .map_or(0, |ids| ids.iter().filter(|&&id| id != 0).count()),
            Item::Image(_) => 0,
        })
        .sum();
    let rows = embed(&state, items, "input").await?;
    let data: Vec<Value> = rows
        .rows()
        .enumerate()
        .map(|(index, embedding)| json!({"object": "embedding", "embedding": embedding, "index": index}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": state.model_name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
