//! The search page in a real browser: headless Chromium loads `/?q=...` (the page runs the search
//! from the URL), and the test checks the rendered DOM's result grid and a screenshot.
//!
//! Needs Debian's `chromium` (or `CHROMIUM=/path/to/chrome`). Without it the test is skipped with
//! a message, except under `CI=true`, where a missing browser is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use clip_serve::ServeOptions;
use common::{build_index, TestServer};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium with `args` on `url` in a throwaway profile; returns stdout.
fn run_chromium(browser: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Virtual time waits for the page's fetches (search, thumbnails) before dumping.
        .arg("--virtual-time-budget=15000")
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn search_page_renders_results_in_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium not found under CI=true: install `chromium` (apt-get install -y chromium chromium-driver)");
        }
        eprintln!("SKIPPED search_page_renders_results_in_chromium: no chromium on PATH (set CHROMIUM=/path or install it)");
        return;
    };
    let names = [
        "chelsea_small.bmp",
        "coffee_lossy.webp",
        "rocket_cmyk.jpg",
        "camera_gray.jpg",
        "coins_la.png",
    ];
    let (dir, db) = build_index(&names);
    let server = TestServer::start(ServeOptions {
        db: Some(db),
        ..ServeOptions::default()
    });
    let url = format!("{}/?q=a+photo+of+a+cat&k=4", server.url);

    let dom = run_chromium(
        &browser,
        &dir.path().join("profile-dom"),
        &["--dump-dom"],
        &url,
    );
    assert!(
        dom.contains("data-state=\"done\""),
        "the search did not finish:\n{dom}"
    );
    assert!(
        dom.contains("id=\"results\" class=\"grid\" data-count=\"4\""),
        "no grid of 4 results:\n{dom}"
    );
    assert_eq!(dom.matches("<figure class=\"result\"").count(), 4, "{dom}");
    assert!(dom.contains("src=\"/v1/images/"), "no thumbnails:\n{dom}");
    assert!(dom.contains("4 results"), "{dom}");

    // Screenshot next to the test binaries, so a person can look at it after a run.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clip-serve-search.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    run_chromium(
        &browser,
        &dir.path().join("profile-shot"),
        &[&arg, "--window-size=1200,900"],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    let image = clip::image::decode_bytes(&png, "screenshot", &Default::default()).unwrap();
    assert_eq!((image.width(), image.height()), (1200, 900));
    // A blank page compresses to a few KB; thumbnails and text make it far larger.
    assert!(
        png.len() > 30_000,
        "screenshot looks empty ({} bytes): {}",
        png.len(),
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
