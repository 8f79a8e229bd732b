//! ftfy's `fix_encoding`: undo mojibake, i.e. UTF-8 text that was decoded with a single-byte
//! codec (`cafÃ©` -> `café`), possibly several times, possibly only in parts of the text.
//!
//! One step ([`fix_encoding_one_step`]) tries, in order: re-encoding the whole text with each of
//! ftfy's single-byte codecs and decoding the bytes as UTF-8 (after restoring bytes 0xA0 that became
//! spaces, and marking bytes lost to U+FFFD); fixing UTF-8-looking fragments in isolation
//! (`decode_inconsistent_utf8`); Latin-1 read as windows-1252; C1 controls as windows-1252.
//! Steps repeat until the text stops changing.

use std::sync::OnceLock;

use regex::bytes::Regex as BytesRegex;

use super::badness::is_bad;
use super::codecs::{charmaps, decode_utf8_variants, latin1_as_windows_1252};
use super::fixes::{fix_c1_controls, is_c1};
use super::tables::{
    UTF8_CONTINUATION, UTF8_CONTINUATION_STRICT, UTF8_FIRST_OF_2, UTF8_FIRST_OF_3, UTF8_FIRST_OF_4,
};

/// ftfy loops until nothing changes, without a bound; text settles within a few steps. This bound
/// only guarantees termination on adversarial input.
const MAX_STEPS: usize = 64;

pub(super) fn fix_encoding(text: &str) -> String {
    let mut text = text.to_owned();
    for _ in 0..MAX_STEPS {
        match fix_encoding_one_step(&text) {
            Some(fixed) if fixed != text => text = fixed,
            _ => break,
        }
    }
    text
}

/// `_fix_encoding_one_step_and_explain`: the fixed text, or `None` when this step changes nothing.
fn fix_encoding_one_step(text: &str) -> Option<String> {
    if text.is_ascii() || !is_bad(text) {
        return None;
    }
    let mut latin1_possible = false;
    for charmap in charmaps() {
        let Some(mut bytes) = charmap.encode(text) else {
            continue;
        };
        latin1_possible |= charmap.name == "latin-1";
        // The 0xA0 fix would turn MacRoman's en dash + space into false positives.
        if charmap.name != "macroman" && altered_utf8_re().is_match(&bytes) {
            bytes = restore_byte_a0(&bytes);
        }
        if charmap.is_sloppy() {
            bytes = replace_lossy_sequences(&bytes);
        }
        if let Some(fixed) = decode_utf8_variants(&bytes) {
            return Some(fixed);
        }
    }
    let fragments = utf8_mojibake_matches(text);
    if !fragments.is_empty() {
        let fixed = decode_inconsistent_utf8(text, &fragments);
        if fixed != text {
            return Some(fixed);
        }
    }
    // ftfy also checks whether windows-1252 itself was a possible encoding, but that name is not in
    // its candidate list, so Latin-1 text is always tried as windows-1252.
    if latin1_possible {
        if let Some(fixed) = latin1_as_windows_1252(text) {
            if fixed != text {
                return Some(fixed);
            }
        }
    }
    if text.chars().any(is_c1) {
        return Some(fix_c1_controls(text));
    }
    None
}

/// UTF-8 sequences that would be valid if a byte 0xA0 had not been turned into a space.
fn altered_utf8_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    RE.get_or_init(|| {
        BytesRegex::new(concat!(
            r"(?-u)[\xC2\xC3\xC5\xCE\xD0\xD9]\x20",
            r"|[\xE2\xE3]\x20[\x80-\x84\x86-\x9F\xA1-\xBF]",
            r"|[\xE0-\xE3][\x80-\x84\x86-\x9F\xA1-\xBF]\x20",
            r"|\xF0\x20[\x80-\xBF][\x80-\xBF]",
            r"|\xF0[\x80-\xBF]\x20[\x80-\xBF]",
            r"|\xF0[\x80-\xBF][\x80-\xBF]\x20",
        ))
        .expect("ALTERED_UTF8_RE compiles")
    })
}

