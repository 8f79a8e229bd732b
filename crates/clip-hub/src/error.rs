//! Every way finding or fetching a model can fail. Each message names the model, URL or path at
//! fault and what the user can do next, because these errors reach people, not programs.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HubError {
    #[error("model `{name}`: no such file or folder, and no model has that name{}; `clip models` lists the names", did_you_mean(.suggestions))]
    UnknownModel {
        name: String,
        suggestions: Vec<String>,
    },

    #[error("registry file {}: {reason}", .path.display())]
    Registry { path: PathBuf, reason: String },

    #[error("no cache directory: set CLIP_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("model `{model}` is not in the cache and CLIP_OFFLINE is set; to use it offline, download {url} and place it at {}", .path.display())]
    Offline {
        model: String,
        url: String,
        path: PathBuf,
    },

    #[error("cannot reach {url} ({reason}); download it by hand and place it at {}, or set CLIP_MIRROR to a mirror", .path.display())]
    Unreachable {
        url: String,
        reason: String,
        path: PathBuf,
    },

    #[error("download of {url} failed: HTTP {status}")]
    Http { url: String, status: u16 },

    #[error("download of {url} was interrupted after {received} of {expected} bytes ({reason}); the partial file {} is kept and the next run resumes it", .part.display())]
    Interrupted {
        url: String,
        received: u64,
        expected: String,
        reason: String,
        part: PathBuf,
    },

    #[error("checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the downloaded file {} was deleted", .path.display())]
    ChecksumMismatch {
        url: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("downloaded {url} is not a valid {kind} file ({reason}); the downloaded file {} was deleted", .path.display())]
    Malformed {
        url: String,
        path: PathBuf,
        kind: &'static str,
        reason: String,
    },

    #[error("CLIP_MIRROR `{mirror}` is not a base URL such as http://host:port ({reason})")]
    BadMirror { mirror: String, reason: String },
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|s| format!("`{s}`")).collect();
            format!(" (did you mean {} or `{last}`?)", rest.join(", "))
        }
    }
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            source,
        }
    }
}
