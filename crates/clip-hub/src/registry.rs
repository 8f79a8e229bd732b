//! What a model name means: its format, the files to fetch and what to expect of them. The
//! built-in table ([`crate::builtin`]) is extended by a user file ([`Registry::with_user_file`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use clip_checkpoint::{Activation, Family};

use crate::HubError;

/// How the fetched files are laid out, which decides what path the loader is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactFormat {
    /// An OpenAI TorchScript archive (`ViT-B-32.pt`): one file.
    #[serde(alias = "openai-pt")]
    Openai,
    /// A Hugging Face `CLIPModel` folder: `config.json` + `model.safetensors`.
    #[serde(alias = "hf")]
    Huggingface,
    /// An OpenCLIP folder: `open_clip_config.json` + `open_clip_model.safetensors`.
    #[serde(alias = "open_clip", alias = "openclip")]
    OpenClip,
    /// A single safetensors file with OpenAI tensor names.
    Safetensors,
    /// A single `torch.save` state dict.
    StateDict,
}

impl ArtifactFormat {
    /// Folder formats are loaded from the directory holding their files; the others from the file.
    pub fn is_folder(self) -> bool {
        matches!(self, ArtifactFormat::Huggingface | ArtifactFormat::OpenClip)
    }

    /// The canonical spelling in registry files (aliases aside), for listings and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactFormat::Openai => "openai",
            ArtifactFormat::Huggingface => "huggingface",
            ArtifactFormat::OpenClip => "open-clip",
            ArtifactFormat::Safetensors => "safetensors",
            ArtifactFormat::StateDict => "state-dict",
        }
    }
}

/// One file of a model: where it comes from and, when published, its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name inside the model's cache folder (a plain name, never a path).
    pub name: String,
    /// An `http://` or `https://` URL (checked for user entries); `CLIP_MIRROR` may rewrite it.
    pub url: String,
    /// Lowercase hex. `None` where the publisher pins no hash (Hugging Face `resolve/main` URLs):
    /// such files are checked against the hash the server declares, where it declares one (see
    /// [`Source::honours_declared_hash`]), and for length and structure.
    pub sha256: Option<String>,
}

/// Where an entry was defined, so `clip models` can tell built-in names from the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The table compiled into this crate.
    Builtin,
    /// The user registry file at this path.
    User(PathBuf),
}

/// Who publishes a source, which decides how its files are checked and how it is named in
/// messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// OpenAI's own download server: every URL carries the file's SHA-256.
    OpenAi,
    /// A Hugging Face repository (`org/name`). `resolve/main` URLs pin no hash in the URL, but
    /// the hub declares the SHA-256 of LFS files in its `X-Linked-Etag` / `ETag` header, which
    /// the download checks when present (besides the structure of every file).
    HuggingFace(String),
    /// URLs given in a user registry file.
    Url,
}

impl SourceKind {
    /// `openai`, `huggingface`, `url`: for `--json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::OpenAi => "openai",
            SourceKind::HuggingFace(_) => "huggingface",
            SourceKind::Url => "url",
        }
    }
}

/// One place a model can be downloaded from: its files, their layout, and the cache folder they
/// go to. A model may have several (tried in order); each keeps its own cache folder, so a later
/// offline run finds whichever one was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Who publishes it.
    pub kind: SourceKind,
    /// How its files are laid out.
    pub format: ArtifactFormat,
    /// The files to download: one for file formats, several for folder formats.
    pub files: Vec<RemoteFile>,
    /// The name its cache folder is made of (made path-safe): the model's name for its first
    /// source, the repository for a Hugging Face copy (shared with the entry of that repository).
    pub cache_key: String,
    /// Approximate total download size in bytes: for display, and as a bound on each file.
    pub size_bytes: Option<u64>,
}

impl Source {
    /// How messages name it: `the OpenAI URL`, `the Hugging Face copy org/name`, `the URL`.
    pub fn label(&self) -> String {
        match &self.kind {
            SourceKind::OpenAi => "the OpenAI URL".to_string(),
            SourceKind::HuggingFace(repo) => format!("the Hugging Face copy {repo}"),
            SourceKind::Url => "the URL".to_string(),
        }
    }

