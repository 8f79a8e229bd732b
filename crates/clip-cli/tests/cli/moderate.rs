//! `clip moderate`: JSON schema, exit codes 0 clean / 1 flagged / 2 error, policy files.
//! The fixture model's weights are random, so verdicts are forced through policies whose scores
//! are known without the model: a category with the same prompts as the safe one scores exactly
//! 0.5 (two equal logits), whatever the image.

use std::path::{Path, PathBuf};

use crate::util::*;
use clip_fixtures::committed;
use serde_json::Value;

fn policy(dir: &Path, threshold: f32) -> PathBuf {
    let path = dir.join(format!("policy-{threshold}.toml"));
    let text = format!(
        "name = \"test\"\nversion = \"7\"\n\
         [[category]]\nname = \"safe\"\nsafe = true\nprompts = [\"a photo\", \"a picture\"]\n\
         [[category]]\nname = \"twin\"\nthreshold = {threshold}\nprompts = [\"a photo\", \"a picture\"]\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn moderate(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = clip(args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), json, stderr(&out))
}

fn check_schema(out: &Value, policy_id: &str, n: usize) {
    assert_eq!(out["policy"].as_str(), Some(policy_id));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    for r in results {
        assert!(r["path"].is_string() && r["flagged"].is_boolean());
        let cats = r["categories"].as_array().unwrap();
        assert!(!cats.is_empty());
        let sum: f64 = cats.iter().map(|c| c["score"].as_f64().unwrap()).sum();
        assert!(
            (sum - 1.0).abs() < 1e-5,
            "scores are a softmax over all categories"
        );
        for c in cats {
            assert!(
                c["name"].is_string() && (c["threshold"].is_number() || c["threshold"].is_null())
            );
        }
        let flagged = cats.iter().any(|c| {
            c["threshold"]
                .as_f64()
                .is_some_and(|t| c["score"].as_f64().unwrap() >= t)
        });
        assert_eq!(r["flagged"].as_bool(), Some(flagged));
    }
}

#[test]
fn exit_code_is_1_when_flagged_and_0_when_clean() {
    let dir = tempdir("mod-codes");
    let m = model();
    let (a, b) = (good("chelsea_small.bmp"), good("logo_rgba.png"));
    let flagging = policy(&dir, 0.4);
    let (code, out, err) = moderate(&[
        "moderate",
        s(&a),
        s(&b),
        "--model",
        s(&m),
        "--policy",
        s(&flagging),
        "--json",
    ]);
    assert_eq!(code, Some(1), "{err}");
    check_schema(&out, "test@7", 2);
    for r in out["results"].as_array().unwrap() {
        assert_eq!(r["flagged"], true);
        let twin = r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "twin")
            .unwrap();
        assert!((twin["score"].as_f64().unwrap() - 0.5).abs() < 1e-6);
        assert!((twin["threshold"].as_f64().unwrap() - 0.4).abs() < 1e-6);
    }
    let clean = policy(&dir, 0.6);
    let (code, out, err) = moderate(&[
        "moderate",
        s(&a),
        s(&b),
        "--model",
        s(&m),
        "--policy",
        s(&clean),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    check_schema(&out, "test@7", 2);
    assert!(out["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["flagged"] == false));
    // The table says the same.
    let out = clip(&[
        "moderate",
        s(&a),
        "--model",
        s(&m),
        "--policy",
        s(&flagging),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("policy test@7")
            && text.contains("FLAGGED")
            && text.contains("chelsea_small.bmp"),
        "{text}"
    );
}

#[test]
fn builtin_policy_walks_folders_and_an_unreadable_image_exits_2() {
    let dir = tempdir("mod-dir");
    std::fs::copy(good("chelsea_small.bmp"), dir.join("a.bmp")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::copy(good("tiny_7x5.png"), dir.join("sub/b.png")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let m = model();
    let (code, out, err) = moderate(&["moderate", s(&dir), "--model", s(&m), "--json"]);
    assert!(matches!(code, Some(0 | 1)), "{err}");
    check_schema(&out, "clip-rs-default@1", 2);
    let names: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(
        names[0].ends_with("a.bmp") && names[1].ends_with("sub/b.png"),
        "{names:?}"
    );
    assert_eq!(out["results"][0]["categories"].as_array().unwrap().len(), 7);

    std::fs::copy(
        committed("images/bad/truncated_half.jpg"),
        dir.join("c.jpg"),
    )
    .unwrap();
    let (code, out, err) = moderate(&["moderate", s(&dir), "--model", s(&m), "--json"]);
    assert_eq!(
        code,
        Some(2),
        "an image that could not be checked is an error"
    );
    assert!(err.contains("c.jpg") && err.contains("truncated"), "{err}");
    check_schema(&out, "clip-rs-default@1", 2);
}

#[test]
fn print_policy_is_a_valid_policy_file() {
    let dir = tempdir("mod-print");
    let out = clip(&["moderate", "--print-policy"]);
    assert!(out.status.success());
    let path = dir.join("default.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let m = model();
    let (code, json, err) = moderate(&[
        "moderate",
        s(&good("chelsea_small.bmp")),
        "--model",
        s(&m),
        "--policy",
        s(&path),
        "--json",
    ]);
    assert!(matches!(code, Some(0 | 1)), "{err}");
    check_schema(&json, "clip-rs-default@1", 1);
}

#[test]
fn bad_policies_and_inputs_fail_with_exit_2() {
    let dir = tempdir("mod-bad");
    let m = model();
    let img = good("chelsea_small.bmp");
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "name = \"x\"\nversion = \n").unwrap();
    clip_fails(
        &[
            "moderate",
            s(&img),
            "--model",
            s(&m),
            "--policy",
            s(&broken),
        ],
        &["broken.toml", "invalid policy TOML"],
    );
    let no_safe = dir.join("no-safe.toml");
    std::fs::write(&no_safe, "name = \"x\"\nversion = \"1\"\n[[category]]\nname = \"a\"\nthreshold = 0.5\nprompts = [\"a\"]\n")
        .unwrap();
    clip_fails(
        &[
            "moderate",
            s(&img),
            "--model",
            s(&m),
            "--policy",
            s(&no_safe),
        ],
        &["no-safe.toml", "no safe category"],
    );
    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "name = \"x\"\nversion = \"1\"\n[[category]]\nname = \"a\"\nthreshhold = 0.5\nprompts = [\"a\"]\n")
        .unwrap();
    clip_fails(
        &["moderate", s(&img), "--model", s(&m), "--policy", s(&typo)],
        &["typo.toml", "threshhold"],
    );
    clip_fails(
        &[
            "moderate",
            s(&img),
            "--model",
            s(&m),
            "--policy",
            "no/such/policy.toml",
        ],
        &["no/such/policy.toml"],
    );
    clip_fails(
        &["moderate", "no/such/image.jpg", "--model", s(&m)],
        &["no/such/image.jpg"],
    );
    let empty = tempdir("mod-empty");
    clip_fails(
        &["moderate", s(&empty), "--model", s(&m)],
        &["no image files"],
    );
}
