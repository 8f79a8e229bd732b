//! ftfy's character-level fixers (`ftfy.fixes`), each a plain text-to-text function.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use super::codecs::windows_1252_char;
use crate::clean::html;

/// ftfy's `unescape_html`: decodes `&#?[0-9A-Za-z]{1,24};` when it is an HTML5 entity (with its
/// `;`), an all-caps version of a lowercase entity (`&EACUTE;` -> `É`), or a numeric reference.
/// Unlike `html.unescape` it never touches references without `;` (`this&not that` stays).
pub(super) fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(len) = entity_len(after.as_bytes()) else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &rest[amp..amp + 1 + len];
        match entity_replacement(entity) {
            Some(replacement) => out.push_str(&replacement),
            None => out.push_str(entity),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Length (after the `&`) of a `#?[0-9A-Za-z]{1,24};` match.
fn entity_len(after_amp: &[u8]) -> Option<usize> {
    let hash = usize::from(after_amp.first() == Some(&b'#'));
    let run = after_amp[hash..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    ((1..=24).contains(&run) && after_amp.get(hash + run) == Some(&b';')).then_some(hash + run + 1)
}

/// `_unescape_fixup` for a matched `&...;`.
fn entity_replacement(entity: &str) -> Option<String> {
    let name = &entity[1..entity.len() - 1];
    if let Some(value) =
        html::named_entity(name).or_else(|| uppercase_entities().get(name).map(String::as_str))
    {
        return Some(value.to_owned());
    }
    if name.starts_with('#') {
        let unescaped = html::unescape(entity);
        if !unescaped.contains(';') {
            return Some(unescaped.into_owned());
        }
    }
    None
}

/// ftfy's extra entities: for each all-lowercase HTML5 name whose all-caps form means nothing to
/// `html.unescape`, the caps form maps to the uppercased replacement (`&NTILDE;` -> `Ñ`).
fn uppercase_entities() -> &'static HashMap<String, String> {
    static MAP: OnceLock<HashMap<String, String>> = OnceLock::new();
    MAP.get_or_init(|| {
        html::named_entities()
            .iter()
            .filter(|(name, _)| !name.bytes().any(|b| b.is_ascii_uppercase()))
            .filter_map(|(name, value)| {
                let upper = name.to_ascii_uppercase();
                let entity = format!("&{upper};");
                (html::unescape(&entity) == entity).then(|| (upper, value.to_uppercase()))
            })
            .collect()
    })
}

/// Removes ANSI terminal escapes: `ESC [`, digits (any Unicode decimal digit, like Python's `\d`)
/// or `;`, then a letter.
pub(super) fn remove_terminal_escapes(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"\x1b\[(?:\d|;)*[a-zA-Z]").expect("ANSI_RE compiles"));
    re.replace_all(text, "").into_owned()
}

/// Curly quotes to straight ones: U+201C..U+201F -> `"`, U+02BC and U+2018..U+201B -> `'`.
/// Guillemets are left alone.
pub(super) fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{201c}'..='\u{201f}' => '"',
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
            c => c,
        })
        .collect()
}

/// Latin ligatures and digraphs to their letters (ligatures of other scripts, and `æ`, stay).
pub(super) fn fix_latin_ligatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let letters = match c {
            'Ĳ' => "IJ",
            'ĳ' => "ij",
            'ŉ' => "ʼn",
            'Ǳ' => "DZ",
            'ǲ' => "Dz",
            'ǳ' => "dz",
            'Ǆ' => "DŽ",
            'ǅ' => "Dž",
            'ǆ' => "dž",
            'Ǉ' => "LJ",
            'ǈ' => "Lj",
            'ǉ' => "lj",
            'Ǌ' => "NJ",
            'ǋ' => "Nj",
            'ǌ' => "nj",
            'ﬀ' => "ff",
            'ﬁ' => "fi",
            'ﬂ' => "fl",
            'ﬃ' => "ffi",
            'ﬄ' => "ffl",
            'ﬅ' => "ſt",
            'ﬆ' => "st",
            c => {
                out.push(c);
                continue;
            }
        };
        out.push_str(letters);
    }
    out
}

/// Full-width and half-width forms (U+FF01..U+FFEF) to their NFKC form (`Ａ` -> `A`,
/// `ｶ` -> `カ`), and the ideographic space U+3000 to a space. Nothing else is NFKC-folded.
pub(super) fn fix_character_width(text: &str) -> String {
    static MAP: OnceLock<HashMap<char, String>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut map: HashMap<char, String> = ('\u{ff01}'..'\u{fff0}')
            .filter_map(|c| {
                let folded: String = std::iter::once(c).nfkc().collect();
                (folded != c.to_string()).then_some((c, folded))
            })
            .collect();
        map.insert('\u{3000}', " ".to_owned());
        map
    });
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match map.get(&c) {
            Some(folded) => out.push_str(folded),
            None => out.push(c),
        }
    }
    out
}

/// CRLF, CR, U+2028, U+2029 and NEL (U+0085) to `\n`.
pub(super) fn fix_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            c => out.push(c),
        }
    }
    out
}

/// Removes controls with no visible effect: C0 controls except `\t \n \x0c \r`, DEL, the
/// deprecated format characters U+206A..U+206F, the BOM U+FEFF, and U+FFF9..U+FFFC. Joiners,
/// bidi marks, soft hyphens, tags and C1 controls (clues to mojibake) are kept.
pub(super) fn remove_control_chars(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}'
                | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
        })
        .collect()
}

pub(super) fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// Each remaining C1 control to its windows-1252 character, as web browsers do.
pub(super) fn fix_c1_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if is_c1(c) {
                windows_1252_char(c as u8)
            } else {
                c
            }
        })
        .collect()
}

