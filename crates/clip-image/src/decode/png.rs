//! PNG via the `png` crate with no transformations, mapped to the modes of Pillow's
//! `PngImagePlugin._MODES` (palette kept as `P`, 1-bit gray as `1`, 16-bit gray as `I;16`, other
//! 16-bit images reduced to their high bytes, 2/4-bit gray scaled to 8 bits). A palette image's tRNS is kept
//! beside the pixels ([`crate::DecodedImage::palette_alpha`]); colour-key tRNS is ignored.

use std::io::Cursor;

use png::{BitDepth, ColorType, Transformations};

use super::{image, DecodeOptions, Decoded};
use crate::error::{ImageError, Source};
use crate::exif;
use crate::image::Pixels;

fn map_err(src: Source, e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            src.truncated("data ends before the image is complete")
        }
        png::DecodingError::Format(f) => {
            let msg = f.to_string();
            if msg.contains("CRC error") {
                src.corrupt(crc_detail(&msg))
            } else {
                src.corrupt(msg)
            }
        }
        other => src.corrupt(other),
    }
}

/// "PNG CRC mismatch in IHDR chunk (expected 0x… have 0x…)" from the `png` crate's message, which
/// prints the chunk type with `Debug`; falls back to the whole message if its shape changes.
fn crc_detail(msg: &str) -> String {
    let chunk = msg.split("type: ").nth(1).and_then(|s| s.get(..4));
    let values = msg
        .split("CRC error: ")
        .nth(1)
        .and_then(|s| s.split(" while").next());
    match (chunk, values) {
        (Some(c), Some(v)) => format!("PNG CRC mismatch in {c} chunk ({v})"),
        _ => format!("PNG CRC mismatch ({msg})"),
    }
}

/// Unpacks rows of `bits`-bit samples (1, 2 or 4), each row padded to whole bytes, into one byte
/// per sample multiplied by `scale`.
fn unpack_bits(
    buf: &[u8],
    line_size: usize,
    width: usize,
    height: usize,
    bits: usize,
    scale: u8,
) -> Vec<u8> {
    let per_byte = 8 / bits;
    let mask = (1u8 << bits) - 1;
    let mut out = Vec::with_capacity(width * height);
    for row in buf.chunks(line_size).take(height) {
        for x in 0..width {
            let byte = row[x / per_byte];
            let shift = 8 - bits * (x % per_byte + 1);
            out.push(((byte >> shift) & mask) * scale);
        }
    }
    out
}

/// The high byte of each big-endian 16-bit sample (Pillow's `;16B` raw modes for 8-bit modes).
fn high_bytes(buf: &[u8]) -> Vec<u8> {
    buf.chunks_exact(2).map(|s| s[0]).collect()
}

