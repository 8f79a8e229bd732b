//! One walk for every command: `clip embed --image-dir` and `clip index` see the same files in a
//! folder with links to folders, a link loop, hidden files and files that are not images.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// A folder with images at the top, in a subfolder, behind a link to a folder outside it, a
/// PNG without extension, a link loop, hidden files and folders, and non-image files.
fn tricky_folder(name: &str) -> std::path::PathBuf {
    let base = tempdir(name);
    let root = base.join("photos");
    let outside = base.join("elsewhere");
    for d in [root.join("sub"), root.join(".hidden"), outside.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    let png = good("logo_rgba.png");
    std::fs::copy(good("chelsea_small.bmp"), root.join("a.bmp")).unwrap();
    std::fs::copy(good("camera_gray.jpg"), root.join("sub/b.jpg")).unwrap();
    std::fs::copy(&png, outside.join("c.png")).unwrap();
    std::fs::copy(&png, root.join("sub/noext")).unwrap();
    std::fs::copy(&png, root.join(".hidden/d.png")).unwrap();
    std::fs::copy(&png, root.join(".e.png")).unwrap();
    std::fs::write(root.join("notes.txt"), "not an image").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
    }
    root
}

fn names(paths: impl IntoIterator<Item = String>, root: &Path) -> BTreeSet<String> {
    let root = root.canonicalize().unwrap();
    paths
        .into_iter()
        .map(|p| {
            Path::new(&p)
                .strip_prefix(&root)
                .unwrap_or_else(|_| panic!("{p} is not under {}", root.display()))
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn embed_image_dir_and_index_see_the_same_files() {
    let root = tricky_folder("discovery");
    let out = root.parent().unwrap().join("export");
    let db = root.parent().unwrap().join("index.db");
    let m = model();
    let exported = clip_json(&[
        "embed",
        "--model",
        s(&m),
        "--output",
        s(&out),
        "--image-dir",
        s(&root),
    ]);
    assert_eq!(exported["failed"], 0, "{exported}");
    let metadata = std::fs::read_to_string(out.join("metadata/metadata_0.jsonl")).unwrap();
    let from_embed = names(
        metadata.lines().map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["image_path"].as_str().unwrap().to_string()
        }),
        &root,
    );
    let mut want = BTreeSet::from(["a.bmp", "sub/b.jpg", "sub/noext"].map(String::from));
    #[cfg(unix)]
    want.insert("linked/c.png".into());
    assert_eq!(from_embed, want);

    let report = clip_json(&[
        "index",
        s(&root),
        "--model",
        s(&m),
        "--db",
        s(&db),
        "--json",
    ]);
    // The loop is reported as a problem of the walk, not followed.
    #[cfg(unix)]
    assert!(
        report["failed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("loop")),
        "{report}"
    );
    let found = clip_json(&[
        "search",
        "anything",
        "--model",
        s(&m),
        "--db",
        s(&db),
        "-k",
        "100",
        "--json",
    ]);
    let from_index = names(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string()),
        &root,
    );
    assert_eq!(from_index, from_embed);
}
