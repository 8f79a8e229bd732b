//! Python 3.11's `html.unescape`, which CLIP applies twice after ftfy.
//!
//! It decodes every reference matched by
//! `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`, following the HTML5 rules:
//! numeric references to C1 positions are read as windows-1252, invalid code points become U+FFFD
//! or disappear, and named references may lack the `;` (only the legacy names) or be followed by
//! other characters (`&ampfoo` -> `&foo`, longest legacy prefix wins).

use std::borrow::Cow;

use super::ftfy::windows_1252_char;
use super::html_entities::{LEGACY, NAMED};

/// Replacement of a named entity written with its `;` (`name` without the `;`).
pub(super) fn named_entity(name: &str) -> Option<&'static str> {
    NAMED
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| NAMED[i].1)
}

/// Replacement of a name that HTML5 also accepts without `;`.
fn legacy_entity(name: &str) -> Option<&'static str> {
    LEGACY
        .binary_search(&name)
        .ok()
        .and_then(|_| named_entity(name))
}

/// All named entities ending in `;`, as (name without `;`, replacement).
pub(super) fn named_entities() -> &'static [(&'static str, &'static str)] {
    NAMED
}

pub(crate) fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match reference_at(after) {
            Some((len, replacement)) => {
                out.push_str(&replacement);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The reference starting right after an `&`: its length in bytes and its replacement.
fn reference_at(s: &str) -> Option<(usize, Cow<'static, str>)> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'#') {
        let digits = count_while(&bytes[1..], |b| b.is_ascii_digit());
        if digits > 0 {
            let end = 1 + digits;
            let num = parse_saturating(&s[1..end], 10);
            return Some((end + semicolon_at(bytes, end), numeric_reference(num)));
        }
        if matches!(bytes.get(1), Some(b'x' | b'X')) {
            let hex = count_while(&bytes[2..], |b| b.is_ascii_hexdigit());
            if hex > 0 {
                let end = 2 + hex;
                let num = parse_saturating(&s[2..end], 16);
                return Some((end + semicolon_at(bytes, end), numeric_reference(num)));
            }
        }
        return None;
    }
    // `[^\t\n\f <&#;]{1,32};?` counts characters, not bytes.
    let mut end = 0;
    for (count, (i, c)) in s.char_indices().enumerate() {
        if count == 32 || matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        end = i + c.len_utf8();
    }
    if end == 0 {
        return None;
    }
    let full = end + semicolon_at(bytes, end);
    Some((full, named_reference(&s[..full])))
}

fn count_while(bytes: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|&&b| pred(b)).count()
}

fn semicolon_at(bytes: &[u8], i: usize) -> usize {
    usize::from(bytes.get(i) == Some(&b';'))
}

/// Python parses the number exactly; anything above U+10FFFF is treated alike, so saturate there.
/// (Python 3.11 refuses to parse more than 4300 digits and raises; that edge is not mirrored.)
fn parse_saturating(digits: &str, radix: u32) -> u32 {
    const CAP: u32 = 0x11_0000;
    digits
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .fold(0u32, |acc, d| {
            acc.saturating_mul(radix).saturating_add(d).min(CAP)
        })
}

/// `_replace_charref` for `&#...`.
fn numeric_reference(num: u32) -> Cow<'static, str> {
    let one = |c: char| Cow::Owned(c.to_string());
    match num {
        // `_invalid_charrefs`: NUL, CR, and the C1 range read as windows-1252.
        0x00 => one('\u{fffd}'),
        0x0D => one('\r'),
        0x80..=0x9F => one(windows_1252_char(num as u8)),
        0xD800..=0xDFFF | 0x11_0000.. => one('\u{fffd}'),
        // `_invalid_codepoints` that survive the cases above: dropped.
        0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0xFDD0..=0xFDEF => Cow::Borrowed(""),
        n if n & 0xFFFE == 0xFFFE => Cow::Borrowed(""),
        n => char::from_u32(n).map_or(Cow::Borrowed("\u{fffd}"), one),
    }
}

/// `_replace_charref` for a name (`s` may end with `;`).
fn named_reference(s: &str) -> Cow<'static, str> {
    let exact = match s.strip_suffix(';') {
        Some(name) => named_entity(name),
        None => legacy_entity(s),
    };
    if let Some(value) = exact {
        return Cow::Borrowed(value);
    }
    // Longest prefix of 2..len-1 characters that is a legacy name (the prefix cannot end in `;`).
    let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in boundaries.iter().rev() {
        if let Some(value) = legacy_entity(&s[..cut]) {
            return Cow::Owned(format!("{value}{}", &s[cut..]));
        }
    }
    Cow::Owned(format!("&{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_references() {
        assert_eq!(unescape("&amp; &lt;b&gt; &quot;x&quot;"), "& <b> \"x\"");
        assert_eq!(unescape("&amp &lt &copy 2020"), "& < © 2020");
        assert_eq!(
            unescape("&ampxyz; &notanentity; &notin;"),
            "&xyz; ¬anentity; ∉"
        );
        assert_eq!(unescape("&Eacute;cole &eacute;"), "École é");
        assert_eq!(unescape("&nbsp;"), "\u{a0}");
        assert_eq!(unescape("& alone && AT&T R&D"), "& alone && AT&T R&D");
        assert_eq!(unescape("&amp;amp;"), "&amp;");
        assert_eq!(unescape("&zz"), "&zz");
    }

    #[test]
    fn numeric_references() {
        assert_eq!(unescape("&#39;&#x27;&#X27;&#65&#x41"), "'''AA");
        assert_eq!(unescape("&#8364; &#x1F600;"), "€ 😀");
        assert_eq!(unescape("&#128;&#x81;&#0;&#13;"), "€\u{81}\u{fffd}\r");
        assert_eq!(
            unescape("&#xD800;&#x110000;&#99999999999999999999;"),
            "\u{fffd}\u{fffd}\u{fffd}"
        );
        assert_eq!(
            unescape("a&#1;b&#x7f;c&#xFFFE;d&#x10FFFF;e&#11;f&#12;"),
            "abcdef\u{c}"
        );
        assert_eq!(unescape("&#;&#x;&#xg"), "&#;&#x;&#xg");
    }

    #[test]
    fn names_are_at_most_32_characters() {
        let long = format!("&{};", "a".repeat(40));
        assert_eq!(unescape(&long), long);
        assert_eq!(unescape("&ampéé"), "&éé");
    }
}
