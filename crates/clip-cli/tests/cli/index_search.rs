//! End-to-end tests of `clip index` and `clip search` through the real binary, on the tiny-vit
//! fixture model (random weights). Rankings are checked against the reference goldens, never
//! against our own earlier output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::util::*;
use clip_fixtures::{committed, read_goldens, ModelGoldens};
use serde_json::Value;

fn goldens() -> ModelGoldens {
    read_goldens(&committed("goldens/tiny-vit.json"))
}

/// A temp folder with a `photos/` folder and an index path.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("photos")).unwrap();
        Self { dir }
    }
    fn photos(&self) -> PathBuf {
        self.dir.path().join("photos").canonicalize().unwrap()
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("index.db")
    }
    /// Copies fixture images (from `images/<sub>/`) into `photos/`.
    fn add_fixtures(&self, sub: &str, skip: &[&str]) {
        for e in std::fs::read_dir(committed(&format!("images/{sub}"))).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if !skip.contains(&name.as_str()) {
                std::fs::copy(e.path(), self.photos().join(name)).unwrap();
            }
        }
    }
    fn index(&self, extra: &[&str]) -> Value {
        let (photos, model, db) = (self.photos(), model(), self.db());
        let mut args = vec!["index", s(&photos), "--model", s(&model)];
        args.extend(["--db", s(&db), "--json"]);
        args.extend(extra);
        clip_json(&args)
    }
    fn status(&self) -> Value {
        clip_json(&["index", "--status", "--db", s(&self.db()), "--json"])
    }
    /// `clip search ... --json` result paths and scores.
    fn search(&self, args: &[&str]) -> Vec<(String, f64)> {
        let db = self.db();
        let mut all = vec!["search", "--db", s(&db), "--json"];
        all.extend(args);
        let out = clip_json(&all);
        out["results"]
            .as_array()
            .expect("results array")
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap().to_string(),
                    r["score"].as_f64().unwrap(),
                )
            })
            .collect()
    }
}

fn counts(report: &Value) -> [u64; 5] {
    ["found", "embedded", "reused", "unchanged", "removed"].map(|k| report[k].as_u64().unwrap())
}

fn golden_cosine(a: &[f32], b: &[f32]) -> f64 {
    clip_fixtures::parity(a, b).0
}

