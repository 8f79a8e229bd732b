//! CLIP's tokenizer, byte-identical to the reference `clip.tokenize` / `SimpleTokenizer`
//! (openai-clip 1.0.1 with ftfy 6.3.1, Python 3.11).
//!
//! The pipeline of [`Tokenizer::encode`]:
//! 1. [`clean_text`]: ftfy's `fix_text`, `html.unescape` twice, whitespace collapse, `str.lower()`;
//! 2. pre-tokenisation with the reference regular expression (module `pretokenize`);
//! 3. byte-level BPE of each pre-token over the embedded vocabulary (modules `bpe`, `vocab`).
//!
//! Every step is a port of the reference's own rules, checked against the reference on its 1502-line
//! corpus (`tests/reference_corpus.rs`). Unicode data follows what the reference used: Python 3.11's
//! Unicode 14.0 for ftfy, NFC and `str.lower()`, the `regex` module's tables for `\p{L}`/`\p{N}`.
//! Remaining version drift is limited to characters assigned after Unicode 14.0 in the badness
//! heuristic's `\w`, the ANSI-escape `\d` and the final-sigma context.
//!
//! The vocabulary (`bpe_simple_vocab_16e6.txt.gz`) is compiled into the crate, so tokenising never
//! touches the file system.

#![forbid(unsafe_code)]

mod bpe;
mod clean;
mod pretokenize;
mod spm;
mod text;
mod vocab;

use std::sync::OnceLock;

pub use clean::clean_text;
pub use text::{LoadError, TextTokenizer};

/// Id of `<|startoftext|>`, put before every tokenised text.
pub const SOT: u32 = 49406;
/// Id of `<|endoftext|>`, put after every tokenised text; the text models pool at its position.
pub const EOT: u32 = 49407;
/// The context length of every released CLIP model.
pub const CONTEXT_LENGTH: usize = 77;

/// What [`Tokenizer::tokenize`] does with a text whose ids (with SOT and EOT) exceed the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Fail with [`TokenizeError::TooLong`], like the reference's `truncate=False`.
    Error,
    /// Keep the first `context_length` ids and make the last one EOT, like `truncate=True`.
    Truncate,
}

/// Why [`Tokenizer::tokenize`] refused a text; the message is the reference's own, so that callers
/// porting Python code see what they expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    /// The reference raises `RuntimeError: Input {text} is too long for context length {n}`.
    #[error("Input {text} is too long for context length {context_length} ({tokens} tokens)")]
    TooLong {
        /// The input text, shortened for display when it is very long.
        text: String,
        /// Number of ids including SOT and EOT.
        tokens: usize,
        /// The context length asked for.
        context_length: usize,
    },
    /// A checkpoint tokenizer ([`TextTokenizer`]) failed on this text.
    #[error("Input {text} could not be tokenized: {reason}")]
    Backend {
        /// The input text, shortened for display when it is very long.
        text: String,
        /// What the tokenizer reported.
        reason: String,
    },
}

/// The CLIP BPE tokenizer over the embedded vocabulary.
pub struct Tokenizer {
    tokens: vocab::TokenBytes,
    bpe: bpe::Bpe,
}

