//! Fetching one file into the cache: locked so concurrent processes download it once, resumed from
//! a `.part` file with an HTTP Range request, verified, then renamed into place atomically (a file
//! under its final name is always whole and checked).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Tries per file; a broken connection is resumed where it stopped.
    pub attempts: u32,
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
}

pub(crate) fn fetch_file(
    agent: &ureq::Agent,
    opts: &FetchOptions,
    job: &Job,
) -> Result<(), HubError> {
    if job.dest.is_file() {
        return Ok(());
    }
    let dir = job.dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    let _lock = lock(job.dest, opts.progress)?;
    if job.dest.is_file() {
        // Another process fetched it while this one waited for the lock.
        return Ok(());
    }
    let part = sibling(job.dest, "part");
    let mut attempt = 1;
    loop {
        match download(agent, opts, job, &part) {
            Ok(()) => break,
            Err(e @ HubError::Interrupted { .. }) if attempt < opts.attempts => {
                if opts.progress {
                    eprintln!("clip: {e}; retrying");
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
    verify(job, &part)?;
    fs::rename(&part, job.dest).map_err(|e| HubError::io(job.dest, e))
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

/// One HTTP request: resumes `part` when it has bytes and the server honours the range, else
/// starts it over. Success means the body arrived whole, not that it is correct.
fn download(
    agent: &ureq::Agent,
    opts: &FetchOptions,
    job: &Job,
    part: &Path,
) -> Result<(), HubError> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(job.url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part already holds the whole file: verification decides whether it is right.
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(()),
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
        bar.set_position(received);
    }
    bar.finish_and_clear();
    out.sync_all().map_err(|e| HubError::io(part, e))?;
    match total {
        Some(t) if t != received => Err(cut(received, "the connection closed early".to_string())),
        _ => Ok(()),
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

/// Checks the finished `.part`; a bad one is deleted so the next run starts clean.
fn verify(job: &Job, part: &Path) -> Result<(), HubError> {
    let reject = |err: HubError| {
        let _ = fs::remove_file(part);
        Err(err)
    };
    if let Some(expected) = &job.file.sha256 {
        let actual = sha256_file(part).map_err(|e| HubError::io(part, e))?;
        if actual != *expected {
            return reject(HubError::ChecksumMismatch {
                url: job.url.to_string(),
                path: part.to_path_buf(),
                expected: expected.clone(),
                actual,
            });
        }
    } else if let Some(kind) = structural_kind(&job.file.name) {
        if let Err(reason) = check_structure(kind, part) {
            return reject(HubError::Malformed {
                url: job.url.to_string(),
                path: part.to_path_buf(),
                kind,
                reason,
            });
        }
    }
    Ok(())
}
