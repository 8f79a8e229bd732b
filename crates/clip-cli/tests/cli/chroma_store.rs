//! `clip index --store chroma://...` and `clip search --store ...` against a real Chroma server.
//! The server is `CLIP_TEST_CHROMA=host:port` when set; otherwise the test starts `chroma run`
//! itself when the `chroma` command is on PATH (`pip install chromadb`), and skips, saying so,
//! when neither is there.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;
use clip_fixtures::{committed, parity, read_goldens};
use serde_json::Value;

/// A `chroma run` this test started; stopped on drop.
struct Server {
    addr: String,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether `GET /api/v2/heartbeat` answers 200 (plain HTTP/1.0, no client library needed).
fn heartbeat(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    if conn
        .write_all(b"GET /api/v2/heartbeat HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

fn server() -> Option<Server> {
    if let Ok(addr) = std::env::var("CLIP_TEST_CHROMA") {
        assert!(heartbeat(&addr), "CLIP_TEST_CHROMA={addr} does not answer");
        return Some(Server {
            addr,
            child: None,
            _data: None,
        });
    }
    let data = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chroma")
        .args([
            "run",
            "--path",
            s(data.path()),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        // CI installs and provides Chroma (.ci/run): there a missing server is a failure.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Chroma server: `chroma` is not on PATH"
        );
        eprintln!(
            "SKIPPED: no Chroma server (set CLIP_TEST_CHROMA=host:port or put `chroma` on PATH)"
        );
        return None;
    };
    let server = Server {
        addr: format!("127.0.0.1:{port}"),
        child: Some(child),
        _data: Some(data),
    };
    let start = Instant::now();
    while !heartbeat(&server.addr) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "chroma run did not come up on {}",
            server.addr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(server)
}

fn results(v: &Value) -> Vec<(String, f64)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().into(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn chroma_store_indexes_syncs_and_answers_like_the_goldens() {
    let Some(server) = server() else { return };
    let g = read_goldens(&committed("goldens/tiny-vit.json"));
    let model = committed("models/tiny-vit.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let photos: PathBuf = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let query = "rocket_cmyk.jpg";
    for name in &g.images {
        if name != query {
            std::fs::copy(committed(&format!("images/good/{name}")), photos.join(name)).unwrap();
        }
    }
    let collection = format!(
        "clip-test-{}-{}",
        std::process::id(),
        dir.path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace('.', "")
    );
    let store = format!("chroma://{}/{collection}", server.addr);
    let db = dir.path().join("i.db");
    let index = |extra: &[&str]| {
        let mut a = vec![
            "index",
            s(&photos),
            "--model",
            s(&model),
            "--db",
            s(&db),
            "--store",
            &store,
            "--json",
        ];
        a.extend(extra);
        clip_json(&a)
    };
    let first = index(&[]);
    assert_eq!(first["store"]["upserted"], 21, "{first}");
    assert_eq!(
        index(&[])["store"],
        serde_json::json!({"upserted": 0, "deleted": 0})
    );

    // image query: the golden nearest of the indexed images comes first, with the golden cosine
    let qi = g.images.iter().position(|n| n == query).unwrap();
    let mut ranked: Vec<(f64, &str)> = (0..g.images.len())
        .filter(|&i| i != qi)
        .map(|i| {
            (
                parity(&g.image_embeddings[qi], &g.image_embeddings[i]).0,
                g.images[i].as_str(),
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert!(
        ranked[0].0 - ranked[1].0 > 1e-3,
        "golden tie: {:?}",
        &ranked[..2]
    );
    let image = committed(&format!("images/good/{query}"));
    let search = |args: &[&str]| {
        let mut a = vec!["search", "--store", &store, "--model", s(&model), "--json"];
        a.extend(args);
        results(&clip_json(&a))
    };
    let hits = search(&["--image", s(&image), "-k", "5"]);
    assert_eq!(hits.len(), 5);
    assert!(
        hits[0].0.ends_with(&format!("/{}", ranked[0].1)),
        "{hits:?} vs {:?}",
        &ranked[..2]
    );
    assert!((hits[0].1 - ranked[0].0).abs() < 1e-3);
    // the same answer as the embedded store's exact search
    let local = results(&clip_json(&[
        "search",
        "--image",
        s(&image),
        "--db",
        s(&db),
        "-k",
        "5",
        "--json",
    ]));
    assert_eq!(
        hits.iter().map(|h| &h.0).collect::<Vec<_>>(),
        local.iter().map(|h| &h.0).collect::<Vec<_>>()
    );

    // rename + delete reach the server
    let best = photos.join(ranked[0].1);
    let renamed = photos.join("renamed.img.png");
    std::fs::rename(&best, &renamed).unwrap();
    std::fs::remove_file(photos.join("tiny_7x5.png")).unwrap();
    let third = index(&[]);
    assert_eq!(
        third["store"],
        serde_json::json!({"upserted": 1, "deleted": 1}),
        "{third}"
    );
    let hits = search(&["--image", s(&image), "-k", "1"]);
    assert_eq!(hits[0].0, s(&renamed));

    // another preprocessing is another space: the collection refuses it
    let out = clip(&[
        "search",
        "a cat",
        "--store",
        &store,
        "--model",
        s(&model),
        "--exif-orientation",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds vectors of model space"));
}
