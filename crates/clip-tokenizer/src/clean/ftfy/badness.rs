//! ftfy's mojibake heuristic: `is_bad(text)` is true when the text contains one of the unlikely
//! character sequences of `BADNESS_RE` (accented letters next to currency signs, box drawing next
//! to letters, C1 controls, typical windows-1252/1251/1253 and MacRoman mojibake pairs, ...).

use std::sync::OnceLock;

use regex::Regex;

use super::tables::BADNESS_ALTERNATIVES;

fn badness_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Generated from ftfy's pattern; a test compiles it.
    RE.get_or_init(|| {
        Regex::new(&BADNESS_ALTERNATIVES.join("|")).expect("badness pattern compiles")
    })
}

pub(super) fn is_bad(text: &str) -> bool {
    badness_re().is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_mojibake() {
        for bad in [
            "cafÃ©",
            "â€œquotedâ€\u{9d}",
            "ÐŸÑ€Ð¸Ð²ÐµÑ‚",
            "x\u{85}y",
            "Ã la",
            "Ã¢ÂÂ¤",
            "вЂ",
        ] {
            assert!(is_bad(bad), "{bad}");
        }
        for good in [
            "café",
            "naïve façade",
            "€10 £5",
            "Привет",
            "plain ascii",
            "",
            "Â",
            "(╯°□°)╯",
        ] {
            assert!(!is_bad(good), "{good}");
        }
    }
}
