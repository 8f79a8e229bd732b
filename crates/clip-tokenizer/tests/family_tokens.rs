//! Every model family's tokenizer against the reference packages (transformers 5.24 /
//! open_clip 3.3) on the multilingual corpus: `fixtures/goldens/<model>.tokens.jsonl` holds, per
//! line, the ids padded to the context length with `truncation=True` and the untruncated length.
//! [`TextTokenizer`] must give the same ids under `Overflow::Truncate`, and fail under
//! `Overflow::Error` exactly where the untruncated length exceeds the context.
//!
//! Also: a malformed `tokenizer.json`, a truncated or corrupted `spiece.model` and a missing pad
//! token are load errors naming the file, never panics.

use std::path::{Path, PathBuf};

use clip_tokenizer::{LoadError, Overflow, TextTokenizer, TokenizeError};

#[derive(serde::Deserialize)]
struct Golden {
    text: String,
    ids: Vec<u32>,
    untruncated_len: usize,
}

fn goldens(model: &str) -> Vec<Golden> {
    let path = clip_fixtures::committed(&format!("goldens/{model}.tokens.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i}: {e}")))
        .collect()
}

fn model_dir(model: &str) -> PathBuf {
    clip_fixtures::committed(&format!("models/{model}"))
}

/// SigLIP's text context: `text_config.max_position_embeddings`, 64 when absent (the
/// `SiglipTextConfig` default).
fn siglip_context_length(model: &str) -> usize {
    let path = model_dir(model).join("config.json");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["text_config"]["max_position_embeddings"]
        .as_u64()
        .map_or(64, |n| n as usize)
}

/// Compares every line; returns the descriptions of the differing ones.
fn compare(model: &str, tok: &TextTokenizer) -> (usize, Vec<String>) {
    let goldens = goldens(model);
    assert!(!goldens.is_empty(), "{model}: no goldens");
    let n = tok.context_length();
    let mut failures = Vec::new();
    for (line, g) in goldens.iter().enumerate() {
        assert_eq!(
            g.ids.len(),
            n,
            "{model} line {line}: golden length is not the context"
        );
        let got = tok.tokenize(&g.text, Overflow::Truncate);
        let strict = tok.tokenize(&g.text, Overflow::Error);
        let ok_ids = got.as_ref().ok() == Some(&g.ids);
        let ok_overflow = match (&strict, g.untruncated_len > n) {
            (Err(TokenizeError::TooLong { tokens, .. }), true) => *tokens == g.untruncated_len,
            (Ok(ids), false) => ids == &g.ids,
            _ => false,
        };
        if !(ok_ids && ok_overflow) {
            failures.push(format!(
                "{model} line {line}: text {:?}\n  expected {:?} (untruncated {})\n  got      {got:?}\n  strict   {strict:?}",
                g.text, g.ids, g.untruncated_len
            ));
        }
    }
    println!(
        "{model}: {} of {} lines identical ({})",
        goldens.len() - failures.len(),
        goldens.len(),
        tok.describe()
    );
    (goldens.len(), failures)
}

fn assert_all_match(model: &str, tok: &TextTokenizer) {
    let (_, failures) = compare(model, tok);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn openclip_squash_matches_open_clip() {
    assert_all_match("tiny-openclip-squash", &TextTokenizer::clip(32));
}

#[test]
fn openclip_longest_matches_open_clip() {
    assert_all_match("tiny-openclip-longest", &TextTokenizer::clip(32));
}

#[test]
fn siglip2_gemma_tokenizer_json_matches_transformers() {
    let model = "tiny-siglip2";
    let tok = TextTokenizer::from_folder(&model_dir(model), siglip_context_length(model)).unwrap();
    assert_eq!(tok.pad_id(), 0);
    assert!(
        tok.describe().starts_with("hf-tokenizers:gemma:"),
        "{}",
        tok.describe()
    );
    assert_all_match(model, &tok);
}

#[test]
fn siglip1_spiece_model_matches_transformers() {
    let model = "tiny-siglip1-spm";
    let tok = TextTokenizer::from_folder(&model_dir(model), siglip_context_length(model)).unwrap();
    assert_eq!(tok.pad_id(), 1);
    assert!(
        tok.describe().starts_with("sentencepiece:siglip:"),
        "{}",
        tok.describe()
    );
    assert_all_match(model, &tok);
}

#[test]
fn describe_tracks_files_and_context() {
    let dir = model_dir("tiny-siglip2");
    let a = TextTokenizer::from_folder(&dir, 64).unwrap();
    let b = TextTokenizer::from_folder(&dir, 64).unwrap();
    let c = TextTokenizer::from_folder(&dir, 32).unwrap();
    assert_eq!(a.describe(), b.describe());
    assert_ne!(a.describe(), c.describe());
    let spm = TextTokenizer::from_folder(&model_dir("tiny-siglip1-spm"), 64).unwrap();
    assert_ne!(a.describe(), spm.describe());
}

#[test]
fn text_tokenizer_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TextTokenizer>();
}

