//! BMP, following Pillow's `BmpImagePlugin`: 1/4/8-bit palettes as `P` (or `1`/`L` when the
//! palette is the plain gray ramp), 16-bit 5-5-5 / 5-6-5, 24-bit, 32-bit `BGRX` (alpha ignored
//! unless bit fields name an alpha mask, then `RGBA`), RLE8 and RLE4. Rows are stored bottom-up
//! unless the height is negative.

use super::{image, DecodeOptions, Decoded};
use crate::error::{ImageError, Source};
use crate::image::Pixels;

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

const RAW: u32 = 0;
const RLE8: u32 = 1;
const RLE4: u32 = 2;
const BITFIELDS: u32 = 3;

/// How 16/24/32-bit pixels are laid out (Pillow's raw modes).
#[derive(Clone, Copy)]
enum Packed {
    Bgr15,
    Bgr16,
    Bgr,
    /// 32-bit little-endian words with these channel masks (R, G, B, A; A = 0 for none).
    Masks([u32; 4]),
}

/// The 32-bit bit-field layouts Pillow accepts (`SUPPORTED[32]`); all-zero masks mean BGRA.
const MASKS_32: [[u32; 4]; 8] = [
    [0xFF0000, 0xFF00, 0xFF, 0x0],
    [0xFF000000, 0xFF0000, 0xFF00, 0x0],
    [0xFF000000, 0xFF00, 0xFF, 0x0],
    [0xFF000000, 0xFF0000, 0xFF00, 0xFF],
    [0xFF, 0xFF00, 0xFF0000, 0xFF000000],
    [0xFF0000, 0xFF00, 0xFF, 0xFF000000],
    [0xFF000000, 0xFF00, 0xFF, 0xFF0000],
    [0x0, 0x0, 0x0, 0x0],
];

fn extract(word: u32, mask: u32) -> u8 {
    if mask == 0 {
        0
    } else {
        ((word & mask) >> mask.trailing_zeros()) as u8
    }
}

/// Pillow's `BmpRleDecoder` on `data`, which starts at file offset `base`: returns the indices in
/// file row order (bottom-up for positive heights).
fn rle(data: &[u8], base: usize, w: usize, h: usize, rle4: bool) -> Vec<u8> {
    let dest = w * h;
    let mut out: Vec<u8> = Vec::with_capacity(dest);
    let mut pos = 0;
    let mut x = 0;
    while out.len() < dest && pos + 2 <= data.len() {
        let (count, byte) = (usize::from(data[pos]), data[pos + 1]);
        pos += 2;
        if count > 0 {
            let n = if x + count > w {
                w.saturating_sub(x)
            } else {
                count
            };
            for i in 0..n {
                out.push(if !rle4 {
                    byte
                } else if i % 2 == 0 {
                    byte >> 4
                } else {
                    byte & 0x0F
                });
            }
            x += n;
            continue;
        }
        match byte {
            0 => {
                while !out.len().is_multiple_of(w) {
                    out.push(0);
                }
                x = 0;
            }
            1 => break,
            2 => {
                let Some(&[right, up]) = data.get(pos..pos + 2) else {
                    break;
                };
                pos += 2;
                out.resize(out.len() + usize::from(right) + usize::from(up) * w, 0);
                x = out.len() % w;
            }
            n => {
                let count = usize::from(n).min(dest - out.len());
                let nbytes = if rle4 { count.div_ceil(2) } else { count };
                let avail = &data[pos..(pos + nbytes).min(data.len())];
                pos += avail.len();
                if rle4 {
                    for (i, &b) in avail.iter().enumerate() {
                        out.push(b >> 4);
                        if i * 2 + 1 < count {
                            out.push(b & 0x0F);
                        }
                    }
                } else {
                    out.extend_from_slice(avail);
                }
                if avail.len() < nbytes || out.len() == dest {
                    break;
                }
                x += usize::from(n);
                // Absolute runs end on an even file offset (Pillow checks `fd.tell() % 2`).
                if !(base + pos).is_multiple_of(2) {
                    pos += 1;
                }
            }
        }
    }
    out
}

