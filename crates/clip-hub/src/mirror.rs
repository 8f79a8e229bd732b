//! `CLIP_MIRROR`: the same files from another server. Only scheme and host (and port) change, the
//! path is kept, so a mirror is a plain copy of each publisher's tree under one base URL.

use crate::HubError;

/// A validated mirror base URL, without a trailing slash (a path prefix is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror(String);

impl Mirror {
    /// Checks a `CLIP_MIRROR` value: an http(s) URL with a host, no query or fragment.
    pub fn parse(base: &str) -> Result<Self, HubError> {
        let bad = |reason: &str| HubError::BadMirror {
            mirror: base.to_string(),
            reason: reason.to_string(),
        };
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        if rest.split('/').next().unwrap_or_default().is_empty() {
            return Err(bad("no host"));
        }
        if base.contains(['?', '#']) {
            return Err(bad("no query or fragment allowed"));
        }
        Ok(Mirror(base.trim_end_matches('/').to_string()))
    }

    /// `https://host/a/b` -> `<mirror>/a/b`.
    pub fn rewrite(&self, url: &str) -> String {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        format!("{}{path}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_scheme_host_and_port_and_keeps_the_path() {
        let m = Mirror::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            m.rewrite("https://openaipublic.azureedge.net/clip/models/x/RN50.pt"),
            "http://127.0.0.1:8080/clip/models/x/RN50.pt"
        );
        let m = Mirror::parse("https://mirror.example/clip-rs").unwrap();
        assert_eq!(
            m.rewrite("https://huggingface.co:443/o/r/resolve/main/f"),
            "https://mirror.example/clip-rs/o/r/resolve/main/f"
        );
    }

    #[test]
    fn rejects_what_is_not_a_base_url() {
        for bad in ["mirror.example", "ftp://x", "http://", "http://h/?q=1"] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
    }
}
