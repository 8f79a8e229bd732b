//! [`TextTokenizer`]: the tokenizer a text model was trained with, as the model sees its ids.
//!
//! Three kinds, each matching what the reference Python stack produces for the checkpoint:
//! - CLIP's BPE ([`Tokenizer`]), `open_clip.tokenize`: SOT, ids, EOT, zero padding;
//! - a `tokenizer.json` folder, read with Hugging Face's `tokenizers` and configured the way
//!   transformers 5 configures it (see [`TextTokenizer::from_folder`]);
//! - a SentencePiece `spiece.model` folder (SigLIP 1), tokenized like transformers' slow
//!   `SiglipTokenizer` (module `spm`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokenizers::{PostProcessor, TruncationDirection};

use crate::spm::{ModelProto, SentencePiece, SiglipSpm};
use crate::{shorten_for_display, Overflow, TokenizeError, Tokenizer};

/// Why [`TextTokenizer::from_folder`] could not build a tokenizer; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder has neither `tokenizer.json` nor `spiece.model`.
    #[error("{}: no tokenizer.json or spiece.model in this folder", dir.display())]
    NoTokenizerFile {
        /// The folder searched.
        dir: PathBuf,
    },
    /// A file exists but could not be read.
    #[error("{}: unreadable: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON, or a field has the wrong type.
    #[error("{}: malformed JSON: {reason}", path.display())]
    MalformedJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `tokenizer.json` is JSON but not a tokenizer `tokenizers` can build.
    #[error("{}: not a valid tokenizer: {reason}", path.display())]
    MalformedTokenizer {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `spiece.model` is not a well-formed SentencePiece model protobuf.
    #[error("{}: malformed SentencePiece model: {reason}", path.display())]
    MalformedSentencePiece {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Neither the tokenizer configuration nor the tokenizer names a padding token.
    #[error("{}: no pad token configured (pad_token missing)", path.display())]
    MissingPadToken {
        /// The configuration file consulted (or `tokenizer.json` when there is none).
        path: PathBuf,
    },
    /// A configured special token is not in the vocabulary.
    #[error("{}: {role} {token:?} is not in the vocabulary", path.display())]
    UnknownToken {
        /// The configuration file naming it.
        path: PathBuf,
        /// Which token (`pad_token`, `eos_token`, ...).
        role: &'static str,
        /// The token text.
        token: String,
    },
    /// The file is valid but uses something this crate does not implement.
    #[error("{}: unsupported: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
}

/// A tokenizer producing exactly `context_length` ids per text, as the text model sees them.
pub struct TextTokenizer {
    kind: Kind,
    context_length: usize,
    pad_id: u32,
    /// Stable identity: kind and a hash of the files read.
    identity: String,
}

enum Kind {
    Clip,
    HuggingFace {
        tokenizer: Box<tokenizers::Tokenizer>,
        pad_left: bool,
        truncate_left: bool,
    },
    SentencePiece {
        spm: Box<SiglipSpm>,
        pad_left: bool,
        truncate_left: bool,
    },
}

impl fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("identity", &self.identity)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

/// The JSON files of a folder, read once (bytes for the identity hash, parsed values for use).
struct Folder {
    dir: PathBuf,
    hasher: Sha256,
}

impl Folder {
    fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, LoadError> {
        let path = self.dir.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Unreadable {
            path: path.clone(),
            source,
        })?;
        self.hasher.update(name.as_bytes());
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(&bytes);
        Ok(Some(bytes))
    }

    fn json(&mut self, name: &str) -> Result<Option<(PathBuf, Value)>, LoadError> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::MalformedJson {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if !value.is_object() {
            return Err(LoadError::MalformedJson {
                path,
                reason: "expected a JSON object".into(),
            });
        }
        Ok(Some((path, value)))
    }
}

