//! `POST /v1/embeddings`, in the shape OpenAI clients send. Embeddings are L2-normalised, as
//! OpenAI's are, so a dot product is the cosine similarity. Both of OpenAI's encodings are
//! answered: `float` (JSON numbers) and `base64` (little-endian float32 bytes, what the official
//! Python client asks for by default).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{check_count, embed, Item, Long};
use crate::state::AppState;

/// How the embeddings are written in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// An array of JSON numbers.
    #[default]
    Float,
    /// Base64 of the little-endian float32 bytes.
    Base64,
}

/// The body of `POST /v1/embeddings`.
#[derive(Deserialize)]
pub struct EmbeddingsRequest {
    // `model` (and any other OpenAI field) is ignored: the server embeds with the model it loaded.
    /// One input or an array of them: texts, data URLs, `{"text"}` or `{"image"}` objects.
    input: Value,
    /// `"float"` (the default) or `"base64"`; anything else is a 400 naming the parameter.
    #[serde(default)]
    encoding_format: Option<Value>,
    /// OpenAI's truncated-embedding width: CLIP embeddings are not trained to be cut (not
    /// Matryoshka), so only the model's own width is accepted.
    #[serde(default)]
    dimensions: Option<Value>,
}

/// Embeds every input (L2-normalised), in order, with OpenAI's response shape; `usage` counts the
/// texts' tokens.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<EmbeddingsRequest>,
) -> Result<Json<Value>, ApiError> {
    let encoding = match &request.encoding_format {
        None | Some(Value::Null) => Encoding::Float,
        Some(v) => serde_json::from_value::<Encoding>(v.clone()).map_err(|_| {
            ApiError::BadRequest(format!(
                "encoding_format {v} is not supported (use \"float\" or \"base64\")"
            ))
        })?,
    };
    let dim = state.clip.embed_dim();
    match &request.dimensions {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64() == Some(dim as u64) => {}
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "dimensions {v} is not supported: this model's embeddings have {dim} dimensions \
                 and cannot be shortened (CLIP is not trained for truncated embeddings); omit \
                 dimensions or pass {dim}"
            )))
        }
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
    let rows = embed(&state, items, "input", Long::Refuse).await?;
    let data: Vec<Value> = rows
        .rows()
        .enumerate()
        .map(|(index, embedding)| {
            let embedding = match encoding {
                Encoding::Float => json!(embedding),
                Encoding::Base64 => {
                    let bytes: Vec<u8> = embedding.iter().flat_map(|v| v.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            json!({"object": "embedding", "embedding": embedding, "index": index})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": state.model_name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
