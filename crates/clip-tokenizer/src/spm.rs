//! SentencePiece models (`spiece.model`) and SigLIP 1's tokenizer over them.
//!
//! The file is a protobuf `ModelProto`; only the fields the tokenizer needs are read, by a small
//! reader that rejects anything malformed (wrong wire type, length past the end, invalid UTF-8)
//! instead of panicking. The unigram search itself is `tokenizers`' `Unigram` model.
//!
//! Transformers (5.x) gives SigLIP 1 checkpoints the *slow* `SiglipTokenizer`, which runs the
//! SentencePiece processor itself. [`SiglipSpm::encode`] follows it step by step:
//! 1. prepend `▁` to the text (after turning every `▁` in it into a space);
//! 2. split on the special tokens (`</s>`, `<unk>`, ...), stripping the whitespace around them;
//! 3. for each other chunk, `canonicalize_text` (Python `str.lower()` when `do_lower_case`, ASCII
//!    punctuation removed, whitespace runs collapsed to one space, `strip()`), then
//!    `sp.encode("<unk>" + chunk)` with the leading pieces of `"<unk>"` dropped;
//! 4. drop a leading lone `▁` piece when a special token follows it;
//! 5. append `</s>` unless the ids already end with it.
//!
//! `sp.encode` is SentencePiece's normalizer (the precompiled character map, whitespace clean-up,
//! the dummy `▁` prefix, spaces escaped as `▁`) followed by the unigram Viterbi search, in which
//! control and unknown pieces never match text.

use tokenizers::models::unigram::Unigram;
use tokenizers::Model;

use crate::clean::pystr;

/// Piece types of `ModelProto.SentencePiece.Type`.
const TYPE_NORMAL: u64 = 1;
const TYPE_USER_DEFINED: u64 = 4;
const TYPE_BYTE: u64 = 6;

/// One `ModelProto.SentencePiece`.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: u64,
}

/// The parts of `ModelProto` that encoding needs.
#[derive(Debug, Clone)]
pub(crate) struct ModelProto {
    pub pieces: Vec<Piece>,
    /// `TrainerSpec.model_type`: 1 unigram, 2 BPE, 3 word, 4 char.
    pub model_type: u64,
    pub byte_fallback: bool,
    pub unk_id: i64,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

/// Minimal protobuf wire-format reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!("varint runs past the end at byte {}", self.pos));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(format!("varint overflows 64 bits at byte {}", self.pos - 1));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "field of {n} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next `(field number, value)`, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(format!("field number 0 at byte {}", self.pos));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(format!("unsupported wire type {other} for field {number}")),
        };
        Ok(Some((number, value)))
    }
}

fn expect_bytes<'a>(v: Value<'a>, what: &str) -> Result<&'a [u8], String> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(format!("{what}: expected a length-delimited field")),
    }
}

fn expect_varint(v: Value<'_>, what: &str) -> Result<u64, String> {
    match v {
        Value::Varint(x) => Ok(x),
        _ => Err(format!("{what}: expected a varint")),
    }
}

fn expect_string(v: Value<'_>, what: &str) -> Result<String, String> {
    let bytes = expect_bytes(v, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what}: invalid UTF-8"))
}

impl ModelProto {
    /// Parses a serialized `ModelProto`; every error says what was wrong and where.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut model = ModelProto {
            pieces: Vec::new(),
            model_type: 1,
            byte_fallback: false,
            unk_id: 0,
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        let mut reader = Reader::new(bytes);
        while let Some((number, value)) = reader.field()? {
            match number {
                1 => model
                    .pieces
                    .push(Self::parse_piece(expect_bytes(value, "pieces")?)?),
                2 => model.parse_trainer_spec(expect_bytes(value, "trainer_spec")?)?,
                3 => model.parse_normalizer_spec(expect_bytes(value, "normalizer_spec")?)?,
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err("no pieces (not a SentencePiece model)".into());
        }
        Ok(model)
    }

    fn parse_piece(bytes: &[u8]) -> Result<Piece, String> {
        let mut piece = Piece {
            piece: String::new(),
            score: 0.0,
            kind: TYPE_NORMAL,
        };
        let mut reader = Reader::new(bytes);
        while let Some((number, value)) = reader.field()? {
            match number {
                1 => piece.piece = expect_string(value, "piece")?,
                2 => match value {
                    Value::Fixed32(bits) => piece.score = f32::from_bits(bits),
                    _ => return Err("score: expected a 32-bit float".into()),
                },
                3 => piece.kind = expect_varint(value, "type")?,
                _ => {}
            }
        }
        Ok(piece)
    }