/// A special-token entry of `tokenizer_config.json` / `special_tokens_map.json`: a string or an
/// `AddedToken` object with `content`.
fn token_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The configuration keys transformers reads, from `tokenizer_config.json` with
/// `special_tokens_map.json` filling in the special tokens it lacks.
struct Config {
    path: PathBuf,
    tokenizer_config: Option<Value>,
    special_tokens_map: Option<Value>,
    model_type: Option<String>,
}

impl Config {
    fn token(&self, key: &str) -> Result<Option<String>, LoadError> {
        for value in [&self.tokenizer_config, &self.special_tokens_map]
            .into_iter()
            .flatten()
        {
            match value.get(key) {
                None | Some(Value::Null) => continue,
                Some(v) => {
                    return token_text(v)
                        .map(Some)
                        .ok_or_else(|| LoadError::MalformedJson {
                            path: self.path.clone(),
                            reason: format!("{key} is neither a string nor an object with content"),
                        })
                }
            }
        }
        Ok(None)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.tokenizer_config.as_ref()?.get(key)?.as_str()
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.tokenizer_config.as_ref()?.get(key)?.as_bool()
    }

    fn side_is_left(&self, key: &str, default_left: bool) -> Result<bool, LoadError> {
        match self.str(key) {
            None => Ok(default_left),
            Some("left") => Ok(true),
            Some("right") => Ok(false),
            Some(other) => Err(LoadError::MalformedJson {
                path: self.path.clone(),
                reason: format!("{key} must be \"left\" or \"right\", not {other:?}"),
            }),
        }
    }

    /// `additional_special_tokens` and the contents of `added_tokens_decoder`.
    fn listed_special_tokens(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(config) = &self.tokenizer_config else {
            return out;
        };
        if let Some(Value::Array(extra)) = config.get("additional_special_tokens") {
            out.extend(extra.iter().filter_map(token_text));
        }
        if let Some(Value::Object(decoder)) = config.get("added_tokens_decoder") {
            out.extend(decoder.values().filter_map(token_text));
        }
        out
    }

    fn tokenizer_class(&self) -> Option<&str> {
        self.str("tokenizer_class")
    }
}

impl TextTokenizer {
    /// CLIP's BPE as `open_clip.tokenize` applies it: SOT, ids, EOT, padded with zeros. The ids
    /// are [`Tokenizer::tokenize`]'s except for texts spelling a special token: open_clip
    /// recognises `<start_of_text>` / `<end_of_text>` where OpenAI's `clip.tokenize` recognises
    /// `<|startoftext|>` / `<|endoftext|>`.
    pub fn clip(context_length: usize) -> Self {
        TextTokenizer {
            kind: Kind::Clip,
            context_length,
            pad_id: 0,
            identity: format!("clip-bpe:bpe_simple_vocab_16e6:ctx={context_length}"),
        }
    }

