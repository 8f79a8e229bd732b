//! Splits cleaned text into the pieces that are BPE-encoded separately.
//!
//! The reference uses the `regex` module with `re.IGNORECASE`:
//! `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`.
//! Case-insensitivity matters in two places, and the `regex` module treats them differently:
//! - literals match any case variant (`<|ENDOFTEXT|>`, `'S`, and `'ſ` via simple case folding);
//! - the one-member sets `[\p{L}]` and `[\p{N}]` are compiled to plain property tests, which ignore
//!   case, whereas the three-member negated set tests every case variant of a character. So
//!   U+0345 COMBINING GREEK YPOGEGRAMMENI (a mark whose case variant is the letter iota) matches
//!   none of the alternatives and is dropped.
//!
//! Rust's `regex` gives the same leftmost-first alternation; case-insensitivity is scoped to the
//! literals and the negated set to mirror the above. The letter and number classes are the `regex`
//! module's own tables ([`tables`], generated), because its Unicode version is newer than the Rust
//! crate's and new scripts would otherwise split differently.

#[rustfmt::skip]
mod tables;

use std::fmt::Write;
use std::sync::OnceLock;

use regex::Regex;

/// A regex character class body (without brackets) for inclusive code point ranges.
fn class_body(ranges: &[(u32, u32)]) -> String {
    let mut body = String::with_capacity(ranges.len() * 20);
    for &(lo, hi) in ranges {
        // Infallible: writing to a String.
        let _ = write!(body, r"\x{{{lo:x}}}-\x{{{hi:x}}}");
    }
    body
}

/// The special-token literals at the head of the pattern: OpenAI's `<|startoftext|>` /
/// `<|endoftext|>`, or open_clip's `<start_of_text>` / `<end_of_text>` (its `SimpleTokenizer`
/// names the same two ids differently, so only its own spellings are special in its input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Specials {
    OpenAi,
    OpenClip,
}

fn build(specials: &str) -> Regex {
    let (letter, number) = (class_body(&tables::LETTER), class_body(&tables::NUMBER));
    let pattern = format!(
        r"(?i:{specials}|'s|'t|'re|'ve|'m|'ll|'d)|[{letter}]+|[{number}]|(?i:[^\s{letter}{number}])+"
    );
    // Built from constant tables; a test compiles it.
    Regex::new(&pattern).expect("pre-tokeniser pattern compiles")
}

fn pattern(specials: Specials) -> &'static Regex {
    static OPENAI: OnceLock<Regex> = OnceLock::new();
    static OPEN_CLIP: OnceLock<Regex> = OnceLock::new();
    match specials {
        Specials::OpenAi => OPENAI.get_or_init(|| build(r"<\|startoftext\|>|<\|endoftext\|>")),
        Specials::OpenClip => OPEN_CLIP.get_or_init(|| build(r"<start_of_text>|<end_of_text>")),
    }
}

/// The pieces of `text`, as `regex.findall` returns them (characters matched by no alternative,
/// such as whitespace, are skipped).
#[cfg(test)]
pub(crate) fn pretokenize(text: &str) -> impl Iterator<Item = &str> {
    pretokenize_with(text, Specials::OpenAi)
}

/// [`pretokenize`] with the special tokens of either reference.
pub(crate) fn pretokenize_with(text: &str, specials: Specials) -> impl Iterator<Item = &str> {
    pattern(specials).find_iter(text).map(|m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        pretokenize(text).collect()
    }

    #[test]
    fn words_digits_and_punctuation() {
        assert_eq!(
            split("a photo of 12 cats."),
            ["a", "photo", "of", "1", "2", "cats", "."]
        );
        assert_eq!(split("what?!? ...hm"), ["what", "?!?", "...", "hm"]);
        assert_eq!(split("x²½①Ⅻ٣"), ["x", "²", "½", "①", "Ⅻ", "٣"]);
    }

    #[test]
    fn contractions() {
        assert_eq!(
            split("it's we'll y'all'd've"),
            ["it", "'s", "we", "'ll", "y", "'", "all", "'d", "'ve"]
        );
        assert_eq!(split("IT'S it'ſ"), ["IT", "'S", "it", "'ſ"]);
        assert_eq!(split("'x"), ["'", "x"]);
    }

    #[test]
    fn open_clip_special_tokens() {
        let split = |t| pretokenize_with(t, Specials::OpenClip).collect::<Vec<_>>();
        assert_eq!(split("a <end_of_text> b"), ["a", "<end_of_text>", "b"]);
        assert_eq!(split("<|endoftext|>"), ["<|", "endoftext", "|>"]);
    }

    #[test]
    fn special_tokens_case_insensitively() {
        assert_eq!(split("a <|endoftext|> b"), ["a", "<|endoftext|>", "b"]);
        assert_eq!(split("<|StartOfText|>x"), ["<|StartOfText|>", "x"]);
        assert_eq!(split("<<|endoftext|>"), ["<<|", "endoftext", "|>"]);
    }

    #[test]
    fn marks_are_punctuation_but_ypogegrammeni_is_dropped() {
        // Devanagari vowel sign (Mc) after a letter: a separate punctuation run.
        assert_eq!(split("का"), ["क", "ा"]);
        assert_eq!(split("a\u{301}b"), ["a", "\u{301}", "b"]);
        assert_eq!(split("a\u{345}b !\u{345}?"), ["a", "b", "!", "?"]);
    }

    #[test]
    fn letters_of_recent_unicode_versions() {
        // U+0897 ARABIC PEPET (Unicode 16, a mark) and U+A7CE (Unicode 17, a letter).
        assert_eq!(split("a\u{897}b"), ["a", "\u{897}", "b"]);
        assert_eq!(split("a\u{a7ce}b"), ["a\u{a7ce}b"]);
    }
}