/// Characters that take part in canonical normalization in `unicode-normalization`'s Unicode
/// version (combining marks, decomposable or composable characters) but are unassigned in
/// Python 3.11's Unicode 14.0, for which they are inert starters. Found by comparing combining
/// classes and decompositions of every code point between the two.
const INERT_IN_PYTHON: &[(char, char)] = &[
    ('\u{5c8}', '\u{5c9}'),
    ('\u{897}', '\u{897}'),
    ('\u{1acf}', '\u{1af0}'),
    ('\u{105c9}', '\u{105c9}'),
    ('\u{105d2}', '\u{105d2}'),
    ('\u{105da}', '\u{105da}'),
    ('\u{105e4}', '\u{105e4}'),
    ('\u{10d69}', '\u{10d6d}'),
    ('\u{10ecb}', '\u{10ecf}'),
    ('\u{10ef0}', '\u{10efb}'),
    ('\u{10efd}', '\u{10eff}'),
    ('\u{11382}', '\u{11385}'),
    ('\u{1138b}', '\u{1138b}'),
    ('\u{1138e}', '\u{1138e}'),
    ('\u{11390}', '\u{11391}'),
    ('\u{113b8}', '\u{113b8}'),
    ('\u{113bb}', '\u{113bb}'),
    ('\u{113c2}', '\u{113c2}'),
    ('\u{113c5}', '\u{113c5}'),
    ('\u{113c7}', '\u{113c9}'),
    ('\u{113ce}', '\u{113d0}'),
    ('\u{11f41}', '\u{11f42}'),
    ('\u{1611e}', '\u{16129}'),
    ('\u{1612f}', '\u{1612f}'),
    ('\u{16d63}', '\u{16d63}'),
    ('\u{16d67}', '\u{16d6a}'),
    ('\u{1d127}', '\u{1d128}'),
    ('\u{1d250}', '\u{1d252}'),
    ('\u{1d25b}', '\u{1d25c}'),
    ('\u{1d25f}', '\u{1d25f}'),
    ('\u{1d280}', '\u{1d281}'),
    ('\u{1e08f}', '\u{1e08f}'),
    ('\u{1e4ec}', '\u{1e4ef}'),
    ('\u{1e5ee}', '\u{1e5ef}'),
    ('\u{1e6e3}', '\u{1e6e3}'),
    ('\u{1e6e6}', '\u{1e6e6}'),
    ('\u{1e6ee}', '\u{1e6ef}'),
    ('\u{1e6f5}', '\u{1e6f5}'),
];

fn inert_in_python(c: char) -> bool {
    INERT_IN_PYTHON
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `unicodedata.normalize("NFC", text)` as Python 3.11 does it. An inert starter blocks every
/// composition and reordering across it, so normalizing the pieces between such characters
/// separately, and keeping them as they are, is exactly Python's result.
pub(super) fn nfc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(inert_in_python) {
        out.extend(rest[..pos].nfc());
        let c = rest[pos..].chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[pos + c.len_utf8()..];
    }
    out.extend(rest.nfc());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_only_terminated_entities() {
        assert_eq!(unescape_html("&amp;amp; &lt;b&gt;"), "&amp; <b>");
        assert_eq!(unescape_html("&#39;&#x27;&#8364;&#x1F600;"), "''€😀");
        assert_eq!(
            unescape_html("this&not that &amp AT&T"),
            "this&not that &amp AT&T"
        );
        assert_eq!(
            unescape_html("P&EACUTE;REZ &SZLIG; &NTILDE; &nTILDE;"),
            "PÉREZ SS Ñ &nTILDE;"
        );
        assert_eq!(unescape_html("&Jscr;ohn &HilbertSpace;"), "𝒥ohn ℋ");
        assert_eq!(
            unescape_html("&notanentity; &#xZZ; &#12ab;"),
            "&notanentity; &#xZZ; &#12ab;"
        );
        assert_eq!(
            unescape_html(&format!("&{};", "a".repeat(25))),
            format!("&{};", "a".repeat(25))
        );
    }

    #[test]
    fn character_fixes() {
        assert_eq!(
            remove_terminal_escapes("esc\x1b[31mred\x1b[0m \x1b[1;2x"),
            "escred "
        );
        assert_eq!(
            uncurl_quotes("“a” ‘b’ „c“ «d» ʼe"),
            "\"a\" 'b' \"c\" «d» 'e"
        );
        assert_eq!(fix_latin_ligatures("ﬁsh ǅ ŉ æ"), "fish Dž ʼn æ");
        assert_eq!(
            fix_character_width("ＡＢＣ　１２３ ｶﾀｶﾅ ＼"),
            "ABC 123 カタカナ \\"
        );
        assert_eq!(
            fix_line_breaks("a\r\nb\rc\r\r\nd\u{2028}e\u{85}"),
            "a\nb\nc\n\nd\ne\n"
        );
        assert_eq!(
            remove_control_chars("\u{feff}a\0b\u{b}c\u{c}\u{200b}\u{206a}\u{fffc}\u{fffd}"),
            "abc\u{c}\u{200b}\u{fffd}"
        );
        assert_eq!(fix_c1_controls("a\u{85}b\u{81}"), "a…b\u{81}");
        assert_eq!(nfc("cafe\u{301} \u{212b}"), "café Å");
        // U+0897 (ccc 230 since Unicode 16) is not reordered before U+0323 (ccc 220) as in Python.
        assert_eq!(nfc("a\u{897}\u{323}"), "a\u{897}\u{323}");
        assert_eq!(nfc("a\u{301}\u{897}\u{323}"), "á\u{897}\u{323}");
    }
}
