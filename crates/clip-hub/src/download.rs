//! Fetching one file into the cache: locked so concurrent processes download it once, resumed from
//! a `.part` file with an HTTP Range request, verified, then renamed into place atomically (a file
//! under its final name is always whole and checked).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::mirror::Mirror;
use crate::registry::RemoteFile;
use crate::verify::{check_structure, sha256_file, structural_kind};
use crate::HubError;

/// How downloads behave; [`FetchOptions::from_env`] reads the user's settings.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Replaces scheme and host of every URL (`CLIP_MIRROR`).
    pub mirror: Option<Mirror>,
    /// Never touch the network (`CLIP_OFFLINE`): a model not in the cache is an error that says
    /// where to put the file by hand.
    pub offline: bool,
    /// Longest wait for a connection: an unreachable host fails with advice instead of hanging.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes: a stalled server fails instead of hanging forever.
    pub read_timeout: Duration,
    /// Tries per file; a broken or stalled connection is resumed where it stopped.
    pub attempts: u32,
    /// Longest a whole file may take, all attempts together: a server that trickles bytes just
    /// fast enough to avoid the read timeout still ends.
    pub deadline: Duration,
    /// Slowest acceptable transfer, in bytes per second over [`FetchOptions::speed_window`]: a
    /// slower connection is cut (and resumed, while attempts remain).
    pub min_speed: u64,
    /// The window `min_speed` is measured over.
    pub speed_window: Duration,
    /// Redirects followed per request (http and https URLs with a host only).
    pub max_redirects: u32,
    /// Pause before retrying a server error (HTTP 5xx), times the attempt number.
    pub retry_pause: Duration,
    /// Status lines and a progress bar on stderr (the bar only when stderr is a terminal).
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            mirror: None,
            offline: false,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            attempts: 3,
            deadline: Duration::from_secs(2 * 3600),
            min_speed: 16 * 1024,
            speed_window: Duration::from_secs(30),
            max_redirects: 5,
            retry_pause: Duration::from_secs(1),
            progress: true,
        }
    }
}

impl FetchOptions {
    /// Defaults plus `CLIP_MIRROR` and `CLIP_OFFLINE` (any value but empty, `0` or `false`).
    pub fn from_env() -> Result<Self, HubError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ok(FetchOptions {
            mirror: var("CLIP_MIRROR").map(|m| Mirror::parse(&m)).transpose()?,
            offline: var("CLIP_OFFLINE")
                .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false")),
            ..Self::default()
        })
    }
}

/// One file to bring to `dest` from `url` (already mirrored).
pub(crate) struct Job<'a> {
    pub url: &'a str,
    pub file: &'a RemoteFile,
    pub dest: &'a Path,
    /// The most bytes the file may have (from the registry's model size), if known.
    pub max_bytes: Option<u64>,
    /// How messages name the source (`the OpenAI URL`, `the Hugging Face copy org/name`).
    pub source_label: &'a str,
    /// Check a SHA-256 the server declares (`X-Linked-Etag`, else `ETag`) when the registry
    /// pins none.
    pub honour_declared: bool,
}

/// How a fetched file was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Already in the cache (checked when it was fetched).
    Cached,
    /// Against the registry's SHA-256.
    Pinned,
    /// Against the SHA-256 the server declared (and for structure).
    Declared(String),
    /// For structure only: no hash known.
    Structure,
    /// Neither a hash nor a structure to check.
    Unchecked,
}

/// Whether an error means "this source does not have the file" (the next source may): the server
/// says it is gone or failing (404, 410, 5xx), or cannot be reached at all.
pub(crate) fn source_unavailable(err: &HubError) -> bool {
    match err {
        HubError::Http { status, .. } => matches!(status, 404 | 410 | 500..=599),
        HubError::Unreachable { .. } => true,
        _ => false,
    }
}