/// A scratch folder under the system temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "clip-tokenizer-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn names(err: &LoadError, file: &str) -> bool {
    err.to_string().contains(file)
}

#[test]
fn malformed_tokenizer_json_is_a_load_error() {
    let original = std::fs::read(model_dir("tiny-siglip2").join("tokenizer.json")).unwrap();
    let scratch = Scratch::new("bad-json");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", original[..original.len() / 2].to_vec()),
        ("not json", b"\x00\xffnot json".to_vec()),
        ("array", b"[1, 2, 3]".to_vec()),
        (
            "no model",
            br#"{"version": "1.0", "added_tokens": []}"#.to_vec(),
        ),
        (
            "bad merges",
            br#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#.to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        scratch.write("tokenizer.json", &bytes);
        let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::MalformedJson { .. } | LoadError::MalformedTokenizer { .. }
            ),
            "{what}: {err}"
        );
        assert!(names(&err, "tokenizer.json"), "{what}: {err}");
    }
    // A malformed tokenizer_config.json is named too.
    scratch.write("tokenizer.json", &original);
    scratch.write("tokenizer_config.json", b"{\"pad_token\": ");
    let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
    assert!(matches!(err, LoadError::MalformedJson { .. }), "{err}");
    assert!(names(&err, "tokenizer_config.json"), "{err}");
}

#[test]
fn missing_pad_token_is_a_load_error() {
    let dir = model_dir("tiny-siglip2");
    let scratch = Scratch::new("no-pad");
    // The generic class has no default pad token; nothing in the folder names one.
    scratch.write(
        "tokenizer.json",
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
    );
    scratch.write(
        "tokenizer_config.json",
        br#"{"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<eos>"}"#,
    );
    let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
    assert!(matches!(err, LoadError::MissingPadToken { .. }), "{err}");
    assert!(names(&err, "tokenizer_config.json"), "{err}");
    // A pad token that is not in the vocabulary.
    scratch.write(
        "tokenizer_config.json",
        br#"{"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<nope>"}"#,
    );
    let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
    assert!(matches!(err, LoadError::UnknownToken { .. }), "{err}");
    assert!(err.to_string().contains("<nope>"), "{err}");
    // special_tokens_map.json supplies it.
    scratch.write(
        "special_tokens_map.json",
        br#"{"pad_token": {"content": "<pad>"}}"#,
    );
    scratch.write(
        "tokenizer_config.json",
        br#"{"tokenizer_class": "PreTrainedTokenizerFast"}"#,
    );
    assert_eq!(
        TextTokenizer::from_folder(&scratch.0, 64).unwrap().pad_id(),
        0
    );
}

#[test]
fn neither_file_is_a_load_error() {
    let scratch = Scratch::new("empty");
    let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
    assert!(matches!(err, LoadError::NoTokenizerFile { .. }), "{err}");
}

#[test]
fn truncated_or_corrupted_spiece_model_never_panics() {
    let original = std::fs::read(model_dir("tiny-siglip1-spm").join("spiece.model")).unwrap();
    let scratch = Scratch::new("bad-spm");
    // Cut in the middle of the pieces: a field runs past the end.
    scratch.write("spiece.model", &original[..original.len() / 2 + 1]);
    let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
    assert!(
        matches!(err, LoadError::MalformedSentencePiece { .. }),
        "{err}"
    );
    assert!(names(&err, "spiece.model"), "{err}");
    scratch.write("spiece.model", b"");
    let err = TextTokenizer::from_folder(&scratch.0, 64).unwrap_err();
    assert!(names(&err, "spiece.model"), "{err}");

    // Every kind of damage either loads or fails cleanly, and what loads tokenizes.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let mut bytes = original.clone();
        match round % 3 {
            0 => bytes.truncate((next() % original.len() as u64) as usize),
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = next() as u8;
                }
            }
            _ => {
                // Damage the tail, where the trainer and normalizer specs (and the character
                // map) live.
                let tail = bytes.len().min(4096);
                for _ in 0..1 + next() % 16 {
                    let i = bytes.len() - 1 - (next() % tail as u64) as usize;
                    bytes[i] = next() as u8;
                }
            }
        }
        scratch.write("spiece.model", &bytes);
        match TextTokenizer::from_folder(&scratch.0, 64) {
            Ok(tok) => {
                for text in ["a photo of a cat", "Ünïcödé ½ … 猫", "", "</s> <unk>"] {
                    if let Ok(ids) = tok.tokenize(text, Overflow::Truncate) {
                        assert_eq!(ids.len(), 64);
                    }
                }
            }
            Err(err) => assert!(
                names(&err, "spiece.model") || names(&err, "tokenizer_config.json"),
                "{err}"
            ),
        }
    }
}

