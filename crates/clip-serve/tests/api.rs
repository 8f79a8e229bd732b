//! The HTTP API through real HTTP on loopback, on the fixture model.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use clip::tokenizer::Overflow;
use clip_serve::{BatchConfig, Limits, ServeOptions};
use common::{assert_close, build_index, floats, image_b64, image_path, into_json, TestServer};
use serde_json::{json, Value};

fn limits() -> Limits {
    Limits {
        max_body_bytes: 1 << 20,
        max_pixels: 200_000,
        max_inputs: 8,
        ..Limits::default()
    }
}

fn server() -> TestServer {
    TestServer::start(ServeOptions {
        limits: limits(),
        ..ServeOptions::default()
    })
}

#[test]
fn embeddings_equal_the_library_normalised() {
    let s = server();
    let texts = ["a photo of a cat", "a diagram"];
    let images = ["chelsea_small.bmp", "coffee_lossy.webp"];
    let input = json!([
        texts[0],
        {"image": image_b64(images[0])},
        texts[1],
        format!("data:image/webp;base64,{}", image_b64(images[1])),
    ]);
    let (status, body) = s.post("/v1/embeddings", &json!({"model": "clip", "input": input}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["object"], "embedding");
    }

    let clip = clip::Clip::load(common::model_path()).unwrap();
    let want_texts = clip
        .encode_texts(&texts, Overflow::Error)
        .unwrap()
        .normalized();
    let decoded: Vec<_> = images
        .iter()
        .map(|n| clip::image::decode_file(&image_path(n), &Default::default()).unwrap())
        .collect();
    let want_images = clip.encode_images(&decoded).unwrap().normalized();
    assert_close(&floats(&data[0]["embedding"]), want_texts.row(0), "text 0");
    assert_close(
        &floats(&data[1]["embedding"]),
        want_images.row(0),
        "image 0",
    );
    assert_close(&floats(&data[2]["embedding"]), want_texts.row(1), "text 1");
    assert_close(
        &floats(&data[3]["embedding"]),
        want_images.row(1),
        "image 1",
    );

    // A single string is one input, as in OpenAI's API.
    let (status, body) = s.post("/v1/embeddings", &json!({"input": texts[0]}));
    assert_eq!(status, 200);
    assert_close(
        &floats(&body["data"][0]["embedding"]),
        want_texts.row(0),
        "single text",
    );
}

