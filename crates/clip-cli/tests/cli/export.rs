//! `clip embed --output`: the clip-retrieval layout, readable .npy files whose rows match
//! `clip embed` and the metadata lines, skipped files logged and counted, shards that partition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::*;
use clip_fixtures::{committed, read_npy};
use serde_json::Value;

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A folder with 4 good images (one nested, one without extension) and 2 bad ones.
fn mixed_dir(name: &str) -> PathBuf {
    let dir = tempdir(name);
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::copy(good("chelsea_small.bmp"), dir.join("a.bmp")).unwrap();
    std::fs::copy(good("logo_rgba.png"), dir.join("nested/b.png")).unwrap();
    std::fs::copy(good("coffee_lossy.webp"), dir.join("c_no_extension")).unwrap();
    std::fs::copy(good("tiny_7x5.png"), dir.join("d.PNG")).unwrap();
    std::fs::copy(
        committed("images/bad/truncated_half.jpg"),
        dir.join("e.jpg"),
    )
    .unwrap();
    std::fs::copy(
        committed("images/bad/random_bytes.png"),
        dir.join("nested/f.png"),
    )
    .unwrap();
    std::fs::write(dir.join("readme.txt"), "not an image").unwrap();
    dir
}

fn export(args: &[&str]) -> Value {
    let out = clip(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "clip {args:?}: {err}");
    assert!(
        !err.contains("ETA"),
        "no progress bar when stderr is not a terminal: {err}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn exports_npy_and_metadata_matching_embed_and_skips_bad_files() {
    let src = mixed_dir("exp-src");
    let out = tempdir("exp-out");
    let m = model();
    let summary = export(&[
        "embed",
        "--model",
        s(&m),
        "--image-dir",
        s(&src),
        "--output",
        s(&out),
        "--batch-size",
        "3",
    ]);
    assert_eq!(summary["images"], 4);
    assert_eq!(summary["failed"], 2);
    let arr = read_npy(&out.join("img_emb/img_emb_0.npy"));
    assert_eq!(arr.shape, vec![4, 32]);
    let meta = jsonl(&out.join("metadata/metadata_0.jsonl"));
    let paths: Vec<&str> = meta
        .iter()
        .map(|m| m["image_path"].as_str().unwrap())
        .collect();
    let expect = ["a.bmp", "c_no_extension", "d.PNG", "nested/b.png"];
    assert_eq!(paths.len(), 4);
    for (p, e) in paths.iter().zip(expect) {
        assert!(p.ends_with(e), "{paths:?}");
    }
    // Ids are positions in the sorted list of candidates (bad files included).
    let ids: Vec<u64> = meta.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![0, 1, 2, 4]);
    let failed = jsonl(&out.join("failed_0.jsonl"));
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["path"].as_str().unwrap().ends_with("e.jpg") && failed[0]["id"] == 3);
    assert!(failed[1]["error"].as_str().unwrap().contains("f.png"));
    // Rows equal `clip embed` (normalised) of the same files.
    let files: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let (want, _) = embed(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>(), &[]);
    for (r, w) in want.iter().enumerate() {
        let row = &arr.data[r * 32..(r + 1) * 32];
        let diff = row
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "row {r}: max diff {diff}");
    }
}