    /// The tokenizer of a checkpoint folder, as `AutoTokenizer.from_pretrained(dir)` (transformers
    /// 5) builds it, called with `padding="max_length", max_length=context_length`.
    ///
    /// - `tokenizer.json`: normalizer, pre-tokenizer, model, added tokens and post-processor
    ///   (BOS/EOS) as written, for the generic classes (`TokenizersBackend`,
    ///   `PreTrainedTokenizerFast`, unknown names). Transformers ignores `add_bos_token` /
    ///   `add_eos_token` of `tokenizer_config.json` when `tokenizer.json` exists, so this does
    ///   too. `GemmaTokenizer` (SigLIP 2 FixRes checkpoints) and `Siglip2Tokenizer` (model type
    ///   `siglip2`) are rebuilt as transformers rebuilds them: the file's vocabulary and merges
    ///   under the class's fixed pipeline, which lowercases for `Siglip2Tokenizer` only (a
    ///   `Lowercase` in the file of a `GemmaTokenizer` folder is dropped, as transformers drops
    ///   it), and pads on the left unless `padding_side` says otherwise. `CLIPTokenizer` (Hugging
    ///   Face CLIP checkpoints) is rebuilt likewise, with `RobertaProcessing(eos, bos)` as its
    ///   post-processor. The pad token comes from `tokenizer_config.json`, else
    ///   `special_tokens_map.json`, else the class default (`<pad>` for the Gemma family,
    ///   `<|endoftext|>` for CLIP), else the padding block of `tokenizer.json`; a tokenizer
    ///   without one is a [`LoadError::MissingPadToken`].
    /// - `spiece.model` (used when there is no `tokenizer.json`, or when the folder declares
    ///   `SiglipTokenizer`): transformers' slow `SiglipTokenizer` with its defaults (`</s>` as EOS
    ///   and pad, `<unk>`, lowercasing) unless `tokenizer_config.json` /
    ///   `special_tokens_map.json` override them.
    ///
    /// The caller's `context_length` (the model config's, 64 for SigLIP) is the `max_length`;
    /// `model_max_length` is not consulted, as `max_length=` overrides it in transformers.
    pub fn from_folder(dir: &Path, context_length: usize) -> Result<Self, LoadError> {
        let mut folder = Folder {
            dir: dir.to_owned(),
            hasher: Sha256::new(),
        };
        let tokenizer_config = folder.json("tokenizer_config.json")?;
        let special_tokens_map = folder.json("special_tokens_map.json")?;
        let model_config = folder.json("config.json")?;
        let config = Config {
            path: tokenizer_config
                .as_ref()
                .map(|(p, _)| p.clone())
                .unwrap_or_else(|| dir.join("tokenizer_config.json")),
            tokenizer_config: tokenizer_config.map(|(_, v)| v),
            special_tokens_map: special_tokens_map.map(|(_, v)| v),
            model_type: model_config
                .as_ref()
                .and_then(|(_, v)| v.get("model_type"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let has_json = dir.join("tokenizer.json").is_file();
        let has_spm = dir.join("spiece.model").is_file();
        let declares_siglip1 = match config.tokenizer_class() {
            Some(class) => class.trim_end_matches("Fast") == "SiglipTokenizer",
            None => config.model_type.as_deref() == Some("siglip"),
        };
        if has_spm && (!has_json || declares_siglip1) {
            Self::sentencepiece(folder, &config, context_length)
        } else if has_json {
            Self::hugging_face(folder, &config, context_length)
        } else {
            Err(LoadError::NoTokenizerFile {
                dir: dir.to_owned(),
            })
        }
    }

    fn hugging_face(
        mut folder: Folder,
        config: &Config,
        context_length: usize,
    ) -> Result<Self, LoadError> {
        let path = folder.dir.join("tokenizer.json");
        let bytes = folder
            .read("tokenizer.json")?
            .ok_or_else(|| LoadError::NoTokenizerFile {
                dir: folder.dir.clone(),
            })?;
        let mut json: Value =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::MalformedJson {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if !json.is_object() {
            return Err(LoadError::MalformedJson {
                path,
                reason: "expected a JSON object".into(),
            });
        }
        // Transformers' tokenizer classes with their own `__init__` rebuild the backend from the
        // file's vocabulary and merges under a fixed pipeline; the two Gemma-family ones matter
        // here. SigLIP 2 (NaFlex) configs are known to name the wrong class on the Hub, so their
        // model type wins over `tokenizer_class`.
        let class = if config.model_type.as_deref() == Some("siglip2") {
            Some("Siglip2Tokenizer")
        } else {
            config.tokenizer_class().map(|c| c.trim_end_matches("Fast"))
        };
        let rebuilt = match class {
            Some("Siglip2Tokenizer") => Rebuilt::Gemma { lowercase: true },
            Some("GemmaTokenizer") => Rebuilt::Gemma { lowercase: false },
            Some("CLIPTokenizer") => Rebuilt::Clip,
            _ => Rebuilt::AsWritten,
        };
        let defaults: &[(&str, &str)] = match rebuilt {
            Rebuilt::Gemma { .. } => &[
                ("bos_token", "<bos>"),
                ("eos_token", "<eos>"),
                ("unk_token", "<unk>"),
                ("pad_token", "<pad>"),
                ("mask_token", "<mask>"),
            ],
            Rebuilt::Clip => &[
                ("bos_token", "<|startoftext|>"),
                ("eos_token", "<|endoftext|>"),
                ("unk_token", "<|endoftext|>"),
                ("pad_token", "<|endoftext|>"),
            ],
            Rebuilt::AsWritten => &[],
        };
        let mut class_tokens = std::collections::HashMap::new();
        for &(key, default) in defaults {
            let token = config.token(key)?.unwrap_or_else(|| default.into());
            class_tokens.insert(key, token);
        }
        if rebuilt != Rebuilt::AsWritten {
            let mut named: Vec<String> = class_tokens.values().cloned().collect();
            named.extend(config.listed_special_tokens());
            rebuild_pipeline(&mut json, rebuilt, &class_tokens["unk_token"], &named).map_err(
                |reason| LoadError::MalformedTokenizer {
                    path: path.clone(),
                    reason,
                },
            )?;
        }
        let mut tokenizer = guarded(|| {
            serde_json::from_value::<tokenizers::Tokenizer>(json).map_err(|e| e.to_string())
        })
        .map_err(|reason| LoadError::MalformedTokenizer {
            path: path.clone(),
            reason,
        })?;
        // Truncation and padding are applied here, per call, as transformers does per call.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| LoadError::MalformedTokenizer {
                path: path.clone(),
                reason: e.to_string(),
            })?;

        if rebuilt == Rebuilt::Clip {
            // CLIPTokenizer sets RobertaProcessing(eos, bos) whatever the file says.
            let id = |key: &'static str| {
                let token = class_tokens[key].clone();
                match tokenizer.token_to_id(&token) {
                    Some(id) => Ok((token, id)),
                    None => Err(LoadError::UnknownToken {
                        path: config.path.clone(),
                        role: key,
                        token,
                    }),
                }
            };
            let (eos, bos) = (id("eos_token")?, id("bos_token")?);
            tokenizer.with_post_processor(Some(
                tokenizers::processors::roberta::RobertaProcessing::new(eos, bos)
                    .trim_offsets(false)
                    .add_prefix_space(false),
            ));
        }
        let pad_token = match config.token("pad_token")? {
            Some(t) => Some(t),
            None => match class_tokens.get("pad_token") {
                Some(t) => Some(t.clone()),
                None => tokenizer.get_padding().map(|p| p.pad_token.clone()),
            },
        };
        let pad_token = pad_token.ok_or_else(|| LoadError::MissingPadToken {
            path: if config.tokenizer_config.is_some() {
                config.path.clone()
            } else {
                path.clone()
            },
        })?;
        let pad_id = tokenizer
            .token_to_id(&pad_token)
            .ok_or_else(|| LoadError::UnknownToken {
                path: config.path.clone(),
                role: "pad_token",
                token: pad_token.clone(),
            })?;
        // Both Gemma-family classes declare `padding_side = "left"`.
        let pad_left =
            config.side_is_left("padding_side", matches!(rebuilt, Rebuilt::Gemma { .. }))?;
        let truncate_left = config.side_is_left("truncation_side", false)?;
        let identity = format!(
            "hf-tokenizers:{}:sha256={:x}:ctx={context_length}",
            match rebuilt {
                Rebuilt::Gemma { lowercase: true } => "siglip2",
                Rebuilt::Gemma { lowercase: false } => "gemma",
                Rebuilt::Clip => "clip",
                Rebuilt::AsWritten => "json",
            },
            folder.hasher.finalize()
        );
        Ok(TextTokenizer {
            kind: Kind::HuggingFace {
                tokenizer: Box::new(tokenizer),
                pad_left,
                truncate_left,
            },
            context_length,
            pad_id,
            identity,
        })
    }

    fn sentencepiece(
        mut folder: Folder,
        config: &Config,
        context_length: usize,
    ) -> Result<Self, LoadError> {
        let path = folder.dir.join("spiece.model");
        let bytes = folder
            .read("spiece.model")?
            .ok_or_else(|| LoadError::NoTokenizerFile {
                dir: folder.dir.clone(),
            })?;
        let malformed = |reason: String| LoadError::MalformedSentencePiece {
            path: path.clone(),
            reason,
        };
        let model = ModelProto::parse(&bytes).map_err(malformed)?;
        if model.model_type != 1 {
            return Err(LoadError::Unsupported {
                path,
                reason: format!(
                    "SentencePiece model type {} (only unigram is supported)",
                    model.model_type
                ),
            });
        }
        let sp = guarded(|| SentencePiece::new(&model)).map_err(malformed)?;

        let eos = config.token("eos_token")?.unwrap_or_else(|| "</s>".into());
        let unk = config.token("unk_token")?.unwrap_or_else(|| "<unk>".into());
        let pad = config.token("pad_token")?.unwrap_or_else(|| "</s>".into());
        let lookup = |role: &'static str, token: &str| {
            sp.piece_id(token).ok_or_else(|| LoadError::UnknownToken {
                path: config.path.clone(),
                role,
                token: token.to_owned(),
            })
        };
        let eos_id = lookup("eos_token", &eos)?;
        let unk_id = lookup("unk_token", &unk)?;
        let pad_id = lookup("pad_token", &pad)?;
        // Special tokens split out of the raw text, all with lstrip/rstrip as SiglipTokenizer
        // declares them, plus the configuration's additional special tokens.
        let mut specials = vec![
            (eos.clone(), eos_id, true, true),
            (unk.clone(), unk_id, true, true),
            (pad.clone(), pad_id, true, true),
        ];
        if let Some(Value::Array(extra)) = config
            .tokenizer_config
            .as_ref()
            .and_then(|c| c.get("additional_special_tokens"))
        {
            for token in extra.iter().filter_map(token_text) {
                specials.push((
                    token.clone(),
                    lookup("additional_special_tokens", &token)?,
                    false,
                    false,
                ));
            }
        }
        let unk_token_length = sp.encode(&unk).map_err(malformed)?.len();
        let space_id = sp.piece_id("\u{2581}");
        let spm = SiglipSpm {
            sp,
            specials,
            unk_token: unk,
            unk_token_length,
            eos_id,
            space_id,
            do_lower_case: config.bool("do_lower_case").unwrap_or(true),
        };
        let pad_left = config.side_is_left("padding_side", false)?;
        let truncate_left = config.side_is_left("truncation_side", false)?;
        let identity = format!(
            "sentencepiece:siglip:sha256={:x}:ctx={context_length}",
            folder.hasher.finalize()
        );
        Ok(TextTokenizer {
            kind: Kind::SentencePiece {
                spm: Box::new(spm),
                pad_left,
                truncate_left,
            },
            context_length,
            pad_id,
            identity,
        })
    }