#[test]
fn classify_similarity_and_moderate() {
    let s = server();
    let img = image_b64("chelsea_small.bmp");
    let labels = ["a cat", "a dog", "a rocket"];
    let (status, body) = s.post("/v1/classify", &json!({"images": [img], "labels": labels}));
    assert_eq!(status, 200, "{body}");
    let scores = body["results"][0]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    let total: f64 = scores.iter().map(|s| s["prob"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);

    // Without templates the probabilities are the library's, as `clip similarity --probs`.
    let clip = clip::Clip::load(common::model_path()).unwrap();
    let image =
        clip::image::decode_file(&image_path("chelsea_small.bmp"), &Default::default()).unwrap();
    let want = clip_tasks::similarity::Similarity::new(
        &clip.encode_images(&[image]).unwrap(),
        &clip.encode_texts(&labels, Overflow::Truncate).unwrap(),
        &clip.scoring(),
    )
    .probs;
    for score in scores {
        let j = labels.iter().position(|l| *l == score["label"]).unwrap();
        assert!((score["prob"].as_f64().unwrap() as f32 - want[0][j]).abs() < 1e-4);
    }

    let (status, body) = s.post(
        "/v1/classify",
        &json!({"images": [img], "labels": labels, "templates": "simple", "top_k": 2}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["scores"].as_array().unwrap().len(), 2);

    let (status, body) = s.post(
        "/v1/similarity",
        &json!({"images": [img, img], "texts": labels}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cosine"].as_array().unwrap().len(), 2);
    assert_eq!(body["probs"][1].as_array().unwrap().len(), 3);

    let (status, body) = s.post("/v1/moderate", &json!({"images": [img]}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy"], "clip-rs-default@1");
    assert!(body["results"][0]["flagged"].is_boolean());
}

fn assert_error(status: u16, body: &Value, want: u16, needle: &str) {
    assert_eq!(status, want, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"));
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

#[test]
fn bad_requests_get_json_4xx_and_the_server_keeps_serving() {
    let s = server();
    let (st, b) = s.post_raw("/v1/embeddings", b"{\"input\": [\"a cat\"");
    assert_error(st, &b, 400, "invalid JSON");
    let (st, b) = s.post(
        "/v1/embeddings",
        &json!({"input": [{"image": "not base64!!"}]}),
    );
    assert_error(st, &b, 400, "invalid base64");
    let (st, b) = s.post(
        "/v1/embeddings",
        &json!({"input": [{"image": "aGVsbG8gd29ybGQ="}]}),
    );
    assert_error(st, &b, 400, "not an image (unrecognised format)");
    let (st, b) = s.post(
        "/v1/embeddings",
        &json!({"input": [{"image": image_b64("astronaut_progressive.jpg")}]}),
    );
    assert_error(st, &b, 400, "input[0]");
    let (st, b) = s.post("/v1/embeddings", &json!({"input": vec!["a cat"; 9]}));
    assert_error(st, &b, 400, "too many inputs");
    let (st, b) = s.post("/v1/embeddings", &json!({"input": []}));
    assert_error(st, &b, 400, "no inputs");
    let long = "word ".repeat(100);
    let (st, b) = s.post("/v1/embeddings", &json!({"input": ["ok", long]}));
    assert_error(st, &b, 400, "input[1]");
    let (st, b) = s.post("/v1/embeddings", &json!({"input": [[1, 2, 3]]}));
    assert_error(st, &b, 400, "token arrays");
    assert_oversized_body_is_refused_before_it_is_read(&s);
    let (st, b) = s.post("/v1/classify", &json!({"images": [image_b64("tiny_7x5.png")], "labels": ["a"], "templates": ["no placeholder"]}));
    assert_error(st, &b, 400, "placeholder");
    let (st, b) = s.get("/v1/search?q=a+cat");
    assert_error(st, &b, 404, "no --db given");
    let (st, b) = s.get("/v1/images/00");
    assert_error(st, &b, 404, "no --db given");
    let (st, b) = s.get("/nope");
    assert_error(st, &b, 404, "no such endpoint");
    let (st, b) = s.get("/v1/embeddings");
    assert_error(st, &b, 405, "method not allowed");

    let (status, body) = s.post("/v1/embeddings", &json!({"input": ["still alive"]}));
    assert_eq!(status, 200, "{body}");
    let (status, _) = s.get("/healthz");
    assert_eq!(status, 200);
}

/// A body announced over the limit is refused from its `Content-Length` before a byte of it is
/// read (the client may see a broken pipe while it still sends): speak HTTP by hand, declaring
/// 2 MiB against the 1 MiB limit.
fn assert_oversized_body_is_refused_before_it_is_read(s: &TestServer) {
    let addr = s.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/embeddings HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        2 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The answer may come (and the server close) before this is all written.
    let _ = stream.write_all(&vec![b' '; (1 << 20) + 4096]);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Read the response (not to EOF: the connection may stay open for the unsent body).
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let n = stream.read(&mut chunk).expect("a response within 10 s");
        assert!(
            n > 0,
            "connection closed without a full response: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((_, body)) = text.split_once("\r\n\r\n") {
            if let Ok(body) = serde_json::from_str::<Value>(body) {
                assert!(text.starts_with("HTTP/1.1 413"), "{text}");
                break body;
            }
        }
    };
    assert_error(413, &body, 413, "exceeds the limit of 1048576 bytes");
}

#[test]
fn bearer_token_guards_everything_but_healthz() {
    let s = TestServer::start(ServeOptions {
        token: Some("s3cret".into()),
        ..ServeOptions::default()
    });
    assert_eq!(s.get("/healthz").0, 200);
    let (st, b) = s.post("/v1/embeddings", &json!({"input": ["a cat"]}));
    assert_error(st, &b, 401, "token");
    let wrong = into_json(
        ureq::post(&format!("{}/v1/embeddings", s.url))
            .set("authorization", "Bearer nope")
            .send_json(json!({"input": ["a"]})),
    );
    assert_eq!(wrong.0, 401);
    assert_eq!(s.get("/metrics").0, 401);
    let right = into_json(
        ureq::post(&format!("{}/v1/embeddings", s.url))
            .set("authorization", "Bearer s3cret")
            .send_json(json!({"input": ["a"]})),
    );
    assert_eq!(right.0, 200, "{}", right.1);
}

/// Sixteen single-text requests at once: the model thread must see fewer, larger batches.
#[test]
fn concurrent_requests_are_batched() {
    let s = TestServer::start(ServeOptions {
        batch: BatchConfig {
            max_batch: 16,
            max_wait: Duration::from_millis(100),
        },
        ..ServeOptions::default()
    });
    let url = format!("{}/v1/embeddings", s.url);
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                into_json(ureq::post(&url).send_json(json!({"input": [format!("photo {i}")]}))).0
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let value = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (sum, count) = (
        value("clip_batch_size_sum{kind=\"text\"}"),
        value("clip_batch_size_count{kind=\"text\"}"),
    );
    assert_eq!(sum, 16.0);
    assert!(
        count < 16.0,
        "16 inputs ran in {count} batches: no batching"
    );
    assert!(
        metrics.contains(
            "clip_requests_total{route=\"/v1/embeddings\",method=\"POST\",status=\"200\"} 16"
        ),
        "{metrics}"
    );
    assert!(metrics
        .contains("clip_request_duration_seconds_bucket{route=\"/v1/embeddings\",le=\"+Inf\"} 16"));
    assert!(metrics.contains("clip_queue_depth 0"));
}

#[test]
fn a_full_queue_answers_429() {
    let s = TestServer::start(ServeOptions {
        limits: Limits {
            queue_capacity: 2,
            ..Limits::default()
        },
        ..ServeOptions::default()
    });
    let (st, b) = s.post("/v1/embeddings", &json!({"input": ["a", "b", "c"]}));
    assert_error(st, &b, 429, "queue is full");
    assert_eq!(
        s.post("/v1/embeddings", &json!({"input": ["a", "b"]})).0,
        200
    );
}

/// Requests waiting in the batcher when shutdown is asked for still get their answers.
#[test]
fn graceful_shutdown_drains_in_flight_requests() {
    let mut s = TestServer::start(ServeOptions {
        batch: BatchConfig {
            max_batch: 64,
            max_wait: Duration::from_millis(300),
        },
        ..ServeOptions::default()
    });
    let url = format!("{}/v1/embeddings", s.url);
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                into_json(ureq::post(&url).send_json(json!({"input": [format!("t{i}")]}))).0
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    s.stop();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert!(
        ureq::get(&format!("{}/healthz", s.url)).call().is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn search_text_and_image_with_thumbnails() {
    let names = [
        "chelsea_small.bmp",
        "coffee_lossy.webp",
        "rocket_cmyk.jpg",
        "camera_gray.jpg",
        "coins_la.png",
    ];
    let (_dir, db) = build_index(&names);
    let s = TestServer::start(ServeOptions {
        db: Some(db),
        ..ServeOptions::default()
    });
    assert_eq!(s.get("/v1/info").1["index"], 5);

    let (status, body) = s.get("/v1/search?q=a+cat&k=3");
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not best first: {scores:?}"
    );

    // An indexed image is its own best match, with cosine 1.
    let (status, body) = s.post(
        "/v1/search",
        &json!({"image": image_b64("rocket_cmyk.jpg"), "k": 1}),
    );
    assert_eq!(status, 200, "{body}");
    let best = &body["results"][0];
    assert!(
        best["path"].as_str().unwrap().ends_with("rocket_cmyk.jpg"),
        "{best}"
    );
    assert!((best["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);

    let (status, body) = s.get("/v1/search?q=a+cat&threshold=2");
    assert_eq!(status, 200);
    assert!(body["results"].as_array().unwrap().is_empty());

    let thumb = ureq::get(&format!("{}{}", s.url, best["thumbnail"].as_str().unwrap()))
        .call()
        .unwrap();
    assert_eq!(thumb.content_type(), "image/png");
    let mut bytes = Vec::new();
    thumb.into_reader().read_to_end(&mut bytes).unwrap();
    let image = clip::image::decode_bytes(&bytes, "thumbnail", &Default::default()).unwrap();
    assert_eq!((image.width(), image.height()), (256, 256));

    let (st, b) = s.get(&format!("/v1/images/{}", "0".repeat(64)));
    assert_error(st, &b, 404, "no indexed image");
    let (st, b) = s.get("/v1/search?k=3");
    assert_error(st, &b, 400, "nothing to search for");
}

#[test]
fn openapi_document_lists_every_endpoint() {
    let s = server();
    let (status, doc) = s.get("/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/embeddings",
        "/v1/classify",
        "/v1/similarity",
        "/v1/moderate",
        "/v1/search",
        "/v1/images/{id}",
        "/healthz",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    let page = ureq::get(&format!("{}/", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains("<script src=\"/app.js\">"));
}