    fn parse_trainer_spec(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(bytes);
        while let Some((number, value)) = reader.field()? {
            match number {
                3 => self.model_type = expect_varint(value, "model_type")?,
                35 => self.byte_fallback = expect_varint(value, "byte_fallback")? != 0,
                // int32: negative values are sign-extended to 64 bits.
                40 => self.unk_id = expect_varint(value, "unk_id")? as i64,
                _ => {}
            }
        }
        Ok(())
    }

    fn parse_normalizer_spec(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(bytes);
        while let Some((number, value)) = reader.field()? {
            match number {
                2 => {
                    self.precompiled_charsmap =
                        expect_bytes(value, "precompiled_charsmap")?.to_vec()
                }
                3 => self.add_dummy_prefix = expect_varint(value, "add_dummy_prefix")? != 0,
                4 => {
                    self.remove_extra_whitespaces =
                        expect_varint(value, "remove_extra_whitespaces")? != 0
                }
                5 => self.escape_whitespaces = expect_varint(value, "escape_whitespaces")? != 0,
                _ => {}
            }
        }
        Ok(())
    }
}

/// SentencePiece's precompiled character map: a darts-clone double-array trie over UTF-8 input
/// whose leaves index NUL-terminated replacements. Every access is bounds-checked, so a hostile
/// map can only fail to match, never panic.
pub(crate) struct CharMap {
    trie: Vec<u32>,
    normalized: Vec<u8>,
}

impl CharMap {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let size = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("precompiled_charsmap shorter than its header")?;
        let trie_bytes = bytes
            .get(4..4usize.saturating_add(size))
            .filter(|_| size % 4 == 0)
            .ok_or("precompiled_charsmap trie size does not fit the map")?;
        let trie = trie_bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(CharMap {
            trie,
            normalized: bytes[4 + size..].to_vec(),
        })
    }

    /// Every rule matching a prefix of `key`: (value, length in bytes), shortest first.
    fn common_prefix_search(&self, key: &[u8]) -> Vec<(usize, usize)> {
        let unit = |pos: usize| self.trie.get(pos).map(|&u| u as usize);
        let offset = |u: usize| (u >> 10) << ((u & (1 << 9)) >> 6);
        let mut results = Vec::new();
        let Some(first) = unit(0) else {
            return results;
        };
        let mut pos = offset(first);
        for (i, &c) in key.iter().enumerate() {
            if c == 0 {
                break;
            }
            pos ^= c as usize;
            let Some(u) = unit(pos) else {
                break;
            };
            if u & ((1 << 31) | 0xFF) != c as usize {
                break;
            }
            pos ^= offset(u);
            if (u >> 8) & 1 == 1 {
                if let Some(leaf) = unit(pos) {
                    results.push((leaf & ((1 << 31) - 1), i + 1));
                }
            }
        }
        results
    }

    /// The NUL-terminated replacement at `value`, if it is valid UTF-8.
    fn replacement(&self, value: usize) -> Option<&str> {
        let rest = self.normalized.get(value..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).ok()
    }
}

/// `sp.encode` of one SentencePiece unigram model.
pub(crate) struct SentencePiece {
    unigram: Unigram,
    precompiled: Option<CharMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    piece_to_id: std::collections::HashMap<String, u32>,
}

impl SentencePiece {
    pub(crate) fn new(model: &ModelProto) -> Result<Self, String> {
        if model.model_type != 1 {
            return Err(format!(
                "model type {} is not supported (only unigram, type 1)",
                model.model_type
            ));
        }
        let unk_id = usize::try_from(model.unk_id)
            .ok()
            .filter(|&id| id < model.pieces.len())
            .ok_or_else(|| format!("unk_id {} is not a piece", model.unk_id))?;
        if u32::try_from(model.pieces.len()).is_err() {
            return Err("too many pieces".into());
        }
        // Control, unknown and unused pieces never match text in SentencePiece; give them names
        // that no normalized text contains (noncharacters around the id) so the trie skips them.
        let vocab = model
            .pieces
            .iter()
            .enumerate()
            .map(|(id, p)| {
                let matchable = matches!(p.kind, TYPE_NORMAL | TYPE_USER_DEFINED | TYPE_BYTE);
                let name = if matchable && !p.piece.is_empty() {
                    p.piece.clone()
                } else {
                    format!("\u{FDD0}{id}\u{FDD1}")
                };
                (name, f64::from(p.score))
            })
            .collect();
        let unigram = Unigram::from(vocab, Some(unk_id), model.byte_fallback)
            .map_err(|e| format!("unigram model: {e}"))?;
        let precompiled = if model.precompiled_charsmap.is_empty() {
            None
        } else {
            Some(CharMap::parse(&model.precompiled_charsmap)?)
        };
        let mut piece_to_id = std::collections::HashMap::with_capacity(model.pieces.len());
        for (id, p) in model.pieces.iter().enumerate() {
            piece_to_id.entry(p.piece.clone()).or_insert(id as u32);
        }
        Ok(SentencePiece {
            unigram,
            precompiled,
            add_dummy_prefix: model.add_dummy_prefix,
            remove_extra_whitespaces: model.remove_extra_whitespaces,
            escape_whitespaces: model.escape_whitespaces,
            piece_to_id,
        })
    }