    /// Whether a SHA-256 the server declares in a header is checked (Hugging Face only: other
    /// servers' ETags are opaque and need not be content hashes).
    pub fn honours_declared_hash(&self) -> bool {
        matches!(self.kind, SourceKind::HuggingFace(_))
    }
}

/// What a model name stands for: where to fetch it from (in order of preference) and what is known
/// of the model before it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The name it is resolved by (also the cache folder of its first source, made path-safe).
    pub name: String,
    /// Other names it is resolved by (a Hugging Face repository, an open_clip-style name).
    pub aliases: Vec<String>,
    /// CLIP or SigLIP.
    pub family: Family,
    /// Where to download it, tried in order: the next is tried when one is missing (HTTP 404,
    /// 410, 5xx after retries) or unreachable. Never empty.
    pub sources: Vec<Source>,
    /// Input side in pixels, where known; for display (the loader reads it from the weights).
    pub resolution: Option<u32>,
    /// Embedding length, where known; for display (the loader reads it from the weights).
    pub embed_dim: Option<u32>,
    /// The MLP activation the checkpoint was trained with. Informational for loading: folder
    /// formats carry it in their config and the loader reads it from there.
    pub activation: Option<Activation>,
    /// The weights' licence (SPDX identifier), where known.
    pub license: Option<String>,
    /// Where the entry was defined.
    pub origin: Origin,
}

impl ModelEntry {
    /// The first (preferred) source. Panics for an entry without sources, which neither the
    /// built-in table nor a registry file can produce.
    pub fn primary(&self) -> &Source {
        &self.sources[0]
    }

    /// The first source's layout.
    pub fn format(&self) -> ArtifactFormat {
        self.primary().format
    }

    /// The first source's files.
    pub fn files(&self) -> &[RemoteFile] {
        &self.primary().files
    }

    /// Approximate download size of the first source, for display.
    pub fn size_bytes(&self) -> Option<u64> {
        self.primary().size_bytes
    }

    /// Whether `name` is this entry's name or one of its aliases, ignoring case when `loose`.
    fn answers_to(&self, name: &str, loose: bool) -> bool {
        std::iter::once(&self.name).chain(&self.aliases).any(|n| {
            if loose {
                n.eq_ignore_ascii_case(name)
            } else {
                n == name
            }
        })
    }
}

/// The names `resolve` knows, built-in first, then the user's (a user entry with a built-in name
/// replaces it, so a mirror or a private copy can stand in for a published model).
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<ModelEntry>,
}

impl Registry {
    /// The published models known to this crate (OpenAI, Hugging Face, OpenCLIP).
    pub fn builtin() -> Self {
        Registry {
            entries: crate::builtin::entries(),
        }
    }

    /// Adds (or replaces, by name) one entry: for programs that build their own table.
    pub fn with_entry(mut self, entry: ModelEntry) -> Self {
        self.entries.retain(|e| e.name != entry.name);
        self.entries.push(entry);
        self
    }

    /// Every entry, built-in first, then the user's in file order.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// Adds the models of a user registry file: TOML (`[[models]]` tables) or, for a `.json`
    /// file, JSON (`{"models": [...]}` or a bare array).
    pub fn with_user_file(mut self, path: &Path) -> Result<Self, HubError> {
        let bad = |reason: String| HubError::Registry {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let file: UserFile = if is_json {
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?
        } else {
            toml::from_str(&text).map_err(|e| bad(format!("invalid TOML: {e}")))?
        };
        let models = match file {
            UserFile::Table { models } | UserFile::List(models) => models,
        };
        for model in models {
            let entry = model.into_entry(path).map_err(bad)?;
            self = self.with_entry(entry);
        }
        Ok(self)
    }

    /// Exact name (or alias) first, then a case-insensitive match when it is unambiguous. A user
    /// entry whose name is a built-in alias wins over that alias (entries later in the table are
    /// searched first for exact matches).
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        let exact = self.entries.iter().find(|e| e.name == name).or_else(|| {
            self.entries
                .iter()
                .rev()
                .find(|e| e.answers_to(name, false))
        });
        exact.or_else(|| {
            let mut found = self.entries.iter().filter(|e| e.answers_to(name, true));
            match (found.next(), found.next()) {
                (Some(e), None) => Some(e),
                _ => None,
            }
        })
    }

