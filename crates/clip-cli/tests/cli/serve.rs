//! `clip serve` as a process: starts on a free loopback port, answers, and exits 0 on SIGTERM
//! after draining. The API itself is tested in crates/clip-serve/tests.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_starts_answers_and_stops_on_sigterm() {
    let model = clip_fixtures::committed("models/tiny-vit.safetensors");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clip"))
        .args(["serve", "--port", "0", "--token", "t0ken", "--model"])
        .arg(&model)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "not loopback by default: {url}"
    );

    let health: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{url}healthz"))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(health["status"], "ok");
    let unauthorized =
        ureq::post(&format!("{url}v1/embeddings")).send_string(r#"{"input": ["a cat"]}"#);
    assert!(matches!(unauthorized, Err(ureq::Error::Status(401, _))));
    let ok = ureq::post(&format!("{url}v1/embeddings"))
        .set("authorization", "Bearer t0ken")
        .set("content-type", "application/json")
        .send_string(r#"{"input": ["a cat"]}"#)
        .unwrap();
    assert_eq!(ok.status(), 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        child.wait().unwrap().success(),
        "clip serve should exit 0 after SIGTERM"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}

/// A `clip serve` child process, killed if a test fails, with its URL.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Served {
    /// Starts `clip serve --port 0 <args>` through `sh` so that `limits` (shell commands such
    /// as `ulimit -v 2000000`) apply to it.
    fn start(limits: &str, args: &[&str]) -> Served {
        let bin = env!("CARGO_BIN_EXE_clip");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!("{limits} exec '{bin}' serve --port 0 {}", quoted.join(" "));
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .env_remove("CLIP_MODEL")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("http://") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "clip serve exited before listening"
            );
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        Served { child, url }
    }

    /// The server's peak resident memory so far, in MiB (VmHWM).
    fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn post(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        match ureq::post(&format!("{}{path}", self.url))
            .set("content-type", "application/json")
            .timeout(std::time::Duration::from_secs(120))
            .send_string(body)
        {
            Ok(r) => Ok((r.status(), r.into_string().unwrap_or_default())),
            Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `side x side` all-black RGB PNG: kilobytes on the wire, `3 * side^2` bytes decoded.
fn black_png_b64(side: u32) -> String {
    use base64::Engine;
    use std::io::Write;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![0u8; side as usize * 3];
        for _ in 0..side {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Many small requests of huge images under an address-space limit: each gets an answer
/// (200, or 413/429/503 when refused), the server stays up, and its memory stays within the
/// decode budget instead of growing with the number of clients.
#[test]
fn image_floods_under_an_address_space_limit_get_answers_not_a_dead_server() {
    let model = clip_fixtures::committed("models/tiny-vit.safetensors");
    let mut served = Served::start(
        "ulimit -v 1500000;",
        &[
            "--model",
            model.to_str().unwrap(),
            "--decode-budget-pixels",
            "40000000",
            "--max-pixels",
            "20000000",
            "--max-request-pixels",
            "60000000",
            "--timeout-secs",
            "90",
        ],
    );
    let img = black_png_b64(4000);
    // One request of 24 images: over the request total, refused before decoding.
    let many: Vec<String> = (0..24).map(|_| format!("\"{img}\"")).collect();
    let body = format!("{{\"images\": [{}], \"texts\": [\"x\"]}}", many.join(","));
    let (status, text) = served.post("/v1/similarity", &body).unwrap();
    assert_eq!(status, 413, "{text}");
    // 24 clients at once, one 16-megapixel image each.
    let one = format!("{{\"images\": [\"{img}\"], \"texts\": [\"x\"]}}");
    let answers: Vec<Result<(u16, String), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|_| s.spawn(|| served.post("/v1/similarity", &one)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in &answers {
        let (status, text) = answer.as_ref().expect("every client gets an HTTP answer");
        assert!(
            [200, 413, 429, 503].contains(status),
            "unexpected {status}: {text}"
        );
    }
    assert!(
        answers.iter().filter(|a| matches!(a, Ok((200, _)))).count() >= 12,
        "{answers:?}"
    );
    assert!(served.alive(), "the server died");
    let peak = served.peak_rss_mib();
    // The budget is 40 Mpx (~120 MB of RGB) at a time. Without it (a budget larger than the
    // flood) the same requests drove the peak to ~2 GB and, under this 1.5 GB address-space
    // limit, aborted the process on a failed allocation.
    assert!(peak < 700, "peak RSS {peak} MiB");
    let (status, _) = served
        .post("/v1/embeddings", "{\"input\": [\"still alive\"]}")
        .unwrap();
    assert_eq!(status, 200);
}

/// `kill -HUP` reloads the index: images indexed while the server runs become searchable
/// without a restart.
#[test]
fn sighup_reloads_the_index() {
    let model = clip_fixtures::committed("models/tiny-vit.safetensors");
    let dir = crate::util::tempdir("serve-sighup");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(crate::util::good("chelsea_small.bmp"), photos.join("a.bmp")).unwrap();
    let db = dir.join("index.db");
    let m = model.to_str().unwrap();
    crate::util::clip_json(&[
        "index",
        photos.to_str().unwrap(),
        "--model",
        m,
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    let served = Served::start(
        "",
        &[
            "--model",
            m,
            "--db",
            db.to_str().unwrap(),
            "--reload-secs",
            "0",
        ],
    );
    let count = || -> serde_json::Value {
        let text = ureq::get(&format!("{}/v1/info", served.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["index"].clone()
    };
    assert_eq!(count(), 1);
    std::fs::copy(crate::util::good("camera_gray.jpg"), photos.join("b.jpg")).unwrap();
    crate::util::clip_json(&[
        "index",
        photos.to_str().unwrap(),
        "--model",
        m,
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    // No polling (--reload-secs 0): still the old index until the signal.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(count(), 1);
    let sent = Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload the index"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