#[test]
fn truncation_keeps_eos_and_pads_on_the_configured_side() {
    let tok = TextTokenizer::from_folder(&model_dir("tiny-siglip2"), 8).unwrap();
    let long = "a photo of a cat ".repeat(10);
    let ids = tok.tokenize(&long, Overflow::Truncate).unwrap();
    assert_eq!(ids.len(), 8);
    // The tokenizer.json post-processor appends <eos> (id 1); truncation leaves room for it.
    assert_eq!(ids[7], 1);
    let err = tok.tokenize(&long, Overflow::Error).unwrap_err();
    assert!(
        err.to_string().contains("too long for context length 8"),
        "{err}"
    );

    let spm = TextTokenizer::from_folder(&model_dir("tiny-siglip1-spm"), 8).unwrap();
    let ids = spm.tokenize(&long, Overflow::Truncate).unwrap();
    assert_eq!(ids.len(), 8);
    assert_eq!(ids[7], 1, "</s> closes a truncated SigLIP 1 text");
}

#[test]
fn left_padding_when_configured() {
    let dir = model_dir("tiny-siglip2");
    let scratch = Scratch::new("left");
    scratch.write(
        "tokenizer.json",
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
    );
    // GemmaTokenizer's own default side is left.
    scratch.write(
        "tokenizer_config.json",
        br#"{"tokenizer_class": "GemmaTokenizer", "pad_token": "<pad>"}"#,
    );
    let tok = TextTokenizer::from_folder(&scratch.0, 8).unwrap();
    let ids = tok.tokenize("a cat", Overflow::Error).unwrap();
    assert_eq!(ids.len(), 8);
    assert_eq!(ids[0], 0);
    assert_eq!(ids[7], 1);
}

#[test]
fn from_folder_accepts_any_path_type() {
    let _ = TextTokenizer::from_folder(Path::new("does-not-exist"), 4).unwrap_err();
}

/// Random text over all of Unicode, special-token spellings included, at tiny and normal context
/// lengths: every tokenizer returns exactly `context_length` ids or a `TooLong` error.
#[test]
fn random_text_never_panics() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces = [
        "</s>",
        "<unk>",
        "<pad>",
        "<eos>",
        "<bos>",
        "<|endoftext|>",
        "<end_of_text>",
        "\u{2581}",
        " ",
        "\u{3000}",
        "…",
        "\u{1f}",
    ];
    for n in [0usize, 1, 2, 3, 5, 64] {
        let toks = [
            TextTokenizer::clip(n),
            TextTokenizer::from_folder(&model_dir("tiny-siglip2"), n).unwrap(),
            TextTokenizer::from_folder(&model_dir("tiny-siglip1-spm"), n).unwrap(),
        ];
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..next() % 24 {
                if next() % 4 == 0 {
                    text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                } else {
                    let cp = if next() % 2 == 0 {
                        (next() % 0x250) as u32
                    } else {
                        (next() % 0x11_0000) as u32
                    };
                    text.extend(char::from_u32(cp));
                }
            }
            for tok in &toks {
                let ids = tok.tokenize(&text, Overflow::Truncate).unwrap();
                assert_eq!(ids.len(), n, "{} {text:?}", tok.describe());
                match tok.tokenize(&text, Overflow::Error) {
                    Ok(strict) => assert_eq!(strict, ids),
                    Err(TokenizeError::TooLong { tokens, .. }) => assert!(tokens > n),
                    Err(e) => panic!("{}: {e}", tok.describe()),
                }
            }
        }
    }
}
