//! Finding the images under folders, the one walk every command shares (`clip embed --image-dir`,
//! `clip index`, `clip moderate DIR`): recursive, following symbolic links to files and folders
//! (a link loop is reported, not followed forever), skipping hidden files and folders (`.name`),
//! taking regular files by extension or, for names without a known image extension, by their
//! first bytes. The result is sorted by path, each file once, so ids and shards are the same on
//! every machine.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use clip::image::sniff;
use walkdir::WalkDir;

/// File extensions taken as images without opening them (lower case). Other files are opened and
/// kept when their first bytes are an image signature ([`sniff`]).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "bmp", "dib", "tif", "tiff",
];

/// An image file found by a walk, with what an index compares to decide whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// The path below the canonical root (links inside the tree are kept as the walk met them).
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Image files, sorted by path, each once.
    pub files: Vec<FoundFile>,
    /// `(path, reason)` for folders, links or files that could not be read (a link loop, no
    /// permission).
    pub problems: Vec<(PathBuf, String)>,
    /// The canonical roots, for deciding which earlier entries this walk speaks for.
    pub roots: Vec<PathBuf>,
}

/// A root that cannot be walked.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The root does not exist or cannot be resolved.
    #[error("{}: {source}", path.display())]
    Root {
        /// The root as given.
        path: PathBuf,
        /// Why it could not be resolved.
        #[source]
        source: std::io::Error,
    },
    /// The root is a file or something else that is not a folder.
    #[error("{}: not a folder", path.display())]
    NotAFolder {
        /// The root as given.
        path: PathBuf,
    },
}

/// Walks every root. A root that does not exist or is not a folder is an error naming it; what
/// cannot be read below a root is a problem of the walk, and the walk goes on.
pub fn find_images(roots: &[PathBuf]) -> Result<Discovery, DiscoverError> {
    let mut found = BTreeMap::new();
    let mut walk = Discovery::default();
    for root in roots {
        let abs = std::fs::canonicalize(root).map_err(|source| DiscoverError::Root {
            path: root.clone(),
            source,
        })?;
        if !abs.is_dir() {
            return Err(DiscoverError::NotAFolder { path: root.clone() });
        }
        let entries = WalkDir::new(&abs)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_hidden(e));
        for entry in entries {
            match entry {
                // With links followed, the type is the target's: FIFOs, sockets and devices are
                // never opened.
                Ok(e) if e.file_type().is_file() => match found_file(e.path()) {
                    Ok(Some(f)) => {
                        found.insert(f.path.clone(), f);
                    }
                    Ok(None) => {}
                    Err(reason) => walk.problems.push((e.path().to_path_buf(), reason)),
                },
                Ok(_) => {}
                Err(err) => {
                    let path = err.path().unwrap_or(&abs).to_path_buf();
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
    e.file_name().as_encoded_bytes().starts_with(b".")
}

/// Whether the regular file `path` is taken as an image: a known extension, or else an image
/// signature in its first bytes (an unreadable file is not). Decoding decides whether it really
/// is one.
fn looks_like_image(path: &Path) -> bool {
    let known = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    known || {
        let mut head = Vec::with_capacity(16);
        std::fs::File::open(path)
            .and_then(|f| f.take(16).read_to_end(&mut head))
            .is_ok_and(|_| sniff(&head).is_some())
    }
}

/// `Some` for an image file (by extension or content), `None` for any other file.
fn found_file(path: &Path) -> Result<Option<FoundFile>, String> {
    if !looks_like_image(path) {
        return Ok(None);
    }
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    Ok(Some(FoundFile {
        path: path.to_path_buf(),
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
            .map(|f| f.path.file_name().unwrap().to_str().unwrap())
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
