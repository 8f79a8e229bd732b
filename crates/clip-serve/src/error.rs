//! The one error type every handler returns. Each variant maps to an HTTP status and an
//! OpenAI-style body `{"error": {"message", "type"}}`, so clients get a JSON reason for every
//! refusal and nothing a client sends can surface as a crash.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why a request was refused or failed; the response's status and JSON body come from it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or names something invalid (bad JSON, base64, image, text).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// No such endpoint, no index to search, or no indexed image with that id.
    #[error("{0}")]
    NotFound(String),
    /// The endpoint exists but not for this method.
    #[error("method not allowed on this endpoint (see /openapi.json)")]
    MethodNotAllowed,
    /// The body exceeds the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The model queue is full: the client should retry later.
    #[error("the model queue is full ({0} inputs waiting): retry later")]
    QueueFull(usize),
    /// The request waited longer than the per-request timeout.
    #[error("the request took longer than {0} ms")]
    Timeout(u128),
    /// The server is too busy (decoding) to take the request in time: retry later.
    #[error("{0}")]
    Busy(String),
    /// The body's content type is not JSON (browsers send text/plain without a CORS preflight:
    /// refusing it keeps other web pages from driving the server).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client did not send its body within the body timeout.
    #[error("the request body was not received within {0} s")]
    BodyTimeout(u64),
    /// The `Host` header names a host this server does not answer for (DNS rebinding).
    #[error("host {0:?} is not allowed (start clip serve with --allowed-host to add it)")]
    HostNotAllowed(String),
    /// The model failed or the server is shutting down.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::HostNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `type` field, in OpenAI's vocabulary where one exists.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_)
            | ApiError::TooLarge(_)
            | ApiError::MethodNotAllowed
            | ApiError::UnsupportedMediaType(_)
            | ApiError::BodyTimeout(_) => "invalid_request_error",
            ApiError::HostNotAllowed(_) => "permission_error",
            ApiError::Busy(_) => "overloaded_error",
            ApiError::Unauthorized => "authentication_error",
            ApiError::NotFound(_) => "not_found_error",
            ApiError::QueueFull(_) => "rate_limit_error",
            ApiError::Timeout(_) => "timeout_error",
            ApiError::Internal(_) => "server_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            Json(json!({"error": {"message": self.to_string(), "type": self.kind()}})),
        )
            .into_response();
        if let ApiError::Unauthorized = self {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