impl Tokenizer {
    /// The tokenizer of the embedded vocabulary, built on first use (decompressing and indexing the
    /// merges is too costly to repeat per caller) and shared afterwards.
    pub fn global() -> &'static Tokenizer {
        static GLOBAL: OnceLock<Tokenizer> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let vocab = vocab::Vocab::embedded();
            let bpe = bpe::Bpe::new(&vocab);
            Tokenizer {
                tokens: vocab.into_token_bytes(),
                bpe,
            }
        })
    }

    /// `SimpleTokenizer.encode`: the ids of `text`, without SOT/EOT.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_with(text, pretokenize::Specials::OpenAi)
    }

    /// `encode` with the special-token spellings of OpenAI's or open_clip's tokenizer (the only
    /// difference between the two: `<|endoftext|>` versus `<end_of_text>`, same ids).
    fn encode_with(&self, text: &str, specials: pretokenize::Specials) -> Vec<u32> {
        let cleaned = clean_text(text);
        let (sot, eot) = match specials {
            pretokenize::Specials::OpenAi => ("<|startoftext|>", "<|endoftext|>"),
            pretokenize::Specials::OpenClip => ("<start_of_text>", "<end_of_text>"),
        };
        let mut ids = Vec::new();
        for token in pretokenize::pretokenize_with(&cleaned, specials) {
            if token == sot {
                ids.push(SOT);
            } else if token == eot {
                ids.push(EOT);
            } else {
                self.bpe.encode_word(token, &mut ids);
            }
        }
        ids
    }

    /// `SimpleTokenizer.decode`: concatenates the tokens' byte strings, decodes them as UTF-8
    /// (invalid sequences become U+FFFD, as with Python's `errors="replace"`) and turns each
    /// end-of-word marker `</w>` into a space. Ids outside the vocabulary (which make the reference
    /// raise `KeyError`) are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if let Some(token) = self.tokens.get(id) {
                bytes.extend_from_slice(token);
            }
        }
        String::from_utf8_lossy(&bytes).replace("</w>", " ")
    }

    /// `clip.tokenize([text], context_length, truncate)[0]`: SOT, the ids, EOT, zero-padded to
    /// `context_length`. Id 0 is a real token (`!`), so padding is only recognisable by position.
    pub fn tokenize(
        &self,
        text: &str,
        context_length: usize,
        overflow: Overflow,
    ) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = self.tokenize_unpadded(text, context_length, overflow)?;
        ids.resize(context_length, 0);
        Ok(ids)
    }

    /// `open_clip.tokenize([text], context_length)[0]`: as [`Tokenizer::tokenize`], except that
    /// the special tokens recognised in the text are open_clip's `<start_of_text>` /
    /// `<end_of_text>` rather than OpenAI's `<|startoftext|>` / `<|endoftext|>`.
    pub fn tokenize_open_clip(
        &self,
        text: &str,
        context_length: usize,
        overflow: Overflow,
    ) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = vec![SOT];
        ids.extend(self.encode_with(text, pretokenize::Specials::OpenClip));
        ids.push(EOT);
        let mut ids = truncate_or_fail(ids, text, context_length, overflow)?;
        ids.resize(context_length, 0);
        Ok(ids)
    }

    /// [`Tokenizer::tokenize`] without the zero padding: SOT, the ids, EOT, at most
    /// `context_length` of them.
    pub fn tokenize_unpadded(
        &self,
        text: &str,
        context_length: usize,
        overflow: Overflow,
    ) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = Vec::with_capacity(context_length.min(1024));
        ids.push(SOT);
        ids.extend(self.encode(text));
        ids.push(EOT);
        truncate_or_fail(ids, text, context_length, overflow)
    }

    /// Number of ids: 256 byte tokens, their 256 end-of-word forms, 48 894 merges, SOT and EOT.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
}

/// The reference's overflow rule on SOT, ids, EOT: fail, or keep the first `context_length` ids
/// and make the last one EOT.
fn truncate_or_fail(
    mut ids: Vec<u32>,
    text: &str,
    context_length: usize,
    overflow: Overflow,
) -> Result<Vec<u32>, TokenizeError> {
    if ids.len() > context_length {
        match overflow {
            Overflow::Error => {
                return Err(TokenizeError::TooLong {
                    text: shorten_for_display(text),
                    tokens: ids.len(),
                    context_length,
                })
            }
            // Python's `tokens[:n]; tokens[-1] = eot`. With n = 0 the slice is empty and the
            // assignment raises IndexError there; here the result is simply empty.
            Overflow::Truncate => {
                ids.truncate(context_length);
                if let Some(last) = ids.last_mut() {
                    *last = EOT;
                }
            }
        }
    }
    Ok(ids)
}

