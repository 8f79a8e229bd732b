//! Finding the images under folders: recursive, following symbolic links (a loop is reported,
//! not followed forever), skipping hidden files and folders, taking files by extension or, for
//! names without a known image extension, by their first bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use clip::batch::looks_like_image;
use walkdir::WalkDir;

use crate::IndexError;

/// A file to index, with what the catalog compares to decide whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The absolute path, as the catalog stores it.
    pub key: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// What a walk found: image candidates (sorted, each once) and what could not be walked.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<Candidate>,
    /// `(path, reason)` for folders or links that could not be read (a symlink loop, no permission).
    pub problems: Vec<(String, String)>,
    /// The absolute roots, for deciding which catalog rows this walk speaks for.
    pub roots: Vec<PathBuf>,
}

/// Walks every root. A root that does not exist or is not a folder is an error naming it.
pub fn find_images(roots: &[PathBuf]) -> Result<Walk, IndexError> {
    let mut found = BTreeMap::new();
    let mut walk = Walk::default();
    for root in roots {
        let abs = std::fs::canonicalize(root).map_err(IndexError::io(root))?;
        if !abs.is_dir() {
            return Err(IndexError::Io {
                path: root.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a folder"),
            });
        }
        let entries = WalkDir::new(&abs)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_hidden(e));
        for entry in entries {
            match entry {
                Ok(e) if e.file_type().is_file() => match candidate(e.path()) {
                    Ok(Some(c)) => {
                        found.insert(c.key.clone(), c);
                    }
                    Ok(None) => {}
                    Err(reason) => walk.problems.push((e.path().display().to_string(), reason)),
                },
                Ok(_) => {}
                Err(err) => {
                    let path = err
                        .path()
                        .map_or_else(|| abs.display().to_string(), |p| p.display().to_string());
                    walk.problems.push((path, err.to_string()));
                }
            }
        }
        walk.roots.push(abs);
    }
    walk.files = found.into_values().collect();
    Ok(walk)
}

fn is_hidden(e: &walkdir::DirEntry) -> bool {
    e.file_name().to_str().is_some_and(|n| n.starts_with('.'))
}

/// `Some` for an image file (by extension or content), `None` for any other file.
fn candidate(path: &Path) -> Result<Option<Candidate>, String> {
    if !looks_like_image(path) {
        return Ok(None);
    }
    let key = path
        .to_str()
        .ok_or("the path is not valid UTF-8")?
        .to_owned();
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    Ok(Some(Candidate {
        key,
        size: meta.len(),
        mtime_ns,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_images_by_extension_and_content_and_skips_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/.hidden")).unwrap();
        std::fs::write(root.join("a.JPG"), b"not really").unwrap();
        std::fs::write(root.join("sub/noext"), b"\x89PNG\r\n\x1a\nrest").unwrap();
        std::fs::write(root.join("notes.txt"), b"hello").unwrap();
        std::fs::write(root.join(".secret.png"), b"x").unwrap();
        std::fs::write(root.join("sub/.hidden/b.png"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        let walk = find_images(&[root.to_path_buf()]).unwrap();
        let names: Vec<&str> = walk
            .files
            .iter()
            .map(|c| c.key.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, vec!["a.JPG", "noext"]);
        #[cfg(unix)]
        assert!(
            walk.problems.iter().any(|(p, _)| p.ends_with("loop")),
            "{:?}",
            walk.problems
        );
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let err = find_images(&[PathBuf::from("/no/such/folder")]).unwrap_err();
        assert!(err.to_string().contains("/no/such/folder"));
    }
}
