//! What a browser must not be able to do to a server on this machine. A web page can make the
//! browser send requests to `127.0.0.1` (a cross-site `text/plain` POST needs no CORS preflight;
//! [`crate::body::ApiJson`] refuses it), and DNS rebinding can make the page's own host name
//! point here, so that the browser lets the page read the answers. The second needs a host name
//! of the attacker's in the `Host` header: only loopback names, IP literals (which cannot be
//! rebound) and the names given with `--allowed-host` are answered.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`), lower case.
fn host_name(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match value.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
        _ => value,
    }
}

/// Whether a request with this `Host` header may be answered.
pub fn host_allowed(value: &str, allowed: &[String]) -> bool {
    let name = host_name(value);
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok()
        || allowed
            .iter()
            .any(|a| a == "*" || *a == name || host_name(a) == name)
}

/// Middleware: 403 for a `Host` this server does not answer for. A request without `Host`
/// (HTTP/1.0) names no host to rebind and passes.
pub async fn check_host(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match host {
        Some(h) if !host_allowed(&h, &state.allowed_hosts) => {
            ApiError::HostNotAllowed(host_name(&h)).into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_ip_literals_pass_names_need_allowing() {
        let none: Vec<String> = Vec::new();
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
            "10.0.0.5:80",
            "app.localhost",
        ] {
            assert!(host_allowed(ok, &none), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(bad, &none), "{bad}");
        }
        let allowed = vec!["photos.lan".to_string()];
        assert!(host_allowed("photos.lan:8080", &allowed));
        assert!(host_allowed("PHOTOS.LAN", &allowed));
        assert!(!host_allowed("other.lan", &allowed));
        assert!(host_allowed("anything", &["*".to_string()]));
    }
}
