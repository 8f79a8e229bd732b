//! Python `str` semantics that differ from Rust's `str` methods.

/// Python 3.11's `str.isspace()`: bidirectional class WS, B or S, or category Zs. Unlike Rust's
/// `char::is_whitespace` it includes the information separators U+001C..U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\u{1c}'..='\u{20}' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// `str.strip()` without arguments.
pub(crate) fn strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// Characters that Rust lowercases but Python 3.11 leaves alone: they became cased letters after
/// Unicode 14.0, the version of Python 3.11's `unicodedata`. Found by comparing `chr(c).lower()`
/// with `char::to_lowercase` for every code point (Rust 1.95, Unicode 17.0).
const UNCASED_IN_PYTHON: &[(char, char)] = &[
    ('\u{1c89}', '\u{1c89}'),
    ('\u{a7cb}', '\u{a7cc}'),
    ('\u{a7ce}', '\u{a7ce}'),
    ('\u{a7d2}', '\u{a7d2}'),
    ('\u{a7d4}', '\u{a7d4}'),
    ('\u{a7da}', '\u{a7da}'),
    ('\u{a7dc}', '\u{a7dc}'),
    ('\u{10d50}', '\u{10d65}'),
    ('\u{16ea0}', '\u{16eb8}'),
];

fn uncased_in_python(c: char) -> bool {
    UNCASED_IN_PYTHON
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `str.lower()`: full lowercase mapping (`İ` -> `i̇`) with the final-sigma rule, which Rust's
/// `str::to_lowercase` implements the same way. Characters Python does not know as cased are kept;
/// to Python they are neither cased nor case-ignorable, which is also what a string boundary is
/// to the final-sigma rule, so lowercasing the pieces between them separately is exact.
pub(crate) fn lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(uncased_in_python) {
        out.push_str(&rest[..pos].to_lowercase());
        let c = rest[pos..].chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[pos + c.len_utf8()..];
    }
    out.push_str(&rest.to_lowercase());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_includes_information_separators() {
        assert_eq!(strip("\u{1f}\u{3000} a b\u{85}\u{1c}"), "a b");
        assert_eq!(strip("\u{200b}a\u{feff}"), "\u{200b}a\u{feff}");
    }

    #[test]
    fn lower_like_python() {
        assert_eq!(lower("İSTANBUL"), "i\u{307}stanbul");
        assert_eq!(lower("ΣΊΣΥΦΟΣ ΟΔΟΣ."), "σίσυφος οδος.");
        assert_eq!(lower("Σ"), "σ");
        assert_eq!(lower("AΣ\u{a7cb}B"), "aς\u{a7cb}b");
        assert_eq!(lower("\u{10d50}\u{10d65}X"), "\u{10d50}\u{10d65}x");
    }
}
