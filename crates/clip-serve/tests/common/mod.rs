//! A real server on a loopback port (port 0: the OS picks a free one) in its own runtime thread,
//! and small helpers for the blocking HTTP client.

#![allow(dead_code)] // each test binary uses part of this module

use std::path::PathBuf;
use std::thread::JoinHandle;

use base64::Engine;
use clip_serve::{ServeOptions, Server};
use serde_json::Value;

pub fn model_path() -> PathBuf {
    clip_fixtures::committed("models/tiny-vit.safetensors")
}

pub fn image_path(name: &str) -> PathBuf {
    clip_fixtures::committed(&format!("images/good/{name}"))
}

pub fn image_b64(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(image_path(name)).unwrap())
}

pub struct TestServer {
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(options: ServeOptions) -> TestServer {
        let clip = clip::Clip::load(model_path()).expect("fixture model loads");
        let server = Server::new(clip, options).expect("server starts");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime
                .block_on(server.run(listener, async {
                    let _ = rx.await;
                }))
                .unwrap();
        });
        TestServer {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Asks for a graceful shutdown and waits until the server (and its model thread) stopped.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        into_json(ureq::get(&format!("{}{path}", self.url)).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        into_json(ureq::post(&format!("{}{path}", self.url)).send_json(body))
    }

    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        into_json(
            ureq::post(&format!("{}{path}", self.url))
                .set("content-type", "application/json")
                .send_bytes(body),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Status and JSON body, for successes and HTTP errors alike.
pub fn into_json(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, json)
}

/// Builds an index of `names` (copied into a temporary folder's `photos/`) with the fixture
/// model.
pub fn build_index(names: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for name in names {
        std::fs::copy(image_path(name), photos.join(name)).unwrap();
    }
    let db = dir.path().join("index.db");
    reindex(&db, &photos);
    (dir, db)
}

/// Runs an index pass of `photos` into `db`, as `clip index` does.
pub fn reindex(db: &std::path::Path, photos: &std::path::Path) {
    let clip = clip::Clip::load(model_path()).unwrap();
    let mut store = clip_index::CatalogStore::open(db).unwrap();
    let space = clip_index::Space::of(
        &clip,
        &model_path().display().to_string(),
        &Default::default(),
    )
    .unwrap();
    clip_index::index(
        &clip,
        &mut store,
        &space,
        &[photos.to_path_buf()],
        &Default::default(),
        &mut |_| {},
    )
    .unwrap();
}

pub fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "{what}: max abs difference {worst}");
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
