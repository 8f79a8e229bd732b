//! [`Hub`]: a registry plus a cache folder. Turns a model name (or a path) into a local path,
//! downloading into the cache the first time.

use std::path::{Path, PathBuf};

use crate::download::{fetch_file, source_unavailable, Checked, FetchOptions, Job};
use crate::registry::{ModelEntry, Registry, Source};
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

    /// The cache folder of one source of a model.
    fn source_dir(&self, source: &Source) -> PathBuf {
        self.cache_dir.join(dir_name(&source.cache_key))
    }

    /// Where one source of a model lives once cached: its folder for folder formats, else its one
    /// file.
    pub fn source_path(&self, source: &Source) -> PathBuf {
        let dir = self.source_dir(source);
        match (&source.files[..], source.format.is_folder()) {
            ([file], false) => dir.join(&file.name),
            _ => dir,
        }
    }

    /// Whether every file of one source is in the cache.
    pub fn is_source_cached(&self, source: &Source) -> bool {
        let dir = self.source_dir(source);
        source.files.iter().all(|f| dir.join(&f.name).is_file())
    }

    /// Where the model lives once cached: the first source that is wholly cached, else where its
    /// first source would be (see [`Hub::source_path`]).
    pub fn model_path(&self, entry: &ModelEntry) -> PathBuf {
        let source = entry
            .sources
            .iter()
            .find(|s| self.is_source_cached(s))
            .unwrap_or(entry.primary());
        self.source_path(source)
    }

    /// Whether every file of one of the model's sources is in the cache, so that using it needs no
    /// network.
    pub fn is_cached(&self, entry: &ModelEntry) -> bool {
        entry.sources.iter().any(|s| self.is_source_cached(s))
    }

    /// Downloads whatever of the model is not cached yet and returns [`Hub::model_path`]. See
    /// [`Hub::fetch_report`].
    pub fn fetch(&self, entry: &ModelEntry) -> Result<PathBuf, HubError> {
        self.fetch_report(entry).map(|f| f.path)
    }

    /// Brings the model into the cache and says where it came from.
    ///
    /// A source already wholly cached is used (no network, unless one of its files is damaged).
    /// Otherwise the sources are tried in order: when one does not have the model (HTTP 404, 410
    /// or 5xx after retries) or cannot be reached, the next is tried and the switch is reported on
    /// stderr. Any other failure ends the fetch with its error: above all a checksum mismatch,
    /// which means a source served something other than what its publisher declares (a tampered
    /// or broken copy); quietly taking another source would hide that from the user.
    pub fn fetch_report(&self, entry: &ModelEntry) -> Result<Fetched, HubError> {
        if let Some(i) = entry.sources.iter().position(|s| self.is_source_cached(s)) {
            return self.fetch_source(entry, i, Vec::new());
        }
        if self.options.offline {
            let places = entry
                .sources
                .iter()
                .flat_map(|s| {
                    let dir = self.source_dir(s);
                    s.files
                        .iter()
                        .filter(move |f| !dir.join(&f.name).is_file())
                        .map(move |f| {
                            (
                                s.label(),
                                self.mirrored(&f.url),
                                self.source_dir(s).join(&f.name),
                            )
                        })
                })
                .collect();
            return Err(HubError::Offline {
                model: entry.name.clone(),
                places,
            });
        }
        let mut failures: Vec<(String, HubError)> = Vec::new();
        for (i, source) in entry.sources.iter().enumerate() {
            let skipped = failures
                .iter()
                .map(|(label, e)| format!("{label} {}", failure_brief(e)))
                .collect();
            match self.fetch_source(entry, i, skipped) {
                Ok(fetched) => {
                    if i > 0 && self.options.progress {
                        eprintln!("clip: {}", fetched.summary(&entry.name));
                    }
                    return Ok(fetched);
                }
                Err(e) if source_unavailable(&e) && i + 1 < entry.sources.len() => {
                    if self.options.progress {
                        eprintln!(
                            "clip: {}: {} {}; trying {}",
                            entry.name,
                            source.label(),
                            failure_brief(&e),
                            entry.sources[i + 1].label()
                        );
                    }
                    failures.push((source.label(), e));
                }
                Err(e) if failures.is_empty() => return Err(e),
                Err(e) if source_unavailable(&e) => {
                    failures.push((source.label(), e));
                    return Err(HubError::NoSource {
                        model: entry.name.clone(),
                        failures,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        // Only an entry built by hand can have no source.
        Err(HubError::NoSource {
            model: entry.name.clone(),
            failures,
        })
    }

    fn mirrored(&self, url: &str) -> String {
        match &self.options.mirror {
            Some(m) => m.rewrite(url),
            None => url.to_string(),
        }
    }

    /// Fetches the missing files of one source. A cached file that fails its structure check (an
    /// HTML error page saved under the model's name by a broken mirror, a file cut short) is moved
    /// aside to `<name>.bad` and fetched again, instead of failing every later run.
    fn fetch_source(
        &self,
        entry: &ModelEntry,
        index: usize,
        skipped: Vec<String>,
    ) -> Result<Fetched, HubError> {
        let source = &entry.sources[index];
        let dir = self.source_dir(source);
        let label = source.label();
        let mut checks = Vec::new();
        for file in &source.files {
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
                    _ => {
                        checks.push((file.name.clone(), Checked::Cached));
                        continue;
                    }
                }
            }
            let url = self.mirrored(&file.url);
            if self.options.offline {
                return Err(HubError::Offline {
                    model: entry.name.clone(),
                    places: vec![(label.clone(), url, dest)],
                });
            }
            let checked = fetch_file(
                &self.agent,
                &self.options,
                &Job {
                    url: &url,
                    file,
                    dest: &dest,
                    // No file of a model is larger than the whole model (5% slack for the size
                    // being approximate).
                    max_bytes: source.size_bytes.map(|b| b + b / 20 + (1 << 20)),
                    source_label: &label,
                    honour_declared: source.honours_declared_hash(),
                },
            )?;
            checks.push((file.name.clone(), checked));
        }
        Ok(Fetched {
            path: self.source_path(source),
            source: index,
            source_label: label,
            skipped,
            verified: checks.iter().map(|(n, c)| describe(n, c)).collect(),
        })
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

/// What [`Hub::fetch_report`] did: which source the model came from and how its files were
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The model's path (as [`Hub::model_path`]).
    pub path: PathBuf,
    /// The index of the source used in the entry's `sources`.
    pub source: usize,
    /// How that source is named: `the OpenAI URL`, `the Hugging Face copy org/name`, ...
    pub source_label: String,
    /// The sources tried before it and why they were passed over (`the OpenAI URL answered 404`).
    pub skipped: Vec<String>,
    /// One line per file: how it was checked (`model.safetensors: sha256 ... as declared`).
    pub verified: Vec<String>,
}

impl Fetched {
    /// `ViT-B/32: the OpenAI URL answered 404; downloaded the Hugging Face copy ... instead
    /// (verified: ...)`.
    pub fn summary(&self, model: &str) -> String {
        let before = if self.skipped.is_empty() {
            String::new()
        } else {
            format!("{}; ", self.skipped.join("; "))
        };
        format!(
            "{model}: {before}downloaded {}{} (verified: {})",
            self.source_label,
            if self.source > 0 { " instead" } else { "" },
            self.verified.join(", ")
        )
    }
}

/// `answered 404`, `could not be reached (...)`: why a source was passed over.
fn failure_brief(e: &HubError) -> String {
    match e {
        HubError::Http { status, .. } => format!("answered {status}"),
        HubError::Unreachable { reason, .. } => format!("could not be reached ({reason})"),
        other => format!("failed ({other})"),
    }
}

fn describe(name: &str, checked: &Checked) -> String {
    match checked {
        Checked::Cached => format!("{name} already cached"),
        Checked::Pinned => format!("{name} sha256 as published"),
        Checked::Declared(h) => {
            format!("{name} sha256 {h} as declared by the server, structure ok")
        }
        Checked::Structure => format!("{name} structure ok (no hash declared)"),
        Checked::Unchecked => format!("{name} unchecked"),
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
    /// Files are named as given in the registry; a source other than the first prefixes them
    /// with its cache folder (`openai--clip-vit-base-patch32/model.safetensors`). Sources with no
    /// file in the cache are skipped, unless none has any (then the first's files are missing).
    pub fn verify(&self, entry: &ModelEntry) -> Result<Vec<(String, FileCheck)>, HubError> {
        let mut out = Vec::new();
        let present: Vec<&Source> = entry
            .sources
            .iter()
            .filter(|s| {
                let dir = self.source_dir(s);
                s.files.iter().any(|f| dir.join(&f.name).is_file())
            })
            .collect();
        let sources = if present.is_empty() {
            vec![entry.primary()]
        } else {
            present
        };
        for source in sources {
            let dir = self.source_dir(source);
            let prefix = if std::ptr::eq(source, entry.primary()) {
                String::new()
            } else {
                format!("{}/", dir_name(&source.cache_key))
            };
            self.verify_files(source, &dir, &prefix, &mut out)?;
        }
        Ok(out)
    }

    fn verify_files(
        &self,
        source: &Source,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(String, FileCheck)>,
    ) -> Result<(), HubError> {
        for file in &source.files {
            let path = dir.join(&file.name);
            let shown = format!("{prefix}{}", file.name);
            if !path.is_file() {
                out.push((shown, FileCheck::Missing));
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
                    out.push((shown, FileCheck::Unchecked));
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
            out.push((shown, check));
        }
        Ok(())
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