pub(crate) fn fetch_file(
    agent: &ureq::Agent,
    opts: &FetchOptions,
    job: &Job,
) -> Result<Checked, HubError> {
    if job.dest.is_file() {
        return Ok(Checked::Cached);
    }
    let dir = job.dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    let _lock = lock(job.dest, opts.progress)?;
    if job.dest.is_file() {
        // Another process fetched it while this one waited for the lock.
        return Ok(Checked::Cached);
    }
    let part = sibling(job.dest, "part");
    let mut attempt = 1;
    let started = Instant::now();
    let declared = loop {
        if started.elapsed() > opts.deadline {
            return Err(HubError::Deadline {
                url: job.url.to_string(),
                minutes: opts.deadline.as_secs() / 60,
                part: part.clone(),
            });
        }
        let remaining = opts.deadline.saturating_sub(started.elapsed());
        match download(agent, opts, job, &part, remaining) {
            Ok(declared) => break declared,
            Err(e @ HubError::Interrupted { .. }) if attempt < opts.attempts => {
                if opts.progress {
                    eprintln!("clip: {e}; retrying");
                }
                attempt += 1;
            }
            Err(e @ HubError::Http { status: 500.., .. }) if attempt < opts.attempts => {
                if opts.progress {
                    eprintln!("clip: {e}; retrying");
                }
                std::thread::sleep(opts.retry_pause * attempt);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let checked = verify(job, &part, declared)?;
    fs::rename(&part, job.dest).map_err(|e| HubError::io(job.dest, e))?;
    Ok(checked)
}

/// A SHA-256 a Hugging Face-style server declares for the body: `X-Linked-Etag` (the LFS object
/// id, sent on the `resolve` redirect), else `ETag`, when it is 64 hex digits (quotes and a weak
/// `W/` prefix stripped). Git blob ids (40 digits) and opaque CDN tags are not hashes of the
/// content and are ignored.
fn declared_sha256(response: &ureq::Response) -> Option<String> {
    ["X-Linked-Etag", "ETag"].iter().find_map(|h| {
        let v = response.header(h)?.trim();
        let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
        (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
    })
}

/// `<dest>.<ext>`, beside the destination so the final rename stays on one file system.
fn sibling(dest: &Path, ext: &str) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{ext}"));
    dest.with_file_name(name)
}

/// An exclusive lock on `<dest>.lock`, held until the returned file is dropped. The OS releases
/// it when its holder dies, so a crashed download never leaves a stale lock behind.
fn lock(dest: &Path, progress: bool) -> Result<File, HubError> {
    let path = sibling(dest, "lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HubError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            if progress {
                eprintln!(
                    "clip: waiting for another process downloading {}",
                    dest.display()
                );
            }
            file.lock().map_err(|e| HubError::io(&path, e))?;
        }
        Err(TryLockError::Error(e)) => return Err(HubError::io(&path, e)),
    }
    Ok(file)
}

/// The next URL of a redirect: `location` resolved against `from`, which must be an http or
/// https URL with a host (a `file:` or host-less `Location` is refused, never followed).
fn redirect_target(from: &str, location: Option<&str>) -> Result<String, String> {
    let location = location.ok_or("a redirect without a Location header")?;
    let base = url::Url::parse(from).map_err(|e| e.to_string())?;
    let next = base
        .join(location)
        .map_err(|e| format!("a redirect to {location:?}, not a URL ({e})"))?;
    match next.scheme() {
        "http" | "https" if next.host_str().is_some_and(|h| !h.is_empty()) => Ok(next.into()),
        _ => Err(format!(
            "a redirect to {location:?}: only http and https URLs with a host are followed"
        )),
    }
}

/// One GET of `url` (with `range_from` as a Range request when it is not 0), following
/// redirects ourselves so that each target is checked; any panic inside the HTTP client becomes
/// an error of this download. Also returns the first SHA-256 declared along the way (see
/// [`declared_sha256`]): Hugging Face sends it on the redirect to its CDN.
#[allow(clippy::type_complexity)]
fn get(
    agent: &ureq::Agent,
    opts: &FetchOptions,
    job: &Job,
    range_from: u64,
) -> Result<(Result<ureq::Response, Box<ureq::Error>>, Option<String>), HubError> {
    let mut url = job.url.to_string();
    let mut declared = None;
    for _ in 0..=opts.max_redirects {
        let mut request = agent.get(&url);
        if range_from > 0 {
            request = request.set("Range", &format!("bytes={range_from}-"));
        }
        let answer =
            catch_unwind(AssertUnwindSafe(|| request.call().map_err(Box::new))).map_err(|_| {
                HubError::Unreachable {
                    url: url.clone(),
                    reason: "the HTTP client failed on the server's answer".into(),
                    path: job.dest.to_path_buf(),
                }
            })?;
        if let Ok(r) = &answer {
            declared = declared.or_else(|| declared_sha256(r));
        }
        match answer {
            Ok(r) if (300..400).contains(&r.status()) => {
                url = redirect_target(&url, r.header("Location")).map_err(|reason| {
                    HubError::Redirect {
                        url: url.clone(),
                        reason,
                    }
                })?;
            }
            other => return Ok((other, declared)),
        }
    }
    Err(HubError::Redirect {
        url: job.url.to_string(),
        reason: format!("more than {} redirects", opts.max_redirects),
    })
}

/// One HTTP request: resumes `part` when it has bytes and the server honours the range, else
/// starts it over. Success means the body arrived whole, not that it is correct; it returns the
/// SHA-256 the server declared, if any. Cut when the transfer is slower than `min_speed`, when
/// `remaining` runs out, or when the file grows past the job's `max_bytes`.
fn download(
    agent: &ureq::Agent,
    opts: &FetchOptions,
    job: &Job,
    part: &Path,
    remaining: Duration,
) -> Result<Option<String>, HubError> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let (answer, declared) = get(agent, opts, job, have)?;
    let response = match answer.map_err(|e| *e) {
        Ok(r) => r,
        // The part already holds the whole file: verification decides whether it is right.
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(declared),
        Err(ureq::Error::Status(status, _)) => {
            return Err(HubError::Http {
                url: job.url.to_string(),
                status,
            })
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(HubError::Unreachable {
                url: job.url.to_string(),
                reason: transport_reason(&t),
                path: job.dest.to_path_buf(),
            })
        }
    };
    let header_u64 = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok());
    let (start, total) = if response.status() == 206 {
        // "bytes <first>-<last>/<total>"
        let range = response.header("Content-Range").unwrap_or_default();
        let spec = range.trim().strip_prefix("bytes ").unwrap_or_default();
        let first = header_u64(spec.split('-').next());
        if first != Some(have) {
            return Err(HubError::Http {
                url: job.url.to_string(),
                status: 206,
            });
        }
        (have, header_u64(spec.rsplit('/').next()))
    } else {
        (0, header_u64(response.header("Content-Length")))
    };
    if let (Some(total), Some(max)) = (total, job.max_bytes) {
        if total > max {
            return Err(HubError::TooLarge {
                url: job.url.to_string(),
                bytes: total,
                max,
            });
        }
    }
    let out = if start > 0 {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    };
    let mut out = out.map_err(|e| HubError::io(part, e))?;
    if opts.progress {
        let what = if start > 0 {
            format!("resuming at {start} bytes")
        } else {
            "downloading".to_string()
        };
        eprintln!("clip: {what} {} -> {}", job.url, job.dest.display());
    }
    let bar = progress_bar(opts.progress, total, start);
    let mut reader = response.into_reader();
    let mut received = start;
    let mut buf = vec![0u8; 256 * 1024];
    let cut = |received: u64, reason: String| HubError::Interrupted {
        url: job.url.to_string(),
        received,
        expected: total.map_or("an unknown number of".to_string(), |t| t.to_string()),
        reason,
        part: part.to_path_buf(),
    };
    let started = Instant::now();
    let (mut window_start, mut window_bytes) = (Instant::now(), 0u64);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                out.flush().map_err(|e| HubError::io(part, e))?;
                return Err(cut(received, e.to_string()));
            }
        };
        out.write_all(&buf[..n])
            .map_err(|e| HubError::io(part, e))?;
        received += n as u64;
        window_bytes += n as u64;
        bar.set_position(received);
        if let Some(max) = job.max_bytes.filter(|&m| received > m) {
            drop(out);
            let _ = fs::remove_file(part);
            return Err(HubError::TooLarge {
                url: job.url.to_string(),
                bytes: received,
                max,
            });
        }
        let window = window_start.elapsed();
        if window >= opts.speed_window {
            let rate = (window_bytes as f64 / window.as_secs_f64()) as u64;
            if rate < opts.min_speed {
                bar.abandon();
                out.flush().map_err(|e| HubError::io(part, e))?;
                return Err(cut(
                    received,
                    format!(
                        "{rate} bytes/s over the last {} s, below the minimum of {} bytes/s",
                        window.as_secs(),
                        opts.min_speed
                    ),
                ));
            }
            (window_start, window_bytes) = (Instant::now(), 0);
        }
        if started.elapsed() > remaining {
            bar.abandon();
            out.flush().map_err(|e| HubError::io(part, e))?;
            return Err(HubError::Deadline {
                url: job.url.to_string(),
                minutes: opts.deadline.as_secs() / 60,
                part: part.to_path_buf(),
            });
        }
    }
    bar.finish_and_clear();
    out.sync_all().map_err(|e| HubError::io(part, e))?;
    match total {
        Some(t) if t != received => Err(cut(received, "the connection closed early".to_string())),
        _ => Ok(declared),
    }
}

