//! Unlucky and hostile inputs through the real binary: file names that are not UTF-8, FIFOs and
//! devices where files are expected, numbers that are not numbers, databases that do not exist
//! or whose vectors were damaged. Each must give a clear error (exit 2) or a per-file failure,
//! never a panic, a hang or lost work.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// `clip` with arguments that may not be UTF-8.
fn clip_os(args: &[&std::ffi::OsStr]) -> Output {
    clip_command(&process_cache())
        .args(args)
        .output()
        .expect("run clip")
}

/// Runs `clip` and kills it if it has not finished within `limit` (a hang is a failure).
fn clip_within(args: &[&str], limit: Duration) -> Output {
    let mut child = clip_command(&process_cache())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run clip");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("clip {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
fn non_utf8(dir: &Path, stem: &[u8], ext: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut name = stem.to_vec();
    name.extend_from_slice(ext.as_bytes());
    dir.join(std::ffi::OsStr::from_bytes(&name))
}

#[cfg(unix)]
#[test]
fn file_names_that_are_not_utf8_never_abort_a_run() {
    let dir = tempdir("hostile-names");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(good("chelsea_small.bmp"), photos.join("a.bmp")).unwrap();
    let odd = non_utf8(&photos, b"caf\xe9", ".png");
    std::fs::copy(good("logo_rgba.png"), &odd).unwrap();
    let m = model();

    // The export goes on: the odd name is a per-file failure, the rest is written.
    let out = dir.join("export");
    let report = clip_json(&[
        "embed",
        "--model",
        s(&m),
        "--output",
        s(&out),
        "--image-dir",
        s(&photos),
    ]);
    assert_eq!(
        (report["images"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let failed = std::fs::read_to_string(out.join("failed_0.jsonl")).unwrap();
    assert!(failed.contains("not valid UTF-8"), "{failed}");

    // Commands whose JSON needs every image refuse, naming the file; none panics.
    for cmd in [
        vec![
            "embed".as_ref(),
            "--model".as_ref(),
            m.as_os_str(),
            "--image".as_ref(),
            odd.as_os_str(),
        ],
        vec![
            "classify".as_ref(),
            odd.as_os_str(),
            "--labels".as_ref(),
            "a,b".as_ref(),
            "--json".as_ref(),
            "--model".as_ref(),
            m.as_os_str(),
        ],
    ] {
        let out = clip_os(&cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("not valid UTF-8") && err.contains("caf"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // The table output of classify has no such limit.
    let out = clip_os(&[
        "classify".as_ref(),
        odd.as_os_str(),
        "--labels".as_ref(),
        "a,b".as_ref(),
        "--model".as_ref(),
        m.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Moderation: the other images get their verdicts, the odd one is an error (exit 2).
    let out = clip(&["moderate", s(&photos), "--json", "--model", s(&m)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let verdicts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdicts["results"].as_array().unwrap().len(), 1);

    // A model path that is not UTF-8 is echoed, not a panic.
    let odd_model = non_utf8(&dir, b"mod\xe8le", ".safetensors");
    std::fs::copy(&m, &odd_model).unwrap();
    let out = clip_os(&[
        "embed".as_ref(),
        "--model".as_ref(),
        odd_model.as_os_str(),
        "--text".as_ref(),
        "a".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // So is a cache folder that is not UTF-8.
    let odd_cache = non_utf8(&dir, b"cach\xe9", "");
    let out = clip_command(&odd_cache)
        .args(["models", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_not_read() {
    let dir = tempdir("hostile-fifo");
    let fifo = dir.join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let m = model();
    let limit = Duration::from_secs(20);
    for (args, needle) in [
        (
            vec!["embed", "--model", s(&m), "--image", s(&fifo)],
            "not a regular file (a FIFO)",
        ),
        (
            vec!["embed", "--model", s(&m), "--image", "/dev/zero"],
            "not a regular file (a device)",
        ),
        (
            vec!["embed", "--model", s(&fifo), "--text", "a"],
            "not a regular file",
        ),
        (
            vec!["embed", "--model", "/dev/zero", "--text", "a"],
            "not a regular file",
        ),
        (
            vec![
                "classify",
                s(&good("chelsea_small.bmp")),
                "--model",
                s(&m),
                "--labels-file",
                s(&fifo),
            ],
            "not a regular file",
        ),
    ] {
        let out = clip_within(&args, limit);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn numbers_that_are_not_numbers_and_impossible_sizes_are_refused() {
    let m = model();
    let img = good("chelsea_small.bmp");
    for (args, needle) in [
        (
            vec![
                "classify",
                s(&img),
                "--model",
                s(&m),
                "--labels",
                "a,b",
                "--multi-label",
                "--threshold",
                "NaN",
            ],
            "not a finite number",
        ),
        (
            vec!["search", "a cat", "--model", s(&m), "--threshold", "inf"],
            "not a finite number",
        ),
        (
            vec!["serve", "--model", s(&m), "--max-queue", "0"],
            "--max-queue",
        ),
        (
            vec!["serve", "--model", s(&m), "--max-inputs", "0"],
            "--max-inputs",
        ),
        (
            vec!["serve", "--model", s(&m), "--timeout-secs", "0"],
            "--timeout-secs",
        ),
        (
            vec![
                "serve",
                "--model",
                s(&m),
                "--host",
                "0.0.0.0",
                "--port",
                "0",
            ],
            "without --token",
        ),
        (
            vec![
                "bench", "--arch", "ViT-B/32", "--batch", "100000", "--rounds", "1",
            ],
            "use a smaller batch",
        ),
    ] {
        let out = clip_within(&args, Duration::from_secs(60));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn read_only_commands_never_create_a_database() {
    let dir = tempdir("hostile-db");
    let missing = dir.join("typo/new.db");
    let m = model();
    for args in [
        vec!["search", "a cat", "--model", s(&m), "--db", s(&missing)],
        vec!["index", "--status", "--db", s(&missing)],
        vec!["search", "a cat", "--db", s(&missing)],
    ] {
        let out = clip(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("typo/new.db") && err.contains("no such index"),
            "{err}"
        );
    }
    assert!(!dir.join("typo").exists(), "a folder was created");
}

#[test]
fn a_damaged_vector_is_skipped_reported_and_repaired_by_the_next_index_run() {
    let dir = tempdir("hostile-vectors");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["chelsea_small.bmp", "camera_gray.jpg", "coffee_lossy.webp"] {
        std::fs::copy(good(name), photos.join(name)).unwrap();
    }
    let db = dir.join("index.db");
    let m = model();
    clip_json(&[
        "index",
        s(&photos),
        "--model",
        s(&m),
        "--db",
        s(&db),
        "--json",
    ]);
    // A 7-byte blob where a vector was.
    let sqlite = rusqlite_update(&db, "UPDATE vectors SET data = x'00010203040506' WHERE hash = (SELECT hash FROM vectors LIMIT 1)");
    assert_eq!(sqlite, 1);
    let status = clip_json(&["index", "--status", "--db", s(&db), "--json"]);
    assert_eq!(status["damaged"], 1, "{status}");
    // Searches still answer, without the damaged row, and say so.
    let out = clip(&[
        "search",
        "a cat",
        "--model",
        s(&m),
        "--db",
        s(&db),
        "--json",
        "-k",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["results"].as_array().unwrap().len(), 2);
    // The next run embeds that content again.
    let report = clip_json(&[
        "index",
        s(&photos),
        "--model",
        s(&m),
        "--db",
        s(&db),
        "--json",
    ]);
    assert_eq!(report["embedded"], 1, "{report}");
    let status = clip_json(&["index", "--status", "--db", s(&db), "--json"]);
    assert_eq!(
        (status["damaged"].as_u64(), status["images"].as_u64()),
        (Some(0), Some(3))
    );
}

/// Runs one SQL statement on the index with the sqlite3 command (as a disk error or another
/// program would change it); returns the rows changed.
fn rusqlite_update(db: &Path, sql: &str) -> usize {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); n=c.execute(sys.argv[2]).rowcount; c.commit(); print(n)",
        ])
        .arg(db)
        .arg(sql)
        .output()
        .expect("python3 with sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
