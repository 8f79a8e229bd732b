//! Every way finding or fetching a model can fail. Each message names the model, URL or path at
//! fault and what the user can do next, because these errors reach people, not programs.

use std::path::PathBuf;

use thiserror::Error;

/// Why a model could not be found or fetched.
#[derive(Debug, Error)]
pub enum HubError {
    /// Neither an existing path nor a registry name.
    #[error("model `{name}`: no such file or folder, and no model has that name{}; `clip models` lists the names", did_you_mean(.suggestions))]
    UnknownModel {
        /// What the user gave.
        name: String,
        /// Up to three close registry names, closest first.
        suggestions: Vec<String>,
    },

    /// A user registry file could not be read or is invalid.
    #[error("registry file {}: {reason}", .path.display())]
    Registry {
        /// The registry file.
        path: PathBuf,
        /// What is wrong, naming the model where one is at fault.
        reason: String,
    },

    /// No environment variable says where the cache is.
    #[error("no cache directory: set CLIP_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    /// A cache file or folder could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },

    /// The model is not cached and the network is off limits (`CLIP_OFFLINE`).
    #[error("model `{model}` is not in the cache and CLIP_OFFLINE is set; to use it offline, {}", placements(.places))]
    Offline {
        /// The model's registry name.
        model: String,
        /// Every source's missing files: (source label, URL, where the file is expected in the
        /// cache). URLs are mirrored when `CLIP_MIRROR` is set.
        places: Vec<(String, String, PathBuf)>,
    },

    /// Every source of a model was missing or unreachable.
    #[error("model `{model}`: no source could be downloaded: {}", failures.iter().map(|(label, e)| format!("{label}: {e}")).collect::<Vec<_>>().join("; "))]
    NoSource {
        /// The model's registry name.
        model: String,
        /// Each source's label and why it failed, in the order tried.
        failures: Vec<(String, HubError)>,
    },

    /// No connection could be made to the server.
    #[error("cannot reach {url} ({reason}); download it by hand and place it at {}, or set CLIP_MIRROR to a mirror", .path.display())]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The transport error.
        reason: String,
        /// Where the file is expected in the cache, for a download by hand.
        path: PathBuf,
    },

    /// The server answered with an error status.
    #[error("download of {url} failed: HTTP {status}")]
    Http {
        /// The URL tried.
        url: String,
        /// The HTTP status code.
        status: u16,
    },

    /// The connection broke mid-file; the partial file is kept for the next attempt to resume.
    #[error("download of {url} was interrupted after {received} of {expected} bytes ({reason}); the partial file {} is kept and the next run resumes it", .part.display())]
    Interrupted {
        /// The URL being fetched.
        url: String,
        /// Bytes on disk so far.
        received: u64,
        /// The total length as text: a number, or "an unknown number of" without one.
        expected: String,
        /// The transport error.
        reason: String,
        /// The partial file.
        part: PathBuf,
    },

    /// The file does not have its published (or server-declared) SHA-256; it was deleted. Never
    /// passed over for the next source: the file the user asked for is not what its publisher
    /// says it is, which the user must see.
    #[error("checksum mismatch for {url} ({source_label}): expected sha256 {expected} ({}), got {actual}; the downloaded file {} was deleted", if *.declared { "declared by the server" } else { "published" }, .path.display())]
    ChecksumMismatch {
        /// The URL fetched.
        url: String,
        /// The source it came from: `the OpenAI URL`, `the Hugging Face copy org/name`, ...
        /// (boxed to keep the error small).
        source_label: Box<str>,
        /// Whether the expected hash is the one the server declared (else the published one).
        declared: bool,
        /// The downloaded (and now deleted) file.
        path: PathBuf,
        /// The published hash, lowercase hex.
        expected: String,
        /// The hash of what arrived, lowercase hex.
        actual: String,
    },

    /// A file without a published hash failed its structural check; it was deleted.
    #[error("downloaded {url} is not a valid {kind} file ({reason}); the downloaded file {} was deleted", .path.display())]
    Malformed {
        /// The URL fetched.
        url: String,
        /// The downloaded (and now deleted) file.
        path: PathBuf,
        /// The structure expected: `JSON` or `safetensors`.
        kind: &'static str,
        /// What the check found.
        reason: String,
    },

    /// A redirect the download refused to follow (a `file:` or host-less target, too many hops).
    #[error("download of {url} stopped at {reason}")]
    Redirect {
        /// The URL that answered with the redirect.
        url: String,
        /// Why it was not followed.
        reason: String,
    },

    /// The download took longer than the deadline; the partial file is kept.
    #[error("download of {url} took longer than {minutes} minutes and was stopped; the partial file {} is kept and the next run resumes it", .part.display())]
    Deadline {
        /// The URL being fetched.
        url: String,
        /// The deadline.
        minutes: u64,
        /// The partial file.
        part: PathBuf,
    },

    /// The server sends more than the model can hold (a wrong file, or an endless body).
    #[error(
        "download of {url} is {bytes} bytes, more than the {max} bytes this model can be; stopped"
    )]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// Bytes announced or received.
        bytes: u64,
        /// The most the file may be.
        max: u64,
    },

    /// `CLIP_MIRROR` is not a usable base URL.
    #[error("CLIP_MIRROR `{mirror}` is not a base URL such as http://host:port ({reason})")]
    BadMirror {
        /// The value given.
        mirror: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// "download <url> and place it at <path>", for each missing file, sources joined by "; or ".
fn placements(places: &[(String, String, PathBuf)]) -> String {
    let mut by_source: Vec<(&str, Vec<String>)> = Vec::new();
    for (label, url, path) in places {
        let line = format!("download {url} and place it at {}", path.display());
        match by_source.last_mut() {
            Some((l, lines)) if l == label => lines.push(line),
            _ => by_source.push((label, vec![line])),
        }
    }
    by_source
        .into_iter()
        .map(|(label, lines)| format!("from {label}: {}", lines.join(", ")))
        .collect::<Vec<_>>()
        .join("; or ")
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