    /// Number of ids per text.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The id padding fills with (0 for CLIP, where it is also the id of `!`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Stable identity for cache keys: kind, SHA-256 of the tokenizer files read, context length.
    pub fn describe(&self) -> String {
        self.identity.clone()
    }

    /// Exactly `context_length` ids for `text`, padded with [`TextTokenizer::pad_id`] on the
    /// configured side. A text whose ids (with the special tokens) exceed the context fails with
    /// [`TokenizeError::TooLong`] under [`Overflow::Error`], and is cut as transformers'
    /// `truncation=True` cuts it (CLIP: as `clip.tokenize(truncate=True)`) under
    /// [`Overflow::Truncate`].
    pub fn tokenize(&self, text: &str, overflow: Overflow) -> Result<Vec<u32>, TokenizeError> {
        let n = self.context_length;
        let too_long = |tokens: usize| TokenizeError::TooLong {
            text: shorten_for_display(text),
            tokens,
            context_length: n,
        };
        let backend = |reason: String| TokenizeError::Backend {
            text: shorten_for_display(text),
            reason,
        };
        let (ids, pad_left) = match &self.kind {
            Kind::Clip => return Tokenizer::global().tokenize_open_clip(text, n, overflow),
            Kind::HuggingFace {
                tokenizer,
                pad_left,
                truncate_left,
            } => {
                let mut encoding =
                    guarded(|| tokenizer.encode(text, false).map_err(|e| e.to_string()))
                        .map_err(backend)?;
                let added = tokenizer
                    .get_post_processor()
                    .map_or(0, |p| p.added_tokens(false));
                let total = encoding.len() + added;
                if total > n {
                    match overflow {
                        Overflow::Error => return Err(too_long(total)),
                        Overflow::Truncate => {
                            let direction = if *truncate_left {
                                TruncationDirection::Left
                            } else {
                                TruncationDirection::Right
                            };
                            encoding.truncate(n.saturating_sub(added), 0, direction);
                        }
                    }
                }
                let encoding = guarded(|| {
                    tokenizer
                        .post_process(encoding, None, true)
                        .map_err(|e| e.to_string())
                })
                .map_err(backend)?;
                let mut ids = encoding.get_ids().to_vec();
                // Only when the special tokens alone exceed the context (tokenizers then keeps
                // them all); transformers' output would be longer than the model accepts.
                if ids.len() > n {
                    ids.truncate(n);
                }
                (ids, *pad_left)
            }
            Kind::SentencePiece {
                spm,
                pad_left,
                truncate_left,
            } => {
                let mut ids = guarded(|| spm.encode(text)).map_err(backend)?;
                if ids.len() > n {
                    match overflow {
                        Overflow::Error => return Err(too_long(ids.len())),
                        Overflow::Truncate => {
                            // The slow tokenizer cuts the text's ids to leave room for one EOS,
                            // then appends EOS unless the cut ids already end with it.
                            ids.pop();
                            let keep = n.saturating_sub(1);
                            if *truncate_left {
                                ids.drain(..ids.len() - keep);
                            } else {
                                ids.truncate(keep);
                            }
                            if ids.last() != Some(&spm.eos_id) {
                                ids.push(spm.eos_id);
                            }
                            ids.truncate(n);
                        }
                    }
                }
                (ids, *pad_left)
            }
        };
        Ok(pad(ids, n, self.pad_id, pad_left))
    }
}

