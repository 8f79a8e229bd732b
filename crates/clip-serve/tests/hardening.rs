//! The server against hostile and unlucky clients, over real sockets on loopback: slow and
//! silent connections, half-sent requests at shutdown, bodies that never come, metrics label
//! floods, browser-driven requests (cross-site POSTs, DNS rebinding), images that would exhaust
//! memory together, files swapped under the index, the official OpenAI wire format.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use clip_serve::{Limits, ServeOptions};
use common::*;
use serde_json::{json, Value};

/// Limits with short timeouts, so a test waits seconds, not minutes.
fn quick_limits() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
        ..Limits::default()
    }
}

fn server_with(limits: Limits) -> TestServer {
    TestServer::start(ServeOptions {
        limits,
        ..ServeOptions::default()
    })
}

fn addr(s: &TestServer) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes the connection (or `limit` passes); true if it closed.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return start.elapsed() < limit,
        }
    }
}

/// One raw HTTP/1.1 exchange; returns the status code and the response text.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let s = server_with(quick_limits());
    // Slow loris: the request line and one header, then nothing.
    let mut slow = TcpStream::connect(addr(&s)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)),
        "a half-sent header was kept open"
    );
    // A silent connection that never sends a byte.
    let mut silent = TcpStream::connect(addr(&s)).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)));
    // A keep-alive connection, idle after one answered request.
    let mut idle = TcpStream::connect(addr(&s)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = idle.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, Duration::from_secs(5)));
}

#[test]
fn a_body_that_never_comes_gets_408_and_an_announced_huge_body_413_at_once() {
    let s = server_with(quick_limits());
    let start = Instant::now();
    let (status, text) = raw(
        &addr(&s),
        "POST /v1/embeddings HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"input\":",
    );
    assert_eq!(status, 408, "{text}");
    assert!(start.elapsed() < Duration::from_secs(8));
    let start = Instant::now();
    let (status, text) = raw(
        &addr(&s),
        "POST /v1/embeddings HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 52428800\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("52428800 bytes exceeds the limit"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "refused before reading the body"
    );
}