#[test]
fn texts_and_path_lists_and_f16() {
    let out = tempdir("exp-texts");
    let list = out.join("list.txt");
    let (a, b) = (good("chelsea_small.bmp"), good("logo_rgba.png"));
    std::fs::write(&list, format!("{}\n{}\n", s(&a), s(&b))).unwrap();
    let texts = out.join("texts.txt");
    std::fs::write(&texts, "a cat\na, \"quoted\" dog\n\n").unwrap();
    let dest = out.join("emb");
    let m = model();
    let summary = export(&[
        "embed",
        "--model",
        s(&m),
        "--paths-file",
        s(&list),
        "--texts-file",
        s(&texts),
        "--text",
        "first",
        "--output",
        s(&dest),
        "--dtype",
        "f16",
    ]);
    assert_eq!(
        (summary["images"].as_u64(), summary["texts"].as_u64()),
        (Some(2), Some(3))
    );
    for (file, rows) in [("img_emb/img_emb_0.npy", 2), ("text_emb/text_emb_0.npy", 3)] {
        let bytes = std::fs::read(dest.join(file)).unwrap();
        let header = String::from_utf8_lossy(&bytes[..128]);
        assert!(
            header.contains("'descr': '<f2'") && header.contains(&format!("'shape': ({rows}, 32)")),
            "{header}"
        );
        assert_eq!(bytes.len(), 128 + rows * 32 * 2);
    }
    let captions: Vec<String> = jsonl(&dest.join("text_metadata/metadata_0.jsonl"))
        .iter()
        .map(|m| m["caption"].as_str().unwrap().into())
        .collect();
    assert_eq!(captions, ["first", "a cat", "a, \"quoted\" dog"]);
    // f16 values are the f32 ones rounded.
    let (_, want) = embed(&[], &["first"]);
    let bytes = std::fs::read(dest.join("text_emb/text_emb_0.npy")).unwrap();
    for (k, w) in want[0].iter().enumerate() {
        let h = half::f16::from_le_bytes([bytes[128 + 2 * k], bytes[129 + 2 * k]]).to_f32();
        assert!((h - w).abs() <= w.abs() * 1e-3 + 1e-4, "{k}: {h} vs {w}");
    }
}

#[test]
fn shards_partition_the_set() {
    let src = mixed_dir("exp-shard-src");
    let m = model();
    let whole = tempdir("exp-shard-all");
    export(&[
        "embed",
        "--model",
        s(&m),
        "--image-dir",
        s(&src),
        "--output",
        s(&whole),
    ]);
    let all = read_npy(&whole.join("img_emb/img_emb_0.npy"));
    let all_ids: Vec<u64> = jsonl(&whole.join("metadata/metadata_0.jsonl"))
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();

    let out = tempdir("exp-shards");
    let mut rows: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    let mut failed = 0;
    for i in 0..3 {
        let shard = format!("{i}/3");
        let summary = export(&[
            "embed",
            "--model",
            s(&m),
            "--image-dir",
            s(&src),
            "--output",
            s(&out),
            "--shard",
            &shard,
        ]);
        assert_eq!(summary["shard"].as_str(), Some(shard.as_str()));
        failed += summary["failed"].as_u64().unwrap();
        let arr = read_npy(&out.join(format!("img_emb/img_emb_{i}.npy")));
        let meta = jsonl(&out.join(format!("metadata/metadata_{i}.jsonl")));
        assert_eq!(arr.shape[0], meta.len());
        for (r, line) in meta.iter().enumerate() {
            let id = line["id"].as_u64().unwrap();
            assert_eq!(id % 3, i as u64, "shard {i} holds ids k with k % 3 == {i}");
            assert!(
                rows.insert(id, arr.data[r * 32..(r + 1) * 32].to_vec())
                    .is_none(),
                "id {id} twice"
            );
        }
    }
    assert_eq!(failed, 2);
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        all_ids,
        "shards cover the set exactly once"
    );
    for (r, id) in all_ids.iter().enumerate() {
        let diff = rows[id]
            .iter()
            .zip(&all.data[r * 32..(r + 1) * 32])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "id {id}: {diff}");
    }
}

#[test]
fn export_errors_are_clear() {
    let m = model();
    let out = tempdir("exp-errors");
    let o = s(&out);
    clip_fails(
        &[
            "embed",
            "--model",
            s(&m),
            "--image-dir",
            "no/such/dir",
            "--output",
            o,
        ],
        &["no/such/dir"],
    );
    clip_fails(
        &[
            "embed",
            "--model",
            s(&m),
            "--paths-file",
            "no/such/list.txt",
            "--output",
            o,
        ],
        &["no/such/list.txt"],
    );
    clip_fails(
        &["embed", "--model", s(&m), "--image-dir", o],
        &["--output"],
    );
    let src = mixed_dir("exp-errors-src");
    clip_fails(
        &[
            "embed",
            "--model",
            s(&m),
            "--image-dir",
            s(&src),
            "--output",
            o,
            "--shard",
            "3/3",
        ],
        &["3/3"],
    );
    let empty = tempdir("exp-errors-empty");
    clip_fails(
        &[
            "embed",
            "--model",
            s(&m),
            "--image-dir",
            s(&empty),
            "--output",
            o,
        ],
        &["nothing to embed"],
    );
}