    /// `sp.piece_to_id`.
    pub(crate) fn piece_id(&self, piece: &str) -> Option<u32> {
        self.piece_to_id.get(piece).copied()
    }

    /// The longest rule of the character map matching a prefix of `input`: (replacement, length
    /// in bytes). SentencePiece's `NormalizePrefix`; without a match, the first character as is.
    fn normalize_prefix<'s>(&'s self, input: &'s str) -> (&'s str, usize) {
        let first_len = input.chars().next().map_or(0, char::len_utf8);
        let Some(map) = &self.precompiled else {
            return (&input[..first_len], first_len);
        };
        // Rules are short; look at most this far ahead.
        let window = &input.as_bytes()[..input.len().min(64)];
        let longest = map.common_prefix_search(window).into_iter().last();
        match longest.and_then(|(value, len)| Some((map.replacement(value)?, len))) {
            // A rule ending inside a character would split it; keep the character instead.
            Some((replacement, len)) if input.is_char_boundary(len) => (replacement, len),
            _ => (&input[..first_len], first_len),
        }
    }

    /// SentencePiece's `Normalizer::Normalize`: the character map rule by rule, spaces removed at
    /// the start, collapsed and removed at the end (`remove_extra_whitespaces`), the dummy prefix,
    /// spaces escaped as `▁`.
    fn normalize(&self, text: &str) -> String {
        const SPACE: &str = "\u{2581}";
        let mut input = text;
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (rep, len) = self.normalize_prefix(input);
                if rep != " " {
                    break;
                }
                input = &input[len..];
            }
        }
        let mut out = String::with_capacity(text.len() + 3);
        if input.is_empty() {
            return out;
        }
        if self.add_dummy_prefix {
            out.push_str(if self.escape_whitespaces { SPACE } else { " " });
        }
        let mut prev_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut rep, len) = self.normalize_prefix(input);
            while prev_space && rep.starts_with(' ') {
                rep = &rep[1..];
            }
            if !rep.is_empty() {
                for c in rep.chars() {
                    if self.escape_whitespaces && c == ' ' {
                        out.push_str(SPACE);
                    } else {
                        out.push(c);
                    }
                }
                prev_space = rep.ends_with(' ');
            }
            input = &input[len..];
        }
        if self.remove_extra_whitespaces {
            let space = if self.escape_whitespaces { SPACE } else { " " };
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        out
    }

    /// `sp.encode(text)` as ids.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let normalized = self.normalize(text);
        let mut ids = Vec::new();
        // Every `▁` starts a new word (split_by_whitespace); the search runs per word.
        let mut start = 0;
        let bytes = normalized.as_bytes();
        let mut words = Vec::new();
        for (i, c) in normalized.char_indices() {
            if c == '\u{2581}' && i > start {
                words.push(&normalized[start..i]);
                start = i;
            }
        }
        if start < bytes.len() {
            words.push(&normalized[start..]);
        }
        for word in words {
            let tokens = self.unigram.tokenize(word).map_err(|e| e.to_string())?;
            ids.extend(tokens.iter().map(|t| t.id));
        }
        Ok(ids)
    }
}

/// One piece of [`SiglipSpm::encode`]'s split: a special token's id, or text to encode.
enum Chunk<'a> {
    Special(u32),
    Text(&'a str),
}

