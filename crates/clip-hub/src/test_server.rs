//! A loopback HTTP server for download tests: serves fixed bodies per path, honours `Range`, and
//! can misbehave on purpose (cut the connection, trickle, stall, answer an error status). It
//! records every request so tests can assert what the client asked for.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How one path answers.
#[derive(Clone)]
pub enum Route {
    /// The body, whole.
    Ok(Vec<u8>),
    /// The first request gets the headers of the whole body but only `at` bytes before the
    /// connection closes; later requests are answered normally.
    CutOnce {
        /// The whole body.
        body: Vec<u8>,
        /// Bytes sent before the first connection closes.
        at: usize,
    },
    /// As `CutOnce`, but the server ignores `Range` and always answers 200 with the whole body.
    CutOnceNoRanges {
        /// The whole body.
        body: Vec<u8>,
        /// Bytes sent before the first connection closes.
        at: usize,
    },
    /// The body in `chunk`-byte pieces with `delay` between them.
    Slow {
        /// The whole body.
        body: Vec<u8>,
        /// Bytes per piece.
        chunk: usize,
        /// Pause after each piece.
        delay: Duration,
    },
    /// `after` bytes, then silence for `hold`, then the connection closes.
    Stall {
        /// The whole body (only its first `after` bytes are sent).
        body: Vec<u8>,
        /// Bytes sent before the silence.
        after: usize,
        /// How long the server stays silent.
        hold: Duration,
    },
    /// An error status with no body.
    Status(u16),
    /// `302 Found` to this `Location` (any text: a relative path, another URL, `file:///...`).
    Redirect(String),
    /// Another route's answer with extra response headers (`X-Linked-Etag`, `ETag`, ...), as
    /// Hugging Face sends on its `resolve` redirects.
    Headers(Vec<(String, String)>, Box<Route>),
}

/// What the client asked: the path and its `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request path, e.g. `/o/r/f`.
    pub path: String,
    /// The `Range` header's value, if sent.
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    cut_done: HashMap<String, bool>,
}

/// The running server; it stops when dropped. Each connection gets its own thread, so a stalled
/// route does not hold up the others.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Serves `routes` (path, answer) on a free loopback port; unknown paths get 404.
    pub fn start(routes: Vec<(&str, Route)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let routes: Arc<HashMap<String, Route>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        );
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (routes, st) = (routes.clone(), st.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &routes, &st);
                });
            }
        });
        TestServer { addr, state, stop }
    }

    /// `http://127.0.0.1:<port>`: the value for `CLIP_MIRROR`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many requests asked for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    stream: TcpStream,
    routes: &HashMap<String, Route>,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let first_cut = {
        let mut st = state.lock().unwrap();
        st.requests.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        let done = st.cut_done.entry(path.clone()).or_default();
        !std::mem::replace(done, true)
    };
    let mut out = stream;
    let Some(mut route) = routes.get(&path) else {
        return respond_status(&mut out, 404);
    };
    let mut extra = String::new();
    while let Route::Headers(headers, inner) = route {
        for (k, v) in headers {
            extra += &format!("{k}: {v}\r\n");
        }
        route = inner;
    }
    let body = match route {
        Route::Status(code) => return respond_status(&mut out, *code),
        Route::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return out.write_all(head.as_bytes());
        }
        Route::Headers(..) => unreachable!("unwrapped above"),
        Route::Ok(b)
        | Route::CutOnce { body: b, .. }
        | Route::CutOnceNoRanges { body: b, .. }
        | Route::Slow { body: b, .. }
        | Route::Stall { body: b, .. } => b,
    };
    let range = if matches!(route, Route::CutOnceNoRanges { .. }) {
        None
    } else {
        range
    };
    let start = match range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
    {
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n < body.len() => Some(n),
            _ => return respond_status(&mut out, 416),
        },
        None => None,
    };
    let slice = &body[start.unwrap_or(0)..];
    let head = match start {
        Some(s) => format!(
            "HTTP/1.1 206 Partial Content\r\n{extra}Content-Length: {}\r\nContent-Range: bytes {s}-{}/{}\r\nConnection: close\r\n\r\n",
            slice.len(),
            body.len() - 1,
            body.len()
        ),
        None => format!("HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", slice.len()),
    };
    out.write_all(head.as_bytes())?;
    match route {
        Route::CutOnce { at, .. } | Route::CutOnceNoRanges { at, .. } if first_cut => {
            out.write_all(&slice[..(*at).min(slice.len())])?;
            out.flush()?;
            out.shutdown(std::net::Shutdown::Both)
        }
        Route::Slow { chunk, delay, .. } => {
            for piece in slice.chunks((*chunk).max(1)) {
                out.write_all(piece)?;
                out.flush()?;
                thread::sleep(*delay);
            }
            Ok(())
        }
        Route::Stall { after, hold, .. } => {
            out.write_all(&slice[..(*after).min(slice.len())])?;
            out.flush()?;
            thread::sleep(*hold);
            Ok(())
        }
        _ => out.write_all(slice),
    }
}

/// Lowercase hex SHA-256 of `bytes`: what a test's server declares in `X-Linked-Etag`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn respond_status(out: &mut TcpStream, code: u16) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {code} Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}
