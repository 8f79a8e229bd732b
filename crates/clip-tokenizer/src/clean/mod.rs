//! Text cleaning before tokenisation: `whitespace_clean(basic_clean(text)).lower()` of the reference.
//!
//! `basic_clean` is `ftfy.fix_text`, then `html.unescape` twice, then `str.strip()`;
//! `whitespace_clean` replaces each run of `regex`-module whitespace with one space and strips again.

mod ftfy;
mod html;
#[rustfmt::skip]
mod html_entities;
pub(crate) mod pystr;

/// The text that [`crate::Tokenizer::encode`] pre-tokenises: ftfy's fixes, HTML entities decoded
/// twice, whitespace runs collapsed to single spaces, ends stripped, lowercased like Python's
/// `str.lower()`.
pub fn clean_text(text: &str) -> String {
    let fixed = ftfy::fix_text(text);
    let once = html::unescape(&fixed);
    let twice = html::unescape(&once);
    let collapsed = collapse_whitespace(pystr::strip(&twice));
    pystr::lower(pystr::strip(&collapsed))
}

/// `regex.sub(r'\s+', ' ', text)` with the `regex` module, whose `\s` is the Unicode White_Space
/// property (= `char::is_whitespace`; unlike `str.isspace` it excludes U+001C..U+001F).
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_the_reference() {
        assert_eq!(clean_text("  Hello\t\tWORLD \n"), "hello world");
        assert_eq!(clean_text("Tom &amp;amp; Jerry"), "tom & jerry");
        assert_eq!(clean_text("<b>&amp;lt;</b>"), "<b><</b>");
        assert_eq!(clean_text("ＨＥＬＬＯ　ＷＯＲＬＤ"), "hello world");
        assert_eq!(clean_text("ΣΊΣΥΦΟΣ"), "σίσυφος");
        assert_eq!(clean_text("İstanbul"), "i\u{307}stanbul");
        assert_eq!(clean_text("a\u{1c}b\u{a0}\u{2003}c"), "ab c");
    }

    #[test]
    fn collapse_uses_white_space_property() {
        assert_eq!(collapse_whitespace("a \t\u{85}\u{3000}b"), "a b");
        assert_eq!(
            collapse_whitespace("a\u{1c}b\u{200b}c"),
            "a\u{1c}b\u{200b}c"
        );
    }
}