#[test]
fn silent_connections_beyond_the_limit_do_not_lock_clients_out() {
    let s = server_with(Limits {
        max_connections: 16,
        ..quick_limits()
    });
    // Twice the limit of connections that never send a byte.
    let hogs: Vec<TcpStream> = (0..32)
        .map(|_| TcpStream::connect(addr(&s)).unwrap())
        .collect();
    // The excess is closed at once, the rest after the header timeout: a real client gets in
    // within a few seconds whatever the hogs do.
    let deadline = Instant::now() + Duration::from_secs(8);
    let served = loop {
        let ok = ureq::get(&format!("{}/healthz", s.url))
            .timeout(Duration::from_secs(2))
            .call()
            .is_ok();
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        served,
        "the server stayed unreachable behind silent connections"
    );
    drop(hogs);
    let (_, metrics) = {
        let text = ureq::get(&format!("{}/metrics", s.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        (0, text)
    };
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("clip_refused_connections_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn shutdown_does_not_wait_for_a_half_sent_request() {
    let mut s = server_with(Limits {
        header_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(1),
        ..quick_limits()
    });
    let mut half = TcpStream::connect(addr(&s)).unwrap();
    half.write_all(b"POST /v1/embeddings HTTP/1.1\r\nhost: localhost\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    s.stop();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for a client",
        start.elapsed()
    );
}

#[test]
fn request_methods_cannot_grow_the_metrics() {
    let s = server_with(quick_limits());
    for i in 0..50 {
        let (status, _) = raw(
            &addr(&s),
            &format!(
                "METHOD{i} /v1/embeddings HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
            ),
        );
        assert!(status >= 400, "{status}");
    }
    let text = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let series = text
        .lines()
        .filter(|l| l.starts_with("clip_requests_total{"))
        .count();
    assert!(series < 10, "{series} series:\n{text}");
    assert!(!text.contains("METHOD1"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[test]
fn browser_driven_requests_are_refused() {
    let s = server_with(quick_limits());
    // A cross-site form or fetch with text/plain needs no CORS preflight: refused before the model.
    let (status, text) = raw(
        &addr(&s),
        "POST /v1/embeddings HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\ncontent-length: 19\r\nconnection: close\r\n\r\n{\"input\": [\"a cat\"]}",
    );
    assert_eq!(status, 415, "{text}");
    // DNS rebinding: the page's own host name, now pointing here.
    let (status, text) = raw(
        &addr(&s),
        "GET /v1/search?q=cat HTTP/1.1\r\nhost: evil.example:8080\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("evil.example"), "{text}");
    // Loopback names and IP literals are answered.
    for host in ["localhost:1", "127.0.0.1", "[::1]:8080"] {
        let (status, text) = raw(
            &addr(&s),
            &format!("GET /healthz HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{host}: {text}");
    }
    // Public liveness says nothing about the model.
    let (status, body) = s.get("/healthz");
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    // Named hosts can be allowed.
    let allowed = TestServer::start(ServeOptions {
        allowed_hosts: vec!["photos.lan".into()],
        limits: quick_limits(),
        ..ServeOptions::default()
    });
    let (status, _) = raw(
        &addr(&allowed),
        "GET /healthz HTTP/1.1\r\nhost: photos.lan:8080\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
}

/// A `width x height` all-black RGB PNG, small on the wire (zeros compress well), large decoded.
fn black_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().unwrap();
        let row = vec![0u8; width as usize * 3];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..height {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

#[test]
fn images_over_the_request_pixel_total_are_refused_before_decoding() {
    let s = server_with(Limits {
        max_request_pixels: 10_000_000,
        decode_budget_pixels: 50_000_000,
        ..quick_limits()
    });
    let img = base64::engine::general_purpose::STANDARD.encode(black_png(2000, 2000));
    let images: Vec<Value> = (0..3).map(|_| json!(img)).collect();
    let start = Instant::now();
    let (status, body) = s.post("/v1/similarity", &json!({"images": images, "texts": ["x"]}));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("12000000 pixels together"),
        "{body}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    // Two fit.
    let (status, body) = s.post(
        "/v1/similarity",
        &json!({"images": [img.clone(), img], "texts": ["x"]}),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_openai_wire_format_base64_dimensions_and_models() {
    let s = server_with(quick_limits());
    let (status, float) = s.post("/v1/embeddings", &json!({"input": ["a cat"], "model": "x"}));
    assert_eq!(status, 200, "{float}");
    let (status, b64) = s.post(
        "/v1/embeddings",
        &json!({"input": ["a cat"], "encoding_format": "base64"}),
    );
    assert_eq!(status, 200, "{b64}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let floats: Vec<f32> = float["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(decoded, floats);
    let (status, body) = s.post("/v1/embeddings", &json!({"input": ["a"], "dimensions": 32}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.post("/v1/embeddings", &json!({"input": ["a"], "dimensions": 16}));
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dimensions 16 is not supported"),
        "{body}"
    );
    let (status, body) = s.post(
        "/v1/embeddings",
        &json!({"input": ["a"], "encoding_format": "int8"}),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = s.get("/v1/models");
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["object"], "model");
}

#[test]
fn classify_prompts_over_the_context_are_truncated_as_the_cli_does() {
    let s = server_with(quick_limits());
    let long = "a photo of a cat ".repeat(40);
    let (status, body) = s.post(
        "/v1/classify",
        &json!({"images": [image_b64("chelsea_small.bmp")], "labels": [long, "a dog"]}),
    );
    assert_eq!(status, 200, "{body}");
    // Embeddings stay strict: an over-long input is a 400 naming it.
    let (status, body) = s.post("/v1/embeddings", &json!({"input": [long]}));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("input[0]"));
}

#[test]
fn a_custom_moderation_policy_is_served() {
    let policy = clip_tasks::moderation::Policy::from_toml_str(
        "name = \"mine\"\nversion = \"7\"\n[[category]]\nname = \"ok\"\nsafe = true\nprompts = [\"a photo\"]\n[[category]]\nname = \"cats\"\nthreshold = 0.5\nprompts = [\"a cat\"]\n",
        "test",
    )
    .unwrap();
    let s = TestServer::start(ServeOptions {
        policy: Some(policy),
        limits: quick_limits(),
        ..ServeOptions::default()
    });
    let (status, body) = s.post(
        "/v1/moderate",
        &json!({"images": [image_b64("chelsea_small.bmp")]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy"], "mine@7");
    assert_eq!(
        body["results"][0]["categories"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn the_index_is_reloaded_when_clip_index_adds_images_and_thumbnails_check_their_bytes() {
    let (dir, db) = build_index(&["chelsea_small.bmp", "camera_gray.jpg"]);
    let s = TestServer::start(ServeOptions {
        db: Some(db.clone()),
        limits: quick_limits(),
        reload_every: Some(Duration::from_millis(100)),
        ..ServeOptions::default()
    });
    assert_eq!(s.get("/v1/info").1["index"], 2);
    // `clip index` adds a photo while the server runs.
    let photos = dir.path().join("photos");
    std::fs::copy(image_path("coffee_lossy.webp"), photos.join("coffee.webp")).unwrap();
    reindex(&db, &photos);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get("/v1/info").1["index"] != 3 {
        assert!(Instant::now() < deadline, "the new image never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A file swapped since it was indexed: its content id no longer has a file.
    let (_, found) = s.get("/v1/search?q=a+cat&k=3");
    let hit = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("chelsea_small.bmp"))
        .unwrap()
        .clone();
    let thumbnail = hit["thumbnail"].as_str().unwrap().to_string();
    let response = ureq::get(&format!("{}{thumbnail}", s.url)).call().unwrap();
    assert_eq!(response.header("content-type"), Some("image/png"));
    std::fs::write(
        photos.join("chelsea_small.bmp"),
        b"root:x:0:0:root:/root:/bin/bash\n",
    )
    .unwrap();
    let (status, body) = into_json(ureq::get(&format!("{}{thumbnail}", s.url)).call());
    assert_eq!(status, 404, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no indexed file holds this content"),
        "{message}"
    );
    assert!(!message.contains("root:x"), "{message}");
}