    /// Up to three names close to `name` (edit distance on a loose spelling that ignores case
    /// and punctuation, or containment), closest first.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let query = loose(name);
        if query.is_empty() {
            return Vec::new();
        }
        let limit = (query.chars().count() / 3).max(2);
        let mut scored: Vec<(usize, &str)> = self
            .entries
            .iter()
            .filter_map(|e| {
                let candidate = loose(&e.name);
                let d = levenshtein(&query, &candidate);
                let contains =
                    query.len() >= 3 && (candidate.contains(&query) || query.contains(&candidate));
                (d <= limit || contains)
                    .then_some((if contains { d.min(limit) } else { d }, e.name.as_str()))
            })
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(3)
            .map(|(_, n)| n.to_string())
            .collect()
    }
}

fn loose(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || *c == '@')
        .flat_map(char::to_lowercase)
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserFile {
    Table { models: Vec<UserModel> },
    List(Vec<UserModel>),
}

/// One user model: either `url` (+ `sha256`) for a one-file format, or `files` for a folder.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserModel {
    name: String,
    format: ArtifactFormat,
    url: Option<String>,
    sha256: Option<String>,
    #[serde(default)]
    files: Vec<UserFileEntry>,
    activation: Option<Activation>,
    resolution: Option<u32>,
    embed_dim: Option<u32>,
    size: Option<u64>,
    #[serde(default)]
    family: Family,
    license: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFileEntry {
    name: String,
    url: String,
    sha256: Option<String>,
}

impl UserModel {
    fn into_entry(self, path: &Path) -> Result<ModelEntry, String> {
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err("a model has an empty name".into());
        }
        let ctx = |reason: String| format!("model `{name}`: {reason}");
        let files = match (self.url, self.files.is_empty()) {
            (Some(url), true) => {
                let file_name = url
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .split(['?', '#'])
                    .next()
                    .unwrap_or_default();
                vec![remote_file(file_name, url.clone(), self.sha256).map_err(ctx)?]
            }
            (None, false) if self.sha256.is_none() => self
                .files
                .into_iter()
                .map(|f| remote_file(&f.name, f.url, f.sha256))
                .collect::<Result<_, _>>()
                .map_err(ctx)?,
            (None, false) => return Err(ctx("`sha256` belongs to each entry of `files`".into())),
            (Some(_), false) => return Err(ctx("give either `url` or `files`, not both".into())),
            (None, true) => return Err(ctx("no `url` (or `files`) to download".into())),
        };
        if !self.format.is_folder() && files.len() != 1 {
            return Err(ctx(format!(
                "format `{}` is a single file: give one `url`",
                self.format.as_str()
            )));
        }
        Ok(ModelEntry {
            aliases: Vec::new(),
            family: self.family,
            sources: vec![Source {
                kind: SourceKind::Url,
                format: self.format,
                files,
                cache_key: name.clone(),
                size_bytes: self.size,
            }],
            name,
            resolution: self.resolution,
            embed_dim: self.embed_dim,
            activation: self.activation,
            license: self.license,
            origin: Origin::User(path.to_path_buf()),
        })
    }
}

