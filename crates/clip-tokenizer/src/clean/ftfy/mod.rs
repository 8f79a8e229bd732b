//! `ftfy.fix_text` (ftfy 6.3.1, default configuration), the first step of the reference's
//! `basic_clean`.
//!
//! ftfy fixes text line by line. Each line goes through the same sequence of fixes, repeated until
//! it stops changing: HTML entities, mojibake (`fix_encoding`), C1 controls, Latin ligatures,
//! character width, curly quotes, line breaks, terminal escapes, control characters, NFC.
//! ftfy's `fix_surrogates` has no counterpart: a Rust `str` cannot hold surrogates, and no step
//! here produces them.

mod badness;
mod codecs;
mod encoding;
mod fixes;
#[rustfmt::skip]
mod tables;

pub(crate) use codecs::windows_1252_char;

/// ftfy cuts lines longer than this many characters into pieces of this size.
const MAX_DECODE_LENGTH: usize = 1_000_000;

/// ftfy repeats the fixes until the text stops changing, without a bound; this one only guarantees
/// termination on adversarial input.
const MAX_ROUNDS: usize = 64;

pub(crate) fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // `unescape_html="auto"`: once a line contains `<`, the text is taken for HTML and entities are
    // left alone from that line on (ftfy replaces its configuration for the remaining lines).
    let mut unescape = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        if let Some((cap, _)) = rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
            end = cap;
        }
        let (segment, tail) = rest.split_at(end);
        unescape &= !segment.contains('<');
        out.push_str(&fix_segment(segment, unescape));
        rest = tail;
    }
    out
}

/// `fix_and_explain` of one segment.
fn fix_segment(segment: &str, unescape: bool) -> String {
    let mut text = segment.to_owned();
    for _ in 0..MAX_ROUNDS {
        let mut fixed = if unescape {
            fixes::unescape_html(&text)
        } else {
            text.clone()
        };
        fixed = encoding::fix_encoding(&fixed);
        fixed = fixes::fix_c1_controls(&fixed);
        fixed = fixes::fix_latin_ligatures(&fixed);
        fixed = fixes::fix_character_width(&fixed);
        fixed = fixes::uncurl_quotes(&fixed);
        fixed = fixes::fix_line_breaks(&fixed);
        fixed = fixes::remove_terminal_escapes(&fixed);
        fixed = fixes::remove_control_chars(&fixed);
        fixed = fixes::nfc(&fixed);
        if fixed == text {
            break;
        }
        text = fixed;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_like_ftfy() {
        assert_eq!(fix_text("â€œmojibakeâ€\u{9d}"), "\"mojibake\"");
        assert_eq!(
            fix_text("The Mona Lisa doesnâ€™t have eyebrows."),
            "The Mona Lisa doesn't have eyebrows."
        );
        assert_eq!(fix_text("&amp;amp;amp;"), "&");
        assert_eq!(fix_text("ŉ？．"), "'n?.");
        assert_eq!(
            fix_text("windows\r\nline\r\nendings"),
            "windows\nline\nendings"
        );
        assert_eq!(fix_text("ď７ڏ-\u{2029}"), "ď7ڏ-\n");
    }

    #[test]
    fn html_is_left_alone_from_the_first_line_with_a_tag() {
        assert_eq!(
            fix_text("&amp;\n<b>&amp;</b>\n&amp;"),
            "&\n<b>&amp;</b>\n&amp;"
        );
        assert_eq!(fix_text("a < b &amp; c"), "a < b &amp; c");
    }
}
