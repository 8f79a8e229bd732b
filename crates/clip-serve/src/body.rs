//! JSON request bodies with JSON errors. axum's own `Json` extractor answers malformed bodies in
//! plain text; this one checks the content type (415 unless JSON: a browser's cross-site
//! `text/plain` POST, which needs no CORS preflight, never reaches a handler), refuses an
//! announced `Content-Length` over the limit before reading a byte (413), reads the body within
//! the body timeout (408), and reports every failure as an [`ApiError`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body deserialized into `T`; any failure is a JSON 4xx.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let headers = request.headers();
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "the request body must be JSON: send Content-Type: application/json".into(),
            ));
        }
        let limit = state.limits.max_body_bytes;
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::TooLarge(format!(
                "request body of {} bytes exceeds the limit of {limit} bytes",
                announced.unwrap_or_default()
            )));
        }
        let timeout = state.limits.body_timeout;
        let read = Bytes::from_request(request, state);
        let bytes = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| ApiError::BodyTimeout(timeout.as_secs()))?
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(format!("request body exceeds the limit of {limit} bytes"))
                } else {
                    ApiError::BadRequest(format!("cannot read the request body: {e}"))
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}