/// Checks what a user file gives: an http(s) URL, a plain file name that stays inside the model's
/// cache folder, a 64-hex-digit SHA-256.
fn remote_file(name: &str, url: String, sha256: Option<String>) -> Result<RemoteFile, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("url `{url}` is not an http:// or https:// URL"));
    }
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        return Err(format!(
            "file name `{name}` must be a plain file name (from `{url}`)"
        ));
    }
    let sha256 = match sha256 {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(h) => return Err(format!("sha256 `{h}` is not 64 hexadecimal digits")),
        None => None,
    };
    Ok(RemoteFile {
        name: name.to_string(),
        url,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str, ext: &str) -> Result<Registry, HubError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("models.{ext}"));
        std::fs::write(&path, text).unwrap();
        Registry::builtin().with_user_file(&path)
    }

    #[test]
    fn builtin_names_resolve_exactly_and_case_insensitively() {
        let r = Registry::builtin();
        assert_eq!(r.get("ViT-B/32").unwrap().format(), ArtifactFormat::Openai);
        assert_eq!(r.get("vit-l/14@336px").unwrap().name, "ViT-L/14@336px");
        assert!(r.get("ViT-B/33").is_none());
    }

    #[test]
    fn aliases_resolve_to_their_entry() {
        let r = Registry::builtin();
        for (alias, name) in [
            (
                "google/siglip2-base-patch16-224",
                "siglip2-base-patch16-224",
            ),
            (
                "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                "ViT-B-32/laion2b_s34b_b79k",
            ),
            ("ViT-B-32/openai", "ViT-B/32"),
            ("vit-l-14-336/openai", "ViT-L/14@336px"),
        ] {
            assert_eq!(r.get(alias).map(|e| e.name.as_str()), Some(name), "{alias}");
        }
    }

    #[test]
    fn suggestions_find_near_misses() {
        let r = Registry::builtin();
        assert_eq!(r.suggest("ViT-B32")[0], "ViT-B/32");
        assert_eq!(r.suggest("vit-b-16")[0], "ViT-B/16");
        assert_eq!(r.suggest("RN5")[0], "RN50");
        assert!(r.suggest("zzzzzzzzzzzz").is_empty());
    }

    #[test]
    fn toml_and_json_user_files_add_and_override_entries() {
        let sha = "ab".repeat(32);
        let r = user(
            &format!("[[models]]\nname = \"mine\"\nformat = \"safetensors\"\nurl = \"http://h/x/m.safetensors\"\nsha256 = \"{sha}\"\nactivation = \"gelu\"\n\n[[models]]\nname = \"ViT-B/32\"\nformat = \"openai\"\nurl = \"https://mirror/ViT-B-32.pt\"\n"),
            "toml",
        )
        .unwrap();
        let mine = r.get("mine").unwrap();
        assert_eq!(mine.files()[0].name, "m.safetensors");
        assert_eq!(mine.files()[0].sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(mine.activation, Some(Activation::Gelu));
        assert!(matches!(mine.origin, Origin::User(_)));
        assert_eq!(
            r.get("ViT-B/32").unwrap().files()[0].url,
            "https://mirror/ViT-B-32.pt"
        );
        assert_eq!(
            r.entries().iter().filter(|e| e.name == "ViT-B/32").count(),
            1
        );

        let r = user(r#"[{"name": "hf", "format": "hf", "files": [{"name": "config.json", "url": "http://h/config.json"}, {"name": "model.safetensors", "url": "http://h/model.safetensors"}]}]"#, "json").unwrap();
        assert_eq!(r.get("hf").unwrap().files().len(), 2);
    }

    #[test]
    fn bad_user_files_name_the_file_and_the_reason() {
        let cases = [
            ("[[models]]\nname = \"a\"\nformat = \"safetensors\"\nurl = \"ftp://h/a\"\n", "not an http"),
            (
                "[[models]]\nname = \"a\"\nformat = \"safetensors\"\nurl = \"http://h/a\"\nsha256 = \"12\"\n",
                "64 hexadecimal",
            ),
            ("[[models]]\nname = \"a\"\nformat = \"onnx\"\nurl = \"http://h/a\"\n", "invalid TOML"),
            ("[[models]]\nname = \"a\"\nformat = \"safetensors\"\n", "no `url`"),
            (
                "[[models]]\nname = \"a\"\nformat = \"hf\"\nfiles = [{name = \"../x\", url = \"http://h/x\"}]\n",
                "plain file name",
            ),
        ];
        for (text, needle) in cases {
            let err = user(text, "toml").unwrap_err().to_string();
            assert!(
                err.contains("models.toml") && err.contains(needle),
                "{needle}: {err}"
            );
        }
    }
}
