//! [`Hub`]: a registry plus a cache folder. Turns a model name (or a path) into a local path,
//! downloading into the cache the first time.

use std::path::{Path, PathBuf};

use crate::download::{fetch_file, FetchOptions, Job};
use crate::registry::{ModelEntry, Registry};
use crate::verify::{check_structure, sha256_file, structural_kind};
use crate::HubError;

/// A registry plus a cache folder and download settings. One HTTP agent is shared by every
/// download, so connections to a host are reused across the files of a folder model.
pub struct Hub {
    registry: Registry,
    cache_dir: PathBuf,
    options: FetchOptions,
    agent: ureq::Agent,
}

impl Hub {
    /// A hub over `registry`, caching into `cache_dir` (created on first download).
    pub fn new(registry: Registry, cache_dir: PathBuf, options: FetchOptions) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(options.connect_timeout)
            .timeout_read(options.read_timeout)
            // Redirects are followed by `download`, which checks each target.
            .redirects(0)
            .user_agent(concat!("clip-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        Hub {
            registry,
            cache_dir,
            options,
            agent,
        }
    }

    /// The built-in registry plus `user_registry` (the `--registry` / `CLIP_REGISTRY` file), the
    /// cache of [`default_cache_dir`], and `CLIP_MIRROR` / `CLIP_OFFLINE`.
    pub fn from_env(user_registry: Option<&Path>) -> Result<Self, HubError> {
        let mut registry = Registry::builtin();
        if let Some(path) = user_registry {
            registry = registry.with_user_file(path)?;
        }
        Ok(Hub::new(
            registry,
            default_cache_dir()?,
            FetchOptions::from_env()?,
        ))
    }

    /// The names this hub resolves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The cache folder (one sub-folder per model).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Where the model lives once cached: its folder for folder formats, else its one file.
    pub fn model_path(&self, entry: &ModelEntry) -> PathBuf {
        let dir = self.cache_dir.join(dir_name(&entry.name));
        match (&entry.files[..], entry.format.is_folder()) {
            ([file], false) => dir.join(&file.name),
            _ => dir,
        }
    }

    /// Whether every file of the model is in the cache, so that using it needs no network.
    pub fn is_cached(&self, entry: &ModelEntry) -> bool {
        let dir = self.cache_dir.join(dir_name(&entry.name));
        entry.files.iter().all(|f| dir.join(&f.name).is_file())
    }

    /// Downloads whatever of the model is not cached yet and returns [`Hub::model_path`]. A
    /// cached file that fails its structure check (an HTML error page saved under the model's
    /// name by a broken mirror, a file cut short) is moved aside to `<name>.bad` and fetched
    /// again, instead of failing every later run.
    pub fn fetch(&self, entry: &ModelEntry) -> Result<PathBuf, HubError> {
        let dir = self.cache_dir.join(dir_name(&entry.name));
        for file in &entry.files {
            let dest = dir.join(&file.name);
            if dest.is_file() {
                match structural_kind(&file.name).map(|kind| (kind, check_structure(kind, &dest))) {
                    Some((kind, Err(reason))) => {
                        let aside = with_suffix(&dest, "bad");
                        std::fs::rename(&dest, &aside).map_err(|e| HubError::io(&dest, e))?;
                        if self.options.progress {
                            eprintln!(
                                "clip: the cached {} is not a valid {kind} file ({reason}); moved it to {} and fetching it again",
                                dest.display(),
                                aside.display()
                            );
                        }
                    }
                    _ => continue,
                }
            }
            let url = match &self.options.mirror {
                Some(m) => m.rewrite(&file.url),
                None => file.url.clone(),
            };
            if self.options.offline {
                return Err(HubError::Offline {
                    model: entry.name.clone(),
                    url,
                    path: dest,
                });
            }
            fetch_file(
                &self.agent,
                &self.options,
                &Job {
                    url: &url,
                    file,
                    dest: &dest,
                    // No file of a model is larger than the whole model (5% slack for the size
                    // being approximate).
                    max_bytes: entry.size_bytes.map(|b| b + b / 20 + (1 << 20)),
                },
            )?;
        }
        Ok(self.model_path(entry))
    }