/// A transport error without the URL (the message already names it).
fn transport_reason(t: &ureq::Transport) -> String {
    let mut reason = t.kind().to_string();
    if let Some(m) = t.message() {
        reason += &format!(": {m}");
    }
    if let Some(source) = std::error::Error::source(t) {
        reason += &format!(": {source}");
    }
    reason
}

fn progress_bar(enabled: bool, total: Option<u64>, start: u64) -> ProgressBar {
    let target = if enabled && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = match total {
        Some(_) => "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        None => "{spinner} {bytes} {bytes_per_sec}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_position(start);
    bar
}

/// Checks the finished `.part` against the registry's SHA-256, else the server's declared one
/// (when the source's server is trusted to declare one), and for structure where no registry hash
/// is known; a bad one is deleted so the next run starts clean.
fn verify(job: &Job, part: &Path, declared: Option<String>) -> Result<Checked, HubError> {
    let reject = |err: HubError| {
        let _ = fs::remove_file(part);
        Err(err)
    };
    let declared = declared.filter(|_| job.honour_declared);
    let expected = match (&job.file.sha256, &declared) {
        (Some(pinned), _) => Some((pinned, false)),
        (None, Some(d)) => Some((d, true)),
        (None, None) => None,
    };
    if let Some((expected, declared)) = expected {
        let actual = sha256_file(part).map_err(|e| HubError::io(part, e))?;
        if actual != *expected {
            return reject(HubError::ChecksumMismatch {
                url: job.url.to_string(),
                source_label: job.source_label.into(),
                declared,
                path: part.to_path_buf(),
                expected: expected.clone(),
                actual,
            });
        }
        if job.file.sha256.is_some() {
            return Ok(Checked::Pinned);
        }
    }
    if let Some(kind) = structural_kind(&job.file.name) {
        if let Err(reason) = check_structure(kind, part) {
            return reject(HubError::Malformed {
                url: job.url.to_string(),
                path: part.to_path_buf(),
                kind,
                reason,
            });
        }
    }
    Ok(match (declared, structural_kind(&job.file.name)) {
        (Some(d), _) => Checked::Declared(d),
        (None, Some(_)) => Checked::Structure,
        (None, None) => Checked::Unchecked,
    })
}