/// Transformers' slow `SiglipTokenizer` over a SentencePiece model.
pub(crate) struct SiglipSpm {
    pub sp: SentencePiece,
    /// Special tokens matched in the raw text, with whether whitespace around them is stripped
    /// (`lstrip`, `rstrip`).
    pub specials: Vec<(String, u32, bool, bool)>,
    pub unk_token: String,
    pub unk_token_length: usize,
    pub eos_id: u32,
    pub space_id: Option<u32>,
    pub do_lower_case: bool,
}

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl SiglipSpm {
    /// `canonicalize_text(text, keep_punctuation_exact_string=None)`.
    fn canonicalize(&self, text: &str) -> String {
        let lowered;
        let text = if self.do_lower_case {
            lowered = pystr::lower(text);
            lowered.as_str()
        } else {
            text
        };
        let no_punct: String = text.chars().filter(|c| !PUNCTUATION.contains(*c)).collect();
        let mut collapsed = String::with_capacity(no_punct.len());
        let mut in_space = false;
        for c in no_punct.chars() {
            if pystr::is_py_space(c) {
                if !in_space {
                    collapsed.push(' ');
                }
                in_space = true;
            } else {
                collapsed.push(c);
                in_space = false;
            }
        }
        pystr::strip(&collapsed).to_owned()
    }

    /// `_tokenize`: ids of one chunk without special tokens.
    fn encode_chunk(&self, chunk: &str, ids: &mut Vec<u32>) -> Result<(), String> {
        let text = self.canonicalize(chunk);
        let mut with_prefix = self.unk_token.clone();
        with_prefix.push_str(&text);
        let encoded = self.sp.encode(&with_prefix)?;
        if encoded.len() >= self.unk_token_length {
            ids.extend_from_slice(&encoded[self.unk_token_length..]);
        } else {
            ids.extend_from_slice(&encoded);
        }
        Ok(())
    }

    /// The trie split of `PreTrainedTokenizer.tokenize`: leftmost, then longest special token.
    fn split<'a>(&self, text: &'a str) -> Vec<Chunk<'a>> {
        let mut chunks: Vec<(Chunk<'a>, bool, bool)> = Vec::new();
        let mut rest_start = 0;
        let mut i = 0;
        while i < text.len() {
            let best = self
                .specials
                .iter()
                .filter(|(s, ..)| !s.is_empty() && text[i..].starts_with(s.as_str()))
                .max_by_key(|(s, ..)| s.len());
            if let Some((s, id, lstrip, rstrip)) = best {
                if rest_start < i {
                    chunks.push((Chunk::Text(&text[rest_start..i]), false, false));
                }
                chunks.push((Chunk::Special(*id), *lstrip, *rstrip));
                i += s.len();
                rest_start = i;
            } else {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if rest_start < text.len() {
            chunks.push((Chunk::Text(&text[rest_start..]), false, false));
        }
        // rstrip strips the start of the next chunk, lstrip the end of the previous one.
        for k in 0..chunks.len() {
            let (lstrip, rstrip) = match chunks[k].0 {
                Chunk::Special(_) => (chunks[k].1, chunks[k].2),
                Chunk::Text(_) => continue,
            };
            if rstrip {
                if let Some((Chunk::Text(t), ..)) = chunks.get_mut(k + 1) {
                    *t = t.trim_start_matches(pystr::is_py_space);
                }
            }
            if lstrip && k > 0 {
                if let Some((Chunk::Text(t), ..)) = chunks.get_mut(k - 1) {
                    *t = t.trim_end_matches(pystr::is_py_space);
                }
            }
        }
        chunks.into_iter().map(|(c, ..)| c).collect()
    }

    /// The ids of `text` with the closing `</s>`, untruncated.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let prefixed = format!("\u{2581}{}", text.replace('\u{2581}', " "));
        let mut ids = Vec::new();
        let mut first_is_special_after_space = false;
        for (k, chunk) in self.split(&prefixed).into_iter().enumerate() {
            match chunk {
                Chunk::Special(id) => {
                    if k == 1 && ids.len() == 1 && Some(ids[0]) == self.space_id {
                        first_is_special_after_space = true;
                    }
                    ids.push(id);
                }
                Chunk::Text("") => {}
                Chunk::Text(t) => self.encode_chunk(t, &mut ids)?,
            }
        }
        if first_is_special_after_space {
            ids.remove(0);
        }
        if ids.last() != Some(&self.eos_id) {
            ids.push(self.eos_id);
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_truncated_input() {
        // Field 1, length 5, but only 2 bytes follow.
        assert!(ModelProto::parse(&[0x0a, 0x05, 0x0a, 0x01]).is_err());
        // A varint that never ends.
        assert!(ModelProto::parse(&[0x08, 0xff, 0xff]).is_err());
        // Empty input: no pieces.
        assert!(ModelProto::parse(&[]).is_err());
        // Group wire type.
        assert!(ModelProto::parse(&[0x0b]).is_err());
    }

    #[test]
    fn reader_reads_pieces() {
        // pieces { piece: "a" score: 1.5 type: 1 }
        let mut piece = vec![0x0a, 0x01, b'a', 0x15];
        piece.extend_from_slice(&1.5f32.to_le_bytes());
        piece.extend_from_slice(&[0x18, 0x01]);
        let mut bytes = vec![0x0a, piece.len() as u8];
        bytes.extend_from_slice(&piece);
        let model = ModelProto::parse(&bytes).unwrap();
        assert_eq!(model.pieces.len(), 1);
        assert_eq!(model.pieces[0].piece, "a");
        assert_eq!(model.pieces[0].score, 1.5);
        assert!(model.add_dummy_prefix);
    }
}