/// Error messages quote the input like the reference does, but a megabyte of text in a message
/// helps nobody: keep the first 200 characters.
fn shorten_for_display(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> &'static Tokenizer {
        Tokenizer::global()
    }

    #[test]
    fn vocab_size_is_49408() {
        assert_eq!(tok().vocab_size(), 49408);
    }

    #[test]
    fn encodes_a_prompt() {
        // clip.tokenize("a photo of a cat.") from the goldens.
        assert_eq!(
            tok().encode("a photo of a cat."),
            vec![320, 1125, 539, 320, 2368, 269]
        );
    }

    #[test]
    fn tokenize_pads_with_zeros() {
        let ids = tok()
            .tokenize("a dog", CONTEXT_LENGTH, Overflow::Error)
            .unwrap();
        assert_eq!(ids.len(), CONTEXT_LENGTH);
        assert_eq!(&ids[..4], &[SOT, 320, 1929, EOT]);
        assert!(ids[4..].iter().all(|&id| id == 0));
    }

    #[test]
    fn too_long_errors_or_truncates() {
        let text = "cat ".repeat(100);
        let err = tok()
            .tokenize(&text, CONTEXT_LENGTH, Overflow::Error)
            .unwrap_err();
        let TokenizeError::TooLong {
            tokens,
            context_length,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*tokens, *context_length), (102, 77));
        assert!(err.to_string().starts_with("Input cat cat"), "{err}");
        assert!(
            err.to_string()
                .contains("is too long for context length 77"),
            "{err}"
        );

        let ids = tok()
            .tokenize_unpadded(&text, 16, Overflow::Truncate)
            .unwrap();
        assert_eq!(ids.len(), 16);
        assert_eq!((ids[0], ids[15]), (SOT, EOT));
        assert!(tok()
            .tokenize_unpadded(&text, 0, Overflow::Truncate)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn open_clip_spells_special_tokens_differently() {
        let ids = tok()
            .tokenize_open_clip("a <end_of_text> b", 8, Overflow::Error)
            .unwrap();
        assert_eq!(ids, [SOT, 320, EOT, 321, EOT, 0, 0, 0]);
        let openai = tok()
            .tokenize("a <|endoftext|> b", 8, Overflow::Error)
            .unwrap();
        assert_eq!(ids, openai);
        // OpenAI's spelling is plain text to open_clip.
        let ids = tok()
            .tokenize_open_clip("<|endoftext|>", 16, Overflow::Error)
            .unwrap();
        assert!(!ids[1..].starts_with(&[EOT]), "{ids:?}");
        // Same overflow rule.
        let long = "cat ".repeat(40);
        assert_eq!(
            tok()
                .tokenize_open_clip(&long, 16, Overflow::Truncate)
                .unwrap(),
            tok().tokenize(&long, 16, Overflow::Truncate).unwrap()
        );
        assert!(tok()
            .tokenize_open_clip(&long, 16, Overflow::Error)
            .is_err());
    }

    #[test]
    fn special_tokens_in_text() {
        assert_eq!(tok().encode("a <|endoftext|> b"), vec![320, EOT, 321]);
        assert_eq!(tok().encode("<|STARTOFTEXT|>"), vec![SOT]);
    }

    #[test]
    fn decode_round_trips_cleaned_text() {
        let ids = tok().encode("Hello, World! Привет 😀");
        assert_eq!(tok().decode(&ids), "hello , world ! привет 😀 ");
        // Unknown ids are skipped; broken UTF-8 becomes U+FFFD.
        assert_eq!(tok().decode(&[u32::MAX]), "");
        // Id 127 is the byte 0xC3 alone (the lead byte of `é`).
        assert_eq!(tok().decode(&[127, 127 + 256]), "\u{fffd}\u{fffd} ");
    }

    /// Random strings over all of Unicode (weighted towards the characters the cleaning steps
    /// care about) must never panic, and tokenising must respect the context length.
    #[test]
    fn random_input_never_panics() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pools: [(u32, u32); 9] = [
            (0, 0x7F),
            (0x80, 0xFF),
            (0x100, 0x52F),
            (0x2000, 0x206F),
            (0xFE00, 0xFFFF),
            (0, 0x10FFFF),
            (0x300, 0x36F),
            (0xD7F0, 0xE010),
            (0x1F300, 0x1F6FF),
        ];
        let specials = [
            "&amp;",
            "&#x",
            "&#12",
            "<",
            "\r\n",
            "Ã",
            "â€",
            "\u{1b}[1m",
            "<|endoftext|>",
            "'s",
            "ﬃ",
        ];
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..next() % 40 {
                if next() % 8 == 0 {
                    text.push_str(specials[(next() % specials.len() as u64) as usize]);
                } else {
                    let (lo, hi) = pools[(next() % pools.len() as u64) as usize];
                    let cp = lo + (next() % u64::from(hi - lo + 1)) as u32;
                    text.extend(char::from_u32(cp));
                }
            }
            let ids = tok()
                .tokenize(&text, CONTEXT_LENGTH, Overflow::Truncate)
                .unwrap();
            assert_eq!(ids.len(), CONTEXT_LENGTH);
            let _ = tok().tokenize(&text, 8, Overflow::Error);
            let random_ids: Vec<u32> = (0..next() % 20).map(|_| (next() % 50_000) as u32).collect();
            let _ = tok().decode(&random_ids);
        }
    }

    #[test]
    fn shortens_long_inputs_in_errors() {
        let long = "x".repeat(1000);
        assert_eq!(shorten_for_display(&long).chars().count(), 203);
        assert_eq!(shorten_for_display("short"), "short");
    }
}