/// An uncompressed 24-bit BMP whose pixels depend on `seed` (distinct seeds, distinct bytes).
fn write_bmp(path: &Path, width: u32, height: u32, seed: u32) {
    let row = (width * 3).div_ceil(4) * 4;
    let size = 54 + row * height;
    let mut b = Vec::with_capacity(size as usize);
    b.extend_from_slice(b"BM");
    for v in [size, 0, 54, 40] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&width.to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    for v in [0u32, row * height, 2835, 2835, 0, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for _ in 0..height {
        for i in 0..row {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b.push(if i < width * 3 { (x >> 24) as u8 } else { 0 });
        }
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn index_reports_status_and_a_rerun_is_a_no_op() {
    let scene = Scene::new();
    scene.add_fixtures("good", &[]);
    scene.add_fixtures("bad", &[]);
    std::fs::write(scene.photos().join("notes.txt"), "not an image").unwrap();
    std::fs::write(scene.photos().join(".hidden.png"), "hidden").unwrap();
    let first = scene.index(&["--batch-size", "4"]);
    assert_eq!(counts(&first), [30, 22, 0, 0, 0], "{first}");
    let failed: Vec<&str> = first["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 8);
    assert!(
        failed.iter().any(|p| p.ends_with("text_named.jpg"))
            && failed.iter().any(|p| p.ends_with("bomb_60000x60000.png"))
    );

    let status = scene.status();
    let expected = serde_json::json!({"images": 22, "failed": 8, "damaged": 0, "model": s(&model()), "dim": 32});
    assert_eq!(status, expected);

    let again = scene.index(&[]);
    assert_eq!(counts(&again), [30, 0, 0, 30, 0], "{again}");
    assert_eq!(scene.status(), expected);

    // The human status lists the failures with their reasons.
    let out = clip(&["index", "--status", "--db", s(&scene.db())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("empty.jpg: empty file"), "{text}");
}

#[test]
fn touch_modify_rename_delete_and_duplicate() {
    let scene = Scene::new();
    scene.add_fixtures("good", &[]);
    scene.index(&[]);
    let photos = scene.photos();
    let cat = photos.join("chelsea_small.bmp");

    // touch: new mtime, same bytes -> hashed again, not embedded again
    let f = std::fs::File::options().write(true).open(&cat).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);
    assert_eq!(counts(&scene.index(&[])), [22, 0, 1, 21, 0]);

    // modify: new content -> embedded
    write_bmp(&photos.join("camera_gray.jpg"), 40, 30, 7);
    assert_eq!(counts(&scene.index(&[])), [22, 1, 0, 21, 0]);

    // rename (into a subfolder): keeps its embedding, the old path leaves the index
    std::fs::create_dir(photos.join("moved")).unwrap();
    let moved = photos.join("moved/cat.bmp");
    std::fs::rename(&cat, &moved).unwrap();
    assert_eq!(counts(&scene.index(&[])), [22, 0, 1, 21, 1]);
    let hits = scene.search(&["--image", s(&moved), "-k", "1"]);
    assert_eq!(hits[0].0, s(&moved));
    assert!(hits[0].1 > 0.9999, "{hits:?}");

    // delete
    std::fs::remove_file(photos.join("tiny_7x5.png")).unwrap();
    assert_eq!(counts(&scene.index(&[])), [21, 0, 0, 21, 1]);
    assert_eq!(scene.status()["images"], 21);

    // duplicate: a separate file sharing one embedding
    let copy = photos.join("copy of cat.bmp");
    std::fs::copy(&moved, &copy).unwrap();
    assert_eq!(counts(&scene.index(&[])), [22, 0, 1, 21, 0]);
    assert_eq!(scene.status()["images"], 22);
    let hits = scene.search(&["--image", s(&moved), "-k", "2"]);
    let mut top: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
    top.sort();
    assert_eq!(top, vec![s(&copy), s(&moved)]);
    assert_eq!(hits[0].1, hits[1].1);
}

/// For a query image left out of the index, the nearest indexed image by the reference's golden
/// embeddings must come first (cases where the golden top two are within 1e-3 are ties, skipped).
#[test]
fn image_query_returns_the_golden_nearest_image_first() {
    let g = goldens();
    let mut checked = 0;
    for (qi, query) in g.images.iter().enumerate().filter(|(_, n)| {
        [
            "chelsea_small.bmp",
            "rocket_cmyk.jpg",
            "coffee_lossy.webp",
            "coins_la.png",
        ]
        .contains(&n.as_str())
    }) {
        let mut ranked: Vec<(f64, &str)> = g
            .images
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != qi)
            .map(|(i, name)| {
                (
                    golden_cosine(&g.image_embeddings[qi], &g.image_embeddings[i]),
                    name.as_str(),
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        if ranked[0].0 - ranked[1].0 < 1e-3 {
            continue;
        }
        let scene = Scene::new();
        scene.add_fixtures("good", &[query]);
        scene.index(&[]);
        let hits = scene.search(&[
            "--image",
            s(&committed(&format!("images/good/{query}"))),
            "-k",
            "3",
        ]);
        assert!(
            hits[0].0.ends_with(&format!("/{}", ranked[0].1)),
            "query {query}: got {hits:?}, golden {ranked:?}"
        );
        assert!(
            (hits[0].1 - ranked[0].0).abs() < 1e-3,
            "score {} vs golden {}",
            hits[0].1,
            ranked[0].0
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} query images had a clear golden nearest neighbour"
    );
}

#[test]
fn text_query_returns_the_golden_nearest_image_first_and_f16_agrees() {
    let g = goldens();
    let scene = Scene::new();
    scene.add_fixtures("good", &[]);
    scene.index(&["--f16"]);
    let mut checked = 0;
    for (ti, text) in g.texts.iter().enumerate().take(8) {
        let mut ranked: Vec<(f64, &str)> = g
            .images
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    golden_cosine(&g.text_embeddings[ti], &g.image_embeddings[i]),
                    name.as_str(),
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        if ranked[0].0 - ranked[1].0 < 2e-3 {
            continue;
        }
        for extra in [&[][..], &["--f16"][..]] {
            let mut args = vec![text.as_str(), "-k", "1"];
            args.extend(extra);
            let hits = scene.search(&args);
            assert!(
                hits[0].0.ends_with(&format!("/{}", ranked[0].1)),
                "{text:?}: got {hits:?}, golden {:?}",
                &ranked[..2]
            );
            assert!((hits[0].1 - ranked[0].0).abs() < 2e-3);
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} texts had a clear golden nearest image"
    );
}

/// `--plus`/`--minus` rank by the normalised weighted sum of normalised embeddings; the expected
/// order is recomputed here from `clip embed`.
#[test]
fn combined_query_ranks_by_the_weighted_sum() {
    let scene = Scene::new();
    scene.add_fixtures("good", &[]);
    scene.index(&[]);
    let image = committed("images/good/rocket_cmyk.jpg");
    let mut args = vec!["embed".to_string(), "--model".into(), s(&model()).into()];
    args.extend([
        "--image".into(),
        s(&image).into(),
        "--text".into(),
        "a cat".into(),
        "--text".into(),
        "at night".into(),
    ]);
    let mut names: Vec<PathBuf> = std::fs::read_dir(scene.photos())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for n in &names {
        args.extend(["--image".into(), s(n).into()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let emb = clip_json(&argv);
    let vec_of = |v: &Value| -> Vec<f64> {
        v["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let imgs: Vec<Vec<f64>> = emb["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(vec_of)
        .collect();
    let txts: Vec<Vec<f64>> = emb["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(vec_of)
        .collect();
    // query = image + 0.5 * "a cat" - 0.25 * "at night" (each normalised; `embed` already is)
    let q: Vec<f64> = (0..imgs[0].len())
        .map(|i| imgs[0][i] + 0.5 * txts[0][i] - 0.25 * txts[1][i])
        .collect();
    let norm = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut expected: Vec<(f64, String)> = names
        .iter()
        .zip(&imgs[1..])
        .map(|(n, v)| {
            (
                q.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / norm,
                s(n).to_string(),
            )
        })
        .collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0));

    let hits = scene.search(&[
        "--image",
        s(&image),
        "--plus",
        "a cat",
        "--plus-weight",
        "0.5",
        "--minus",
        "at night",
        "--minus-weight",
        "0.25",
        "-k",
        "5",
    ]);
    assert_eq!(hits.len(), 5);
    for (h, e) in hits.iter().zip(&expected) {
        assert!((h.1 - e.0).abs() < 1e-4, "{hits:?} vs {expected:?}");
    }
    assert_eq!(hits[0].0, expected[0].1);
    // --threshold keeps only scores at least it
    let above = scene.search(&["--image", s(&image), "--threshold", "0.99"]);
    assert!(
        above.iter().all(|h| h.1 >= 0.99) && above.len() < 22,
        "{above:?}"
    );
}

#[test]
fn texts_file_ranks_captions_as_the_golden_logits_do() {
    let g = goldens();
    let dir = tempfile::tempdir().unwrap();
    let captions: Vec<&str> = g.texts[..6].iter().map(String::as_str).collect();
    let file = dir.path().join("captions.txt");
    std::fs::write(&file, captions.join("\n")).unwrap();
    let qi = g
        .images
        .iter()
        .position(|n| n == "chelsea_small.bmp")
        .unwrap();
    let image = committed("images/good/chelsea_small.bmp");
    let out = clip_json(&[
        "search",
        "--image",
        s(&image),
        "--texts-file",
        s(&file),
        "--model",
        s(&model()),
        "--json",
    ]);
    let rows = out["results"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let mut golden: Vec<(f64, &str)> = (0..6)
        .map(|t| {
            (
                g.logits_per_image[qi][t] as f64 / g.logit_scale_exp,
                captions[t],
            )
        })
        .collect();
    golden.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert_eq!(rows[0]["text"].as_str(), Some(golden[0].1));
    for (r, (score, text)) in rows.iter().zip(&golden) {
        let ours = captions
            .iter()
            .position(|c| Some(*c) == r["text"].as_str())
            .unwrap();
        let want = g.logits_per_image[qi][ours] as f64 / g.logit_scale_exp;
        assert!(
            (r["score"].as_f64().unwrap() - want).abs() < 1e-4,
            "{text}: {r} vs {score}"
        );
    }
}

#[test]
fn errors_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("i.db");
    let fails = |args: &[&str], needle: &str| {
        let out = clip(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    };
    fails(
        &[
            "index",
            "/no/such/folder",
            "--model",
            s(&model()),
            "--db",
            s(&db),
        ],
        "/no/such/folder",
    );
    fails(&["search", "a cat", "--db", s(&db)], "run `clip index`");
    fails(
        &["search", "a cat", "--db", s(&db), "--model", s(&model())],
        "no images embedded",
    );
    fails(
        &["search", "--db", s(&db), "--model", s(&model())],
        "nothing to search for",
    );
    let status = clip_json(&["index", "--status", "--db", s(&db), "--json"]);
    assert_eq!(
        status,
        serde_json::json!({"images": 0, "failed": 0, "damaged": 0, "model": null, "dim": 0})
    );
}

/// A child process that a failed assertion does not leave running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills an index run with SIGKILL mid-way (while a search runs against the same database), then
/// proves the next run finishes the job: every image indexed once, nothing embedded twice.
#[test]
fn sigkill_mid_run_loses_at_most_the_batch_in_flight() {
    const N: u32 = 400;
    let scene = Scene::new();
    for i in 0..N {
        write_bmp(&scene.photos().join(format!("gen_{i:04}.bmp")), 192, 144, i);
    }
    let db = scene.db();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_clip"))
            .args([
                "index",
                s(&scene.photos()),
                "--model",
                s(&model()),
                "--db",
                s(&db),
                "--batch-size",
                "2",
                "--workers",
                "1",
            ])
            .env_remove("CLIP_MODEL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let mut searched = false;
    let indexed_before_kill = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no progress seen"
        );
        // The index run creates the file before its first transaction: until then the file is
        // not an index yet, and `--status` says so (exit 2), which counts as nothing indexed.
        let out = clip(&["index", "--status", "--db", s(&db), "--json"]);
        let n = if out.status.success() {
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["images"]
                .as_u64()
                .unwrap()
        } else {
            0
        };
        if n >= 10 && !searched {
            // a reader during the write: it sees committed batches only
            let hits = scene.search(&[
                "--image",
                s(&scene.photos().join("gen_0000.bmp")),
                "-k",
                "1000",
            ]);
            assert!(hits.len() as u64 >= n, "{} hits, {n} indexed", hits.len());
            searched = true;
        }
        if n >= 20 {
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "the run ended before it could be killed; make it longer"
            );
            child.0.kill().unwrap(); // SIGKILL
            child.0.wait().unwrap();
            break scene.status()["images"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        searched && indexed_before_kill < N as u64,
        "{indexed_before_kill}"
    );

    let resumed = scene.index(&[]);
    let [found, embedded, reused, unchanged, removed] = counts(&resumed);
    assert_eq!((found, removed, reused), (N as u64, 0, 0), "{resumed}");
    assert_eq!(
        unchanged, indexed_before_kill,
        "committed files are not touched again"
    );
    assert_eq!(
        embedded + unchanged,
        N as u64,
        "nothing embedded twice, nothing lost"
    );
    assert_eq!(scene.status()["images"], N);
    let hits = scene.search(&[
        "--image",
        s(&scene.photos().join("gen_0000.bmp")),
        "-k",
        "100000",
    ]);
    let mut paths: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), N as usize, "every image exactly once");
    assert_eq!(counts(&scene.index(&[])), [N as u64, 0, 0, N as u64, 0]);
}
