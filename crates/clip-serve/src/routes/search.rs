//! `GET|POST /v1/search` over the photo index and `GET /v1/images/{id}` for its thumbnails.
//! A query is a text, an image, or both (their normalised sum, as `clip search` combines them).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use clip::image::{probe, read_file, DecodeOptions};
use clip_index::query::combine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::inputs::{embed, Item, Long};
use crate::state::AppState;
use crate::thumbnail::thumbnail_png;

/// Results when the request does not say.
const DEFAULT_K: usize = 12;

/// A search, as a query string (GET) or a JSON body (POST).
#[derive(Deserialize)]
pub struct SearchRequest {
    /// Text query (`q` in the GET form).
    #[serde(alias = "q")]
    text: Option<String>,
    /// Image query: base64 or a data URL (POST only).
    image: Option<String>,
    /// How many results, at most (`DEFAULT_K` when absent).
    k: Option<usize>,
    /// Lowest cosine a result may have (none when absent).
    threshold: Option<f32>,
}

/// `GET /v1/search?q=...`: a malformed query string is a JSON 400 like any other.
pub async fn search_get(
    State(state): State<Arc<AppState>>,
    query: Result<Query<SearchRequest>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(request) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    search(state, request).await
}

/// `POST /v1/search`: a text, an image, or both.
pub async fn search_post(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<SearchRequest>,
) -> Result<Json<Value>, ApiError> {
    search(state, request).await
}

/// The `k` indexed images nearest to the combined query, with their paths and thumbnail URLs.
async fn search(state: Arc<AppState>, request: SearchRequest) -> Result<Json<Value>, ApiError> {
    let index = state.index()?;
    let k = request.k.unwrap_or(DEFAULT_K);
    if k == 0 || k > state.limits.max_inputs {
        return Err(ApiError::BadRequest(format!(
            "k must be between 1 and {}",
            state.limits.max_inputs
        )));
    }
    let items: Vec<Item> = request
        .text
        .into_iter()
        .map(Item::Text)
        .chain(request.image.map(Item::Image))
        .collect();
    if items.is_empty() {
        return Err(ApiError::BadRequest(
            "nothing to search for: give a text (q), an image, or both".into(),
        ));
    }
    let rows = embed(&state, items, "query", Long::Truncate).await?;
    let parts: Vec<(f32, &[f32])> = rows.rows().map(|r| (1.0, r)).collect();
    let query =
        combine(&parts).ok_or_else(|| ApiError::BadRequest("the query parts cancel out".into()))?;
    let threshold = request.threshold.unwrap_or(f32::NEG_INFINITY);
    let found = index
        .search(&query, k, threshold)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let results: Vec<Value> = found
        .into_iter()
        .map(|f| {
            json!({
                "id": f.id,
                "score": f.score,
                "path": f.paths.first(),
                "paths": f.paths,
                "thumbnail": format!("/v1/images/{}", f.id),
            })
        })
        .collect();
    Ok(Json(json!({"model": state.model_name, "results": results})))
}

/// The thumbnail of an indexed image, by content id. Ids are content hashes, so the response
/// never changes for an id and is served `immutable`: the file is read again and its bytes must
/// still hash to the id (a file changed or swapped since it was indexed is a 404, never another
/// image or a message quoting its bytes). Decoding holds its share of the decode budget.
pub async fn image(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let index = state.index()?;
    let (hash, paths) = index
        .files_of(&id)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("no indexed image with id {id:?}")))?;
    let opts = DecodeOptions {
        max_pixels: state.limits.max_pixels,
        ..DecodeOptions::default()
    };
    let current = tokio::task::spawn_blocking(move || {
        paths.into_iter().find_map(|path| {
            let bytes = read_file(std::path::Path::new(&path), &path, opts.max_file_bytes).ok()?;
            (*blake3::hash(&bytes).as_bytes() == hash).then_some((path, bytes))
        })
    })
    .await
    .map_err(|_| ApiError::Internal("thumbnail failed".into()))?
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "image {id}: no indexed file holds this content any more (changed or removed since it was indexed)"
        ))
    })?;
    let (path, bytes) = current;
    let (w, h) = probe(&bytes, &path, &opts).map_err(|_| {
        ApiError::NotFound(format!(
            "image {id}: the indexed file is not a readable image"
        ))
    })?;
    let share = tokio::time::timeout(
        state.limits.request_timeout,
        state.decode_budget.acquire(u64::from(w) * u64::from(h)),
    )
    .await
    .map_err(|_| ApiError::Busy("the server is decoding too many images: retry later".into()))??;
    let png = tokio::task::spawn_blocking(move || {
        let png = thumbnail_png(&bytes, &path, &opts);
        drop(share);
        png
    })
    .await
    .map_err(|_| ApiError::Internal("thumbnail failed".into()))?
    .map_err(|_| {
        ApiError::NotFound(format!(
            "image {id}: the indexed file is not a readable image"
        ))
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        png,
    ))
}