    /// An existing file or folder is used as is (a path always wins over a name); otherwise a
    /// registry name is fetched into the cache; anything else is an error with the closest names.
    pub fn resolve(&self, name_or_path: &str) -> Result<PathBuf, HubError> {
        let path = Path::new(name_or_path);
        if path.exists() {
            return Ok(path.to_path_buf());
        }
        match self.registry.get(name_or_path) {
            Some(entry) => self.fetch(entry),
            None => Err(HubError::UnknownModel {
                name: name_or_path.to_string(),
                suggestions: self.registry.suggest(name_or_path),
            }),
        }
    }
}

/// `<path>.<suffix>` beside `path`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// What [`Hub::verify`] found for one cached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCheck {
    /// Not in the cache.
    Missing,
    /// Its SHA-256 is the published one.
    HashMatches,
    /// No published hash; its structure is sound.
    StructureSound,
    /// Neither a hash nor a structure to check (the loader checks it on use).
    Unchecked,
    /// Damaged: moved aside to the given path (the next use fetches it again).
    MovedAside {
        /// Why it failed.
        reason: String,
        /// Where it is now.
        aside: PathBuf,
    },
}

impl Hub {
    /// Re-checks every cached file of `entry` (SHA-256 where published, else structure); a file
    /// that fails is moved aside so the next use fetches it again.
    pub fn verify(&self, entry: &ModelEntry) -> Result<Vec<(String, FileCheck)>, HubError> {
        let dir = self.cache_dir.join(dir_name(&entry.name));
        let mut out = Vec::new();
        for file in &entry.files {
            let path = dir.join(&file.name);
            if !path.is_file() {
                out.push((file.name.clone(), FileCheck::Missing));
                continue;
            }
            let problem = match (&file.sha256, structural_kind(&file.name)) {
                (Some(expected), _) => {
                    let actual = sha256_file(&path).map_err(|e| HubError::io(&path, e))?;
                    (actual != *expected).then(|| format!("sha256 {actual}, expected {expected}"))
                }
                (None, Some(kind)) => check_structure(kind, &path)
                    .err()
                    .map(|r| format!("not a valid {kind} file: {r}")),
                (None, None) => {
                    out.push((file.name.clone(), FileCheck::Unchecked));
                    continue;
                }
            };
            let check = match problem {
                None if file.sha256.is_some() => FileCheck::HashMatches,
                None => FileCheck::StructureSound,
                Some(reason) => {
                    let aside = with_suffix(&path, "bad");
                    std::fs::rename(&path, &aside).map_err(|e| HubError::io(&path, e))?;
                    FileCheck::MovedAside { reason, aside }
                }
            };
            out.push((file.name.clone(), check));
        }
        Ok(out)
    }
}

/// `$CLIP_CACHE`, else `$XDG_CACHE_HOME/clip-rs`, else `~/.cache/clip-rs`.
pub fn default_cache_dir() -> Result<PathBuf, HubError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("CLIP_CACHE") {
        return Ok(dir);
    }
    // The XDG spec says to ignore a relative XDG_CACHE_HOME.
    if let Some(dir) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return Ok(dir.join("clip-rs"));
    }
    var("HOME")
        .map(|h| h.join(".cache").join("clip-rs"))
        .ok_or(HubError::NoCacheDir)
}

/// A model's folder name in the cache, as the Hugging Face cache spells repos:
/// `openai/clip-vit-base-patch32` -> `openai--clip-vit-base-patch32`, `ViT-B/32` -> `ViT-B--32`.
/// Anything but letters, digits and `-_.@+` becomes `_`, so no name can leave the cache folder.
fn dir_name(name: &str) -> String {
    let safe: String = name
        .replace('/', "--")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_folder_names_stay_inside_the_cache() {
        assert_eq!(dir_name("ViT-L/14@336px"), "ViT-L--14@336px");
        assert_eq!(
            dir_name("openai/clip-vit-base-patch32"),
            "openai--clip-vit-base-patch32"
        );
        assert_eq!(dir_name("../../etc"), "_..--..--etc");
        assert_eq!(dir_name("a\\b c"), "a_b_c");
    }

    #[test]
    fn model_paths_are_the_file_or_the_folder() {
        let hub = Hub::new(
            Registry::builtin(),
            PathBuf::from("/c"),
            FetchOptions::default(),
        );
        let r = hub.registry();
        assert_eq!(
            hub.model_path(r.get("ViT-B/32").unwrap()),
            Path::new("/c/ViT-B--32/ViT-B-32.pt")
        );
        assert_eq!(
            hub.model_path(r.get("openai/clip-vit-base-patch32").unwrap()),
            Path::new("/c/openai--clip-vit-base-patch32")
        );
    }
}
