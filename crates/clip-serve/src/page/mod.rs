//! The search page: plain HTML, CSS and JavaScript embedded in the binary (no CDN, no build step),
//! so `clip serve` is the whole deployment.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// `GET /`: the page.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

/// `GET /app.js`: the page's script.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("app.js"),
    )
}

/// `GET /style.css`: the page's style sheet.
pub async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
}
