//! The codecs ftfy re-encodes and re-decodes text with: its single-byte `CHARMAP_ENCODINGS`
//! (including the "sloppy" windows-125x variants), strict windows-1252, and "utf-8-variants".

use std::collections::HashMap;
use std::sync::OnceLock;

use super::tables::CHARMAPS;

/// A single-byte encoding: a table from bytes to characters and its inverse.
pub(super) struct Charmap {
    pub(super) name: &'static str,
    decode: [char; 256],
    encode: HashMap<char, u8>,
}

impl Charmap {
    fn new(name: &'static str, high: &str, byte_1a: char) -> Charmap {
        let mut decode = [char::REPLACEMENT_CHARACTER; 256];
        for (b, slot) in decode.iter_mut().enumerate().take(0x80) {
            *slot = char::from(b as u8);
        }
        decode[0x1A] = byte_1a;
        for (slot, c) in decode[0x80..].iter_mut().zip(high.chars()) {
            *slot = c;
        }
        let encode = decode
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Charmap {
            name,
            decode,
            encode,
        }
    }

    /// ftfy's "sloppy" codecs decode unassigned bytes as Latin-1 and byte 0x1A as U+FFFD.
    pub(super) fn is_sloppy(&self) -> bool {
        self.name.starts_with("sloppy-")
    }

    /// `text.encode(name)`, or `None` when some character has no byte (what ftfy's
    /// `possible_encoding` regex checks before encoding).
    pub(super) fn encode(&self, text: &str) -> Option<Vec<u8>> {
        text.chars().map(|c| self.encode.get(&c).copied()).collect()
    }

    pub(super) fn decode_byte(&self, b: u8) -> char {
        self.decode[b as usize]
    }
}

/// The charmaps in the order ftfy tries them.
pub(super) fn charmaps() -> &'static [Charmap] {
    static MAPS: OnceLock<Vec<Charmap>> = OnceLock::new();
    MAPS.get_or_init(|| {
        CHARMAPS
            .iter()
            .map(|&(name, high, sub)| Charmap::new(name, high, sub))
            .collect()
    })
}

fn charmap(name: &str) -> &'static Charmap {
    charmaps()
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| unreachable!("charmap {name} is in the generated table"))
}

/// Byte `b` in sloppy windows-1252: windows-1252, with its five unassigned bytes (0x81, 0x8D,
/// 0x8F, 0x90, 0x9D) read as Latin-1.
pub(crate) fn windows_1252_char(b: u8) -> char {
    charmap("sloppy-windows-1252").decode_byte(b)
}

/// `text.encode("latin-1").decode("windows-1252")` (strict): `None` when a character is above
/// U+00FF or is one of the five bytes windows-1252 leaves unassigned.
pub(super) fn latin1_as_windows_1252(text: &str) -> Option<String> {
    let sloppy = charmap("sloppy-windows-1252");
    text.chars()
        .map(|c| {
            let b = u8::try_from(u32::from(c)).ok()?;
            if !(0x80..=0x9F).contains(&b) {
                return Some(c);
            }
            // Unassigned bytes are exactly those the sloppy codec maps to their Latin-1 C1 control.
            let decoded = sloppy.decode_byte(b);
            (decoded != c).then_some(decoded)
        })
        .collect()
}

/// Decodes ftfy's "utf-8-variants" strictly: standard UTF-8, plus Java's `C0 80` for U+0000 and
/// CESU-8 surrogate pairs (`ED A0-AF 80-BF ED B0-BF 80-BF`) for supplementary characters.
/// `None` where Python raises `UnicodeDecodeError`. On bytes without 0xC0 and 0xED this is plain
/// strict UTF-8, which is what ftfy uses for them.
pub(super) fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match rest {
            [0xC0, 0x80, ..] => {
                out.push('\0');
                i += 2;
            }
            [0xED, a @ 0xA0..=0xAF, b @ 0x80..=0xBF, 0xED, c @ 0xB0..=0xBF, d @ 0x80..=0xBF, ..] => {
                let cp = ((u32::from(*a) & 0x0F) << 16)
                    + ((u32::from(*b) & 0x3F) << 10)
                    + ((u32::from(*c) & 0x0F) << 6)
                    + (u32::from(*d) & 0x3F)
                    + 0x10000;
                out.push(char::from_u32(cp)?);
                i += 6;
            }
            _ => {
                // One standard UTF-8 character (lone surrogates and overlong forms are errors).
                let width = utf8_width(rest[0])?;
                let s = std::str::from_utf8(rest.get(..width)?).ok()?;
                out.push_str(s);
                i += width;
            }
        }
    }
    Some(out)
}

fn utf8_width(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7F => Some(1),
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charmaps_round_trip() {
        for map in charmaps() {
            for b in 0..=255u8 {
                let c = map.decode_byte(b);
                assert_eq!(
                    map.encode(&c.to_string()),
                    Some(vec![b]),
                    "{} byte {b:#x}",
                    map.name
                );
            }
        }
        assert_eq!(charmaps().len(), 10);
        assert_eq!(charmaps()[0].name, "latin-1");
    }

    #[test]
    fn sloppy_windows_1252() {
        let sloppy = charmap("sloppy-windows-1252");
        assert!(sloppy.is_sloppy());
        assert_eq!(
            sloppy.encode("€\u{81}\u{fffd}"),
            Some(vec![0x80, 0x81, 0x1A])
        );
        assert_eq!(sloppy.encode("\u{1a}"), None);
        assert_eq!(windows_1252_char(0x85), '…');
        assert_eq!(windows_1252_char(0x9D), '\u{9d}');
        assert_eq!(latin1_as_windows_1252("c1\u{85}x").as_deref(), Some("c1…x"));
        assert_eq!(latin1_as_windows_1252("\u{9d}"), None);
        assert_eq!(latin1_as_windows_1252("Ā"), None);
        assert_eq!(
            latin1_as_windows_1252("\u{1a}é").as_deref(),
            Some("\u{1a}é")
        );
    }

    #[test]
    fn utf8_variants() {
        assert_eq!(
            decode_utf8_variants("café 한".as_bytes()).as_deref(),
            Some("café 한")
        );
        assert_eq!(decode_utf8_variants(b"a\xc0\x80b").as_deref(), Some("a\0b"));
        // U+1F600 as a CESU-8 surrogate pair.
        assert_eq!(
            decode_utf8_variants(b"\xed\xa0\xbd\xed\xb8\x80").as_deref(),
            Some("😀")
        );
        assert_eq!(decode_utf8_variants(b"\xed\xa0\xbd"), None);
        assert_eq!(decode_utf8_variants(b"\xc0"), None);
        assert_eq!(decode_utf8_variants(b"\xc3"), None);
        assert_eq!(decode_utf8_variants(b"\xe2\x82"), None);
        assert_eq!(decode_utf8_variants(b"\xc1\xbf"), None);
    }
}