pub(crate) fn decode(
    bytes: &[u8],
    src: Source,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    let (w, h) = {
        let info = decoder.read_header_info().map_err(|e| map_err(src, e))?;
        (info.width, info.height)
    };
    src.check_size(u64::from(w), u64::from(h), opts.max_pixels)?;
    // The size is now known to be acceptable: let the decoder allocate what it needs for it
    // (its default 64 MiB limit would refuse large but legitimate photos).
    decoder.set_limits(png::Limits {
        bytes: (64usize << 20).saturating_add(w as usize * h as usize * 8),
    });
    decoder.set_transformations(Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| map_err(src, e))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| src.corrupt("image too large for memory"))?;
    let mut buf = vec![0u8; size];
    let out = reader.next_frame(&mut buf).map_err(|e| map_err(src, e))?;
    let (uw, uh) = (w as usize, h as usize);
    let buf = &buf[..out.line_size * uh];
    let packed = |row_bytes: usize| -> Vec<u8> {
        buf.chunks(out.line_size)
            .flat_map(|r| &r[..row_bytes])
            .copied()
            .collect()
    };
    let pixels = match (out.color_type, out.bit_depth) {
        (ColorType::Grayscale, BitDepth::One) => {
            Pixels::Bilevel(unpack_bits(buf, out.line_size, uw, uh, 1, 255))
        }
        (ColorType::Grayscale, BitDepth::Two) => {
            Pixels::L(unpack_bits(buf, out.line_size, uw, uh, 2, 0x55))
        }
        (ColorType::Grayscale, BitDepth::Four) => {
            Pixels::L(unpack_bits(buf, out.line_size, uw, uh, 4, 0x11))
        }
        (ColorType::Grayscale, BitDepth::Eight) => Pixels::L(packed(uw)),
        (ColorType::Grayscale, BitDepth::Sixteen) => Pixels::I16(
            packed(2 * uw)
                .chunks_exact(2)
                .map(|s| u16::from_be_bytes([s[0], s[1]]))
                .collect(),
        ),
        (ColorType::Rgb, BitDepth::Eight) => Pixels::Rgb(packed(3 * uw)),
        (ColorType::Rgb, BitDepth::Sixteen) => Pixels::Rgb(high_bytes(&packed(6 * uw))),
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => Pixels::La(packed(2 * uw)),
        // Pillow opens 16-bit gray+alpha as RGBA (raw mode LA;16B).
        (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => {
            let la = high_bytes(&packed(4 * uw));
            Pixels::Rgba(
                la.chunks_exact(2)
                    .flat_map(|p| [p[0], p[0], p[0], p[1]])
                    .collect(),
            )
        }
        (ColorType::Rgba, BitDepth::Eight) => Pixels::Rgba(packed(4 * uw)),
        (ColorType::Rgba, BitDepth::Sixteen) => Pixels::Rgba(high_bytes(&packed(8 * uw))),
        (ColorType::Indexed, depth) => {
            let indices = match depth {
                BitDepth::Eight => packed(uw),
                BitDepth::One => unpack_bits(buf, out.line_size, uw, uh, 1, 1),
                BitDepth::Two => unpack_bits(buf, out.line_size, uw, uh, 2, 1),
                BitDepth::Four => unpack_bits(buf, out.line_size, uw, uh, 4, 1),
                BitDepth::Sixteen => return Err(src.corrupt("16-bit palette images do not exist")),
            };
            let palette = reader
                .info()
                .palette
                .as_deref()
                .ok_or_else(|| src.corrupt("palette image without PLTE chunk"))?;
            let palette = palette
                .chunks_exact(3)
                .take(256)
                .map(|c| [c[0], c[1], c[2]])
                .collect();
            Pixels::Palette { indices, palette }
        }
        (ct, depth) => {
            return Err(src.corrupt(format!("invalid colour type {ct:?} at depth {depth:?}")))
        }
    };
    let orientation = if opts.apply_exif_orientation {
        // eXIf may follow the image data; a damaged tail only loses the orientation.
        if reader.info().exif_metadata.is_none() {
            let _ = reader.finish();
        }
        reader
            .info()
            .exif_metadata
            .as_deref()
            .and_then(exif::orientation)
    } else {
        None
    };
    // Pillow keeps a palette image's tRNS as `info["transparency"]` (one alpha per entry).
    // Colour-key tRNS of gray and RGB images is not kept.
    let palette_alpha = match out.color_type {
        ColorType::Indexed => reader.info().trns.as_deref().map(<[u8]>::to_vec),
        _ => None,
    };
    let mut image = image(src, w, h, pixels)?;
    if let Some(alpha) = palette_alpha {
        image = image.with_palette_alpha(alpha);
    }
    Ok(Decoded { image, orientation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_messages_are_short() {
        let msg = "CRC error: expected 0x6efc207b have 0x91fc207b while decoding ChunkType { type: IHDR, critical: true } chunk.";
        assert_eq!(
            crc_detail(msg),
            "PNG CRC mismatch in IHDR chunk (expected 0x6efc207b have 0x91fc207b)"
        );
        assert_eq!(crc_detail("CRC error"), "PNG CRC mismatch (CRC error)");
    }

    #[test]
    fn unpacks_low_bit_depths_msb_first() {
        // Width 3 at 2 bits: 0b00_01_10_xx -> 0, 1, 2; scaled like Pillow's L;2.
        assert_eq!(
            unpack_bits(&[0b0001_1011, 0b1110_0000], 1, 3, 2, 2, 0x55),
            vec![0, 85, 170, 255, 170, 0]
        );
        assert_eq!(
            unpack_bits(&[0b1010_0000], 1, 3, 1, 1, 255),
            vec![255, 0, 255]
        );
        assert_eq!(unpack_bits(&[0xAB], 1, 2, 1, 4, 1), vec![0xA, 0xB]);
    }
}