/// Runs `f`, turning a panic inside the tokenizer libraries (hostile files or text reaching an
/// unchecked path) into an error, so that callers only ever see `Result`s.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the tokenizer failed on this input".to_owned()))
}

fn pad(mut ids: Vec<u32>, n: usize, pad_id: u32, left: bool) -> Vec<u32> {
    if ids.len() < n {
        if left {
            let mut padded = vec![pad_id; n - ids.len()];
            padded.extend_from_slice(&ids);
            ids = padded;
        } else {
            ids.resize(n, pad_id);
        }
    }
    ids
}

/// How transformers' tokenizer class treats `tokenizer.json`: classes with their own `__init__`
/// rebuild the backend from the file's vocabulary and merges under a fixed pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rebuilt {
    /// `TokenizersBackend`, `PreTrainedTokenizerFast` and unknown classes: the file as written.
    AsWritten,
    /// `GemmaTokenizer` (SigLIP 2 FixRes) and `Siglip2Tokenizer` (lowercasing).
    Gemma { lowercase: bool },
    /// `CLIPTokenizer` (Hugging Face CLIP checkpoints).
    Clip,
}

/// The class pipelines of [`Rebuilt`], applied to the file's JSON:
/// - Gemma: BPE with `fuse_unk` and byte fallback, the normalizer `Replace(" ", "▁")` (after
///   `Lowercase` for `Siglip2Tokenizer` only), the pre-tokenizer
///   `Split(" ", merged_with_previous)`; the post-processor of the file is kept.
/// - CLIP: BPE with the `</w>` suffix and no unknown fusing, the normalizer NFC, `\s+` -> space,
///   `Lowercase`, the pre-tokenizer CLIP's pattern (`Split`, inverted) then byte-level; the
///   post-processor is set after building (`RobertaProcessing(eos, bos)`).
///
/// Either way the added tokens are only the named special tokens (`named`), as the class adds
/// them; the file's other added tokens are dropped.
fn rebuild_pipeline(
    json: &mut Value,
    rebuilt: Rebuilt,
    unk: &str,
    named: &[String],
) -> Result<(), String> {
    let model = json
        .get_mut("model")
        .and_then(Value::as_object_mut)
        .ok_or("no model object")?;
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return Err("this tokenizer class needs a BPE model".into());
    }
    model.insert("dropout".into(), Value::Null);
    model.insert("unk_token".into(), Value::String(unk.to_owned()));
    model.insert("ignore_merges".into(), Value::Bool(false));
    match rebuilt {
        Rebuilt::Gemma { lowercase } => {
            model.insert("fuse_unk".into(), Value::Bool(true));
            model.insert("byte_fallback".into(), Value::Bool(true));
            model.insert("continuing_subword_prefix".into(), Value::Null);
            model.insert("end_of_word_suffix".into(), Value::Null);
            let replace = serde_json::json!(
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}
            );
            json["normalizer"] = if lowercase {
                serde_json::json!({"type": "Sequence", "normalizers": [{"type": "Lowercase"}, replace]})
            } else {
                replace
            };
            json["pre_tokenizer"] = serde_json::json!({
                "type": "Split",
                "pattern": {"String": " "},
                "behavior": "MergedWithPrevious",
                "invert": false
            });
        }
        Rebuilt::Clip => {
            model.insert("fuse_unk".into(), Value::Bool(false));
            model.insert("byte_fallback".into(), Value::Bool(false));
            model.insert(
                "continuing_subword_prefix".into(),
                Value::String(String::new()),
            );
            model.insert("end_of_word_suffix".into(), Value::String("</w>".into()));
            json["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": [
                {"type": "NFC"},
                {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
                {"type": "Lowercase"}
            ]});
            json["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": CLIP_PATTERN}, "behavior": "Removed", "invert": true},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
            ]});
        }
        Rebuilt::AsWritten => {}
    }
    if let Some(Value::Array(added)) = json.get_mut("added_tokens") {
        added.retain(|t| {
            t.get("content")
                .and_then(Value::as_str)
                .is_some_and(|c| named.iter().any(|n| n == c))
        });
    }
    Ok(())
}

/// `CLIPTokenizer`'s pre-tokenizer pattern.
const CLIP_PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_wraps_the_bpe() {
        let t = TextTokenizer::clip(77);
        let ids = t.tokenize("a dog", Overflow::Error).unwrap();
        assert_eq!(
            ids,
            Tokenizer::global()
                .tokenize("a dog", 77, Overflow::Error)
                .unwrap()
        );
        assert_eq!((t.context_length(), t.pad_id()), (77, 0));
        assert!(t.describe().contains("ctx=77"));
        assert_ne!(t.describe(), TextTokenizer::clip(32).describe());
    }

    #[test]
    fn missing_folder_names_it() {
        let err = TextTokenizer::from_folder(Path::new("/nonexistent/folder"), 64).unwrap_err();
        assert!(matches!(err, LoadError::NoTokenizerFile { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/folder"), "{err}");
    }

    #[test]
    fn pads_on_either_side() {
        assert_eq!(pad(vec![1, 2], 4, 9, false), vec![1, 2, 9, 9]);
        assert_eq!(pad(vec![1, 2], 4, 9, true), vec![9, 9, 1, 2]);
    }
}
