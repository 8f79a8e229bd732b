//! The embedded vocabulary: `bytes_to_unicode`, the token strings and their ids, the merge list.
//!
//! Built exactly like `SimpleTokenizer.__init__`: the 256 byte characters, the same with `</w>`,
//! one token per merge (the concatenation of its two halves), then `<|startoftext|>` and
//! `<|endoftext|>`. Ids are positions in that list.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::io::Read;

/// `bpe_simple_vocab_16e6.txt.gz` as shipped with the reference `clip` package.
const MERGES_GZ: &[u8] = include_bytes!("../data/bpe_simple_vocab_16e6.txt.gz");

/// The reference reads lines `[1 : 49152 - 256 - 2 + 1]` of the file: line 0 is a version header,
/// and only this many merges fit a 49 408-token vocabulary.
const MERGE_COUNT: usize = 49152 - 256 - 2;

/// GPT-2's reversible byte-to-character map: printable Latin-1 bytes map to themselves, the other 68
/// (whitespace, controls, DEL, NBSP, soft hyphen) to U+0100.. in byte order, so that every token is
/// a string of visible characters.
pub(crate) fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_free = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            b as u32
        } else {
            next_free += 1;
            next_free - 1
        };
        // Every value is below U+0200, so always a valid scalar value.
        *slot = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    table
}

/// The byte characters in the reference's dict order: the printable bytes first, then the others.
fn byte_chars_in_vocab_order(byte_char: &[char; 256]) -> Vec<char> {
    let printable = |b: usize| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    let first = (0..256).filter(|&b| printable(b));
    let rest = (0..256).filter(|&b| !printable(b));
    first.chain(rest).map(|b| byte_char[b]).collect()
}

/// The whole vocabulary, as the reference builds it: what the BPE tables are made from. Only its
/// [`TokenBytes`] outlive start-up (the strings and their index are memory the encoder no longer
/// needs once [`crate::bpe::Bpe`] holds the merges by id).
pub(crate) struct Vocab {
    token_bytes: TokenBytes,
    /// Token string -> id. Later duplicates win, as in the reference's `dict(zip(vocab, ids))`.
    encoder: FxHashMap<String, u32>,
    /// Merge pairs (as token strings) in rank order.
    merges: Vec<(String, String)>,
    /// The character standing for each byte.
    pub(crate) byte_char: [char; 256],
}

/// Token string of each id, as the raw bytes it stands for (`</w>` kept literally, so that
/// decoding is concatenation followed by the `</w>` -> space replacement of the reference): all
/// tokens back to back in one buffer, `ends[id]` the end of token `id`.
pub(crate) struct TokenBytes {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl TokenBytes {
    fn new<'a>(tokens: impl Iterator<Item = &'a str>, byte_of_char: &HashMap<char, u8>) -> Self {
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        for token in tokens {
            push_token_bytes(token, byte_of_char, &mut bytes);
            // The embedded vocabulary is far smaller than 4 GiB of bytes: its offsets fit u32.
            ends.push(bytes.len() as u32);
        }
        TokenBytes { bytes, ends }
    }

    /// The bytes token `id` stands for, or `None` for an id outside the vocabulary. (The
    /// reference's decoder is the inverted encoder, so an id shadowed by a later duplicate string
    /// would be missing there; the vocabulary has no duplicates, which a test checks.)
    pub(crate) fn get(&self, id: u32) -> Option<&[u8]> {
        let id = id as usize;
        let end = *self.ends.get(id)? as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        Some(&self.bytes[start..end])
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}

impl Vocab {
    /// The vocabulary compiled into the crate. The data is fixed, so failing to read it is a build
    /// defect, not a user error: it panics with the reason.
    pub(crate) fn embedded() -> Vocab {
        let mut text = String::new();
        flate2::read::GzDecoder::new(MERGES_GZ)
            .read_to_string(&mut text)
            .expect("embedded bpe_simple_vocab_16e6.txt.gz is a valid gzip UTF-8 file");
        Vocab::from_merges_text(&text)
    }

    fn from_merges_text(text: &str) -> Vocab {
        // `merge.split()` splits on any whitespace; each line holds two halves.
        let merges: Vec<(String, String)> = text
            .split('\n')
            .skip(1)
            .take(MERGE_COUNT)
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(b), None) => Some((a.to_owned(), b.to_owned())),
                    _ => None,
                }
            })
            .collect();
        assert_eq!(
            merges.len(),
            MERGE_COUNT,
            "embedded merges file is truncated or malformed"
        );

        let byte_char = bytes_to_unicode();
        let mut byte_of_char = HashMap::new();
        for (b, &c) in byte_char.iter().enumerate() {
            byte_of_char.insert(c, b as u8);
        }
        let base = byte_chars_in_vocab_order(&byte_char);
        let mut strings: Vec<String> = base.iter().map(|c| c.to_string()).collect();
        strings.extend(base.iter().map(|c| format!("{c}</w>")));
        strings.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        strings.push("<|startoftext|>".to_owned());
        strings.push("<|endoftext|>".to_owned());

        let mut encoder = FxHashMap::with_capacity_and_hasher(strings.len(), Default::default());
        for (id, s) in strings.iter().enumerate() {
            encoder.insert(s.clone(), id as u32);
        }
        let token_bytes = TokenBytes::new(strings.iter().map(String::as_str), &byte_of_char);
        Vocab {
            token_bytes,
            encoder,
            merges,
            byte_char,
        }
    }

    /// The part of the vocabulary decoding needs, the rest dropped.
    pub(crate) fn into_token_bytes(self) -> TokenBytes {
        self.token_bytes
    }

    pub(crate) fn id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    pub(crate) fn merges(&self) -> &[(String, String)] {
        &self.merges
    }
}

/// Maps each character of a token back to its byte, appended to `out`; characters outside the byte
/// alphabet (only the special tokens' ASCII, which maps to itself) fall back to their UTF-8
/// encoding.
fn push_token_bytes(token: &str, byte_of_char: &HashMap<char, u8>, out: &mut Vec<u8>) {
    for c in token.chars() {
        match byte_of_char.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_matches_reference() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], '\u{100}');
        assert_eq!(t[b' ' as usize], '\u{120}');
        assert_eq!(t[0x7F], '\u{121}');
        assert_eq!(t[0xAD], '\u{143}');
        let mut distinct: Vec<char> = t.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn vocabulary_layout() {
        let v = Vocab::embedded();
        assert_eq!(v.token_bytes.len(), 49408);
        assert_eq!(v.encoder.len(), 49408, "token strings are unique");
        assert_eq!(v.id("!"), Some(0));
        assert_eq!(v.id("!</w>"), Some(256));
        assert_eq!(v.id("<|startoftext|>"), Some(49406));
        assert_eq!(v.id("<|endoftext|>"), Some(49407));
        assert_eq!(v.merges()[0], ("i".to_owned(), "n".to_owned()));
        assert_eq!(v.id("in"), Some(512));
        assert_eq!(v.token_bytes.get(512), Some(&b"in"[..]));
        assert_eq!(v.token_bytes.get(49408), None);
        assert_eq!(v.token_bytes.get(49406), Some(&b"<|startoftext|>"[..]));
        assert_eq!(
            v.token_bytes.get(256 + 0xC3 - 174 + 106),
            Some(&b"\xc3</w>"[..])
        );
    }
}
