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