pub(crate) fn decode(
    bytes: &[u8],
    src: Source,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    let short = || src.truncated("header is incomplete");
    let offset = u32_at(bytes, 10).ok_or_else(short)? as usize;
    let header_size = u32_at(bytes, 14).ok_or_else(short)? as usize;
    let hdr = bytes.get(18..14 + header_size.max(4)).ok_or_else(short)?;
    let mut cursor = 14 + header_size;
    let (width, height, top_down, bits, compression, colors);
    let palette_entry: usize;
    let mut masks = [0u32; 4];
    match header_size {
        12 => {
            width = u32::from(u16_at(hdr, 0).ok_or_else(short)?);
            height = u32::from(u16_at(hdr, 2).ok_or_else(short)?);
            top_down = false;
            bits = u16_at(hdr, 6).ok_or_else(short)?;
            compression = RAW;
            colors = 0;
            palette_entry = 3;
        }
        40 | 52 | 56 | 64 | 108 | 124 => {
            width = u32_at(hdr, 0).ok_or_else(short)?;
            let raw_h = u32_at(hdr, 4).ok_or_else(short)?;
            top_down = hdr[7] == 0xFF;
            height = if top_down {
                raw_h.wrapping_neg()
            } else {
                raw_h
            };
            bits = u16_at(hdr, 10).ok_or_else(short)?;
            compression = u32_at(hdr, 12).ok_or_else(short)?;
            colors = u32_at(hdr, 28).ok_or_else(short)?;
            palette_entry = 4;
            if compression == BITFIELDS {
                if hdr.len() >= 48 {
                    for (i, m) in
                        masks
                            .iter_mut()
                            .enumerate()
                            .take(if hdr.len() >= 52 { 4 } else { 3 })
                    {
                        *m = u32_at(hdr, 36 + 4 * i).ok_or_else(short)?;
                    }
                } else {
                    for m in masks.iter_mut().take(3) {
                        *m = u32_at(bytes, cursor).ok_or_else(short)?;
                        cursor += 4;
                    }
                }
            }
        }
        n => return Err(src.unsupported(format!("BMP header type of {n} bytes"))),
    }
    src.check_size(u64::from(width), u64::from(height), opts.max_pixels)?;
    let colors = if colors == 0 {
        1u32.checked_shl(u32::from(bits)).unwrap_or(0)
    } else {
        colors
    } as usize;
    let mut data_offset = offset;
    if offset == 14 + header_size && bits <= 8 {
        data_offset = data_offset.saturating_add(palette_entry.saturating_mul(colors));
    }

    let packed = match (bits, compression) {
        (1 | 4 | 8, RAW) | (8, RLE8) | (4, RLE4) => None,
        (16, RAW) => Some(Packed::Bgr15),
        (24, RAW) => Some(Packed::Bgr),
        (32, RAW) => Some(Packed::Masks([0xFF0000, 0xFF00, 0xFF, 0])),
        (16, BITFIELDS) if masks[..3] == [0xF800, 0x7E0, 0x1F] => Some(Packed::Bgr16),
        (16, BITFIELDS) if masks[..3] == [0x7C00, 0x3E0, 0x1F] => Some(Packed::Bgr15),
        (24, BITFIELDS) if masks[..3] == [0xFF0000, 0xFF00, 0xFF] => Some(Packed::Bgr),
        (32, BITFIELDS) if MASKS_32.contains(&masks) => Some(Packed::Masks(if masks == [0; 4] {
            [0xFF0000, 0xFF00, 0xFF, 0xFF000000]
        } else {
            masks
        })),
        (16 | 24 | 32, BITFIELDS) => return Err(src.unsupported("BMP bit-field layout")),
        (1 | 4 | 8 | 16 | 24 | 32, c) => {
            return Err(src.unsupported(format!("BMP compression {c} at {bits} bits")))
        }
        (b, _) => return Err(src.unsupported(format!("BMP pixel depth of {b} bits"))),
    };

    let (w, h) = (width as usize, height as usize);
    let pixels = match packed {
        Some(layout) => {
            let stride = ((w * usize::from(bits) + 31) >> 3) & !3;
            let bpp = usize::from(bits) / 8;
            let need = (h - 1) * stride + w * bpp;
            let body = bytes
                .get(data_offset..)
                .filter(|b| b.len() >= need)
                .ok_or_else(|| src.truncated("pixel data is incomplete"))?;
            let has_alpha = matches!(layout, Packed::Masks(m) if m[3] != 0);
            let c = if has_alpha { 4 } else { 3 };
            let mut out = Vec::with_capacity(w * h * c);
            for y in 0..h {
                let fy = if top_down { y } else { h - 1 - y };
                let row = &body[fy * stride..fy * stride + w * bpp];
                for p in row.chunks_exact(bpp) {
                    match layout {
                        Packed::Bgr => out.extend_from_slice(&[p[2], p[1], p[0]]),
                        Packed::Bgr15 | Packed::Bgr16 => {
                            let v = u32::from(u16::from_le_bytes([p[0], p[1]]));
                            let (rs, gm) = if matches!(layout, Packed::Bgr16) {
                                (11, 63)
                            } else {
                                (10, 31)
                            };
                            let scale = |x: u32, m: u32| (x * 255 / m) as u8;
                            out.extend_from_slice(&[
                                scale((v >> rs) & 31, 31),
                                scale((v >> 5) & gm, gm),
                                scale(v & 31, 31),
                            ]);
                        }
                        Packed::Masks(m) => {
                            let word = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                            out.extend_from_slice(&[
                                extract(word, m[0]),
                                extract(word, m[1]),
                                extract(word, m[2]),
                            ]);
                            if has_alpha {
                                out.push(extract(word, m[3]));
                            }
                        }
                    }
                }
            }
            if has_alpha {
                Pixels::Rgba(out)
            } else {
                Pixels::Rgb(out)
            }
        }
        None => {
            if !(1..=65536).contains(&colors) {
                return Err(src.unsupported(format!("BMP palette of {colors} colours")));
            }
            let pal_bytes = bytes
                .get(cursor..cursor + palette_entry * colors)
                .ok_or_else(|| src.truncated("palette is incomplete"))?;
            let entries: Vec<[u8; 3]> = pal_bytes
                .chunks_exact(palette_entry)
                .map(|e| [e[2], e[1], e[0]])
                .collect();
            // Pillow drops a palette that is exactly the gray ramp (or black/white for 2 colours).
            let gray = if colors == 2 {
                entries[0] == [0; 3] && entries[1] == [255; 3]
            } else {
                entries
                    .iter()
                    .enumerate()
                    .all(|(i, e)| e.iter().all(|&v| usize::from(v) == i))
            };
            let indices = if compression == RAW {
                let stride = ((w * usize::from(bits) + 31) >> 3) & !3;
                let row_bytes = (w * usize::from(bits)).div_ceil(8);
                let body = bytes
                    .get(data_offset..)
                    .filter(|b| b.len() >= (h - 1) * stride + row_bytes)
                    .ok_or_else(|| src.truncated("pixel data is incomplete"))?;
                let per_byte = 8 / usize::from(bits);
                let mask = ((1u16 << bits) - 1) as u8;
                let mut v = Vec::with_capacity(w * h);
                for y in 0..h {
                    let fy = if top_down { y } else { h - 1 - y };
                    let row = &body[fy * stride..fy * stride + row_bytes];
                    v.extend((0..w).map(|x| {
                        (row[x / per_byte] >> (8 - usize::from(bits) * (x % per_byte + 1))) & mask
                    }));
                }
                v
            } else {
                let body = bytes.get(data_offset..).unwrap_or_default();
                let file_rows = rle(body, data_offset, w, h, compression == RLE4);
                if file_rows.len() < w * h {
                    return Err(src.truncated("RLE data ends before the image is complete"));
                }
                let mut v = Vec::with_capacity(w * h);
                for y in 0..h {
                    let fy = if top_down { y } else { h - 1 - y };
                    v.extend_from_slice(&file_rows[fy * w..(fy + 1) * w]);
                }
                v
            };
            match (gray, colors, bits) {
                (false, ..) => Pixels::Palette {
                    indices,
                    palette: entries.into_iter().take(256).collect(),
                },
                (true, 2, 1) => Pixels::Bilevel(
                    indices
                        .into_iter()
                        .map(|i| if i != 0 { 255 } else { 0 })
                        .collect(),
                ),
                (true, _, 8) if colors != 2 => Pixels::L(indices),
                // Pillow would reinterpret the raw bytes in another bit depth here.
                (true, ..) => {
                    return Err(src
                        .unsupported(format!("gray {bits}-bit BMP with {colors} palette entries")))
                }
            }
        }
    };
    Ok(Decoded::plain(image(src, width, height, pixels)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle8_runs_escapes_and_deltas() {
        // Width 4, height 2: run of 3 x 7, end of line, absolute run of 3 (padded), delta, end.
        let data = [3, 7, 0, 0, 0, 3, 1, 2, 3, 0, 0, 1];
        assert_eq!(rle(&data, 0, 4, 2, false), vec![7, 7, 7, 0, 1, 2, 3]);
        let data = [4, 7, 0, 2, 1, 0, 1, 9];
        assert_eq!(rle(&data, 0, 4, 2, false), vec![7, 7, 7, 7, 0, 9]);
    }

    #[test]
    fn rle4_alternates_nibbles() {
        assert_eq!(rle(&[5, 0x12, 0, 1], 0, 8, 1, true), vec![1, 2, 1, 2, 1]);
        assert_eq!(
            rle(&[0, 3, 0xAB, 0xC0, 0, 1], 0, 4, 1, true),
            vec![0xA, 0xB, 0xC]
        );
    }

    #[test]
    fn masks_extract_channels() {
        assert_eq!(extract(0x11223344, 0xFF0000), 0x22);
        assert_eq!(extract(0x11223344, 0xFF000000), 0x11);
        assert_eq!(extract(0x11223344, 0), 0);
    }
}
