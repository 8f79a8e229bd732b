//! The router: every endpoint, the body limit, the token check and request metrics.

mod classify;
mod embeddings;
mod moderate;
mod search;
mod similarity;
mod system;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::require_token;
use crate::guard::check_host;
use crate::page;
use crate::state::AppState;

/// Every route with its layers: metrics wrap the token check, so refused requests are counted
/// too, and the body limit covers every extractor.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/style.css", get(page::style))
        .route("/healthz", get(system::healthz))
        .route("/v1/info", get(system::info))
        .route("/v1/models", get(system::models))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/classify", post(classify::classify))
        .route("/v1/similarity", post(similarity::similarity))
        .route("/v1/moderate", post(moderate::moderate))
        .route(
            "/v1/search",
            get(search::search_get).post(search::search_post),
        )
        .route("/v1/images/{id}", get(search::image))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

/// Counts every request (refused ones included) by route and status, with its latency.
async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe_request(&route, &method, response.status().as_u16(), start.elapsed());
    response
}