/// UTF-8 sequences some of whose bytes were lost to U+FFFD, which the sloppy codecs encode as 0x1A
/// (or, at most once per sequence, replaced by `?`).
fn lossy_utf8_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    RE.get_or_init(|| {
        BytesRegex::new(concat!(
            r"(?-u)[\xC2-\xDF]\x1A",
            r"|[\xC2-\xC3]\x3F",
            r"|\xED[\xA0-\xAF][\x1A\x3F]\xED[\xB0-\xBF][\x1A\x3F\x80-\xBF]",
            r"|\xED[\xA0-\xAF][\x1A\x3F\x80-\xBF]\xED[\xB0-\xBF][\x1A\x3F]",
            r"|[\xE0-\xEF][\x1A\x3F][\x1A\x80-\xBF]",
            r"|[\xE0-\xEF][\x1A\x80-\xBF][\x1A\x3F]",
            r"|[\xF0-\xF4][\x1A\x3F][\x1A\x80-\xBF][\x1A\x80-\xBF]",
            r"|[\xF0-\xF4][\x1A\x80-\xBF][\x1A\x3F][\x1A\x80-\xBF]",
            r"|[\xF0-\xF4][\x1A\x80-\xBF][\x1A\x80-\xBF][\x1A\x3F]",
            r"|\x1A",
        ))
        .expect("LOSSY_UTF8_RE compiles")
    })
}

/// `restore_byte_a0`: first `Ã ` (C3 20) becomes `à ` (C3 A0 20) unless followed by a space,
/// `quele`, `quela`, `quilo` or `s ` (Portuguese words after a real `à`); then every
/// [`altered_utf8_re`] match gets its spaces turned back into 0xA0.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    let mut a_grave = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC3 && bytes.get(i + 1) == Some(&b' ') {
            let after = &bytes[i + 2..];
            let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "];
            if !excluded.iter().any(|word| after.starts_with(word)) {
                a_grave.extend_from_slice(b"\xC3\xA0 ");
                i += 2;
                continue;
            }
        }
        a_grave.push(bytes[i]);
        i += 1;
    }
    altered_utf8_re()
        .replace_all(&a_grave, |caps: &regex::bytes::Captures| {
            caps[0]
                .iter()
                .map(|&b| if b == b' ' { 0xA0 } else { b })
                .collect::<Vec<u8>>()
        })
        .into_owned()
}

fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    lossy_utf8_re()
        .replace_all(bytes, &b"\xEF\xBF\xBD"[..])
        .into_owned()
}

/// Sorted character sets of ftfy's `UTF8_CLUES`.
struct Clues {
    first_of_2: Vec<char>,
    first_of_3: Vec<char>,
    first_of_4: Vec<char>,
    continuation: Vec<char>,
    continuation_strict: Vec<char>,
}

fn clues() -> &'static Clues {
    static CLUES: OnceLock<Clues> = OnceLock::new();
    let set = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        v.sort_unstable();
        v
    };
    CLUES.get_or_init(|| Clues {
        first_of_2: set(UTF8_FIRST_OF_2),
        first_of_3: set(UTF8_FIRST_OF_3),
        first_of_4: set(UTF8_FIRST_OF_4),
        continuation: set(UTF8_CONTINUATION),
        continuation_strict: set(UTF8_CONTINUATION_STRICT),
    })
}

fn is_in(set: &[char], c: char) -> bool {
    set.binary_search(&c).is_ok()
}

/// The matches of ftfy's `UTF8_DETECTOR_RE`, as byte ranges, in the order `re.sub` visits them:
/// `(?<![continuation_strict])([first_of_2][cont]|[first_of_3][cont]{2}|[first_of_4][cont]{3})+`.
/// The lookbehind sees the whole text (also the end of the previous match), as in Python.
/// Nothing follows the `+`, so the backtracking engine's first success is the greedy repetition
/// taking, each time, the first alternative that matches.
fn utf8_mojibake_matches(text: &str) -> Vec<(usize, usize)> {
    let clues = clues();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let sequence_len = |at: usize| -> Option<usize> {
        let (_, lead) = *chars.get(at)?;
        let continued = |n: usize| {
            (1..=n).all(|k| {
                chars
                    .get(at + k)
                    .is_some_and(|&(_, c)| is_in(&clues.continuation, c))
            })
        };
        [
            (&clues.first_of_2, 1),
            (&clues.first_of_3, 2),
            (&clues.first_of_4, 3),
        ]
        .into_iter()
        .find(|&(leads, n)| is_in(leads, lead) && continued(n))
        .map(|(_, n)| n + 1)
    };
    let mut matches = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let after_strict = start > 0 && is_in(&clues.continuation_strict, chars[start - 1].1);
        let mut end = start;
        if !after_strict {
            while let Some(len) = sequence_len(end) {
                end += len;
            }
        }
        if end > start {
            let byte_end = chars.get(end).map_or(text.len(), |&(i, _)| i);
            matches.push((chars[start].0, byte_end));
            start = end;
        } else {
            start += 1;
        }
    }
    matches
}

/// `decode_inconsistent_utf8`: every UTF-8-looking fragment (from [`utf8_mojibake_matches`]) that
/// is shorter than the whole text and looks bad on its own is fixed separately, with the full
/// `fix_encoding`.
fn decode_inconsistent_utf8(text: &str, fragments: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for &(start, end) in fragments {
        out.push_str(&text[pos..start]);
        let fragment = &text[start..end];
        if fragment.len() < text.len() && is_bad(fragment) {
            out.push_str(&fix_encoding(fragment));
        } else {
            out.push_str(fragment);
        }
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_single_and_double_mojibake() {
        assert_eq!(fix_encoding("cafÃ©"), "café");
        assert_eq!(fix_encoding("ÐŸÑ€Ð¸Ð²ÐµÑ‚"), "Привет");
        assert_eq!(fix_encoding("ÃƒÂ©"), "é");
        assert_eq!(fix_encoding("Ã¨ Ã  Ã¹"), "è à ù");
        assert_eq!(fix_encoding("doesnâ€™t"), "doesn’t");
        assert_eq!(fix_encoding("c1\u{85}control"), "c1…control");
    }

    #[test]
    fn fixes_fragments_in_isolation() {
        assert_eq!(fix_encoding("æ–‡å\u{ad}—åŒ–ã‘"), "文字化ã‘");
        assert_eq!(fix_encoding("Ã¢ÂÂ¤"), "â¤");
    }

    #[test]
    fn leaves_good_text_alone() {
        for text in ["café", "naïve", "plain", "Привет", "日本語", "€10", ""] {
            assert_eq!(fix_encoding(text), text);
        }
    }

    #[test]
    fn restores_a0_and_lossy_bytes() {
        assert_eq!(restore_byte_a0(b"\xC3 la"), b"\xC3\xA0 la");
        assert_eq!(restore_byte_a0(b"\xC3 s x"), b"\xC3\xA0s x");
        assert_eq!(restore_byte_a0(b"\xE2\x80 x"), b"\xE2\x80\xA0x");
        assert_eq!(
            replace_lossy_sequences(b"\xE2\x80\x1Ax\x1A"),
            b"\xEF\xBF\xBDx\xEF\xBF\xBD"
        );
    }

    #[test]
    fn utf8_detector_respects_lookbehind() {
        assert_eq!(utf8_mojibake_matches("xÃ©y"), [(1, 5)]);
        // A lead preceded by a strict continuation character cannot start a match.
        assert_eq!(utf8_mojibake_matches("©Ã©"), []);
        assert_eq!(utf8_mojibake_matches("©Ã©xÃ©"), [(7, 11)]);
        // Adjacent sequences coalesce; a space may stand for 0xA0 as a continuation.
        assert_eq!(utf8_mojibake_matches("Ã©Ã© Ã©"), [(0, 8), (9, 13)]);
        assert_eq!(utf8_mojibake_matches("Ã x"), [(0, 3)]);
    }
}
