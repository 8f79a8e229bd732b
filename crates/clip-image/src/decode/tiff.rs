//! TIFF via the `tiff` crate (LZW, Deflate, PackBits, uncompressed), first page, mapped to the
//! modes of Pillow's `TiffImagePlugin.OPEN_INFO`: gray 1/8/16 bits as `1`/`L`/`I;16`, gray+alpha
//! as `LA`, RGB and RGBA (16-bit reduced to high bytes; associated alpha un-premultiplied as
//! Pillow's `RGBa` raw mode does), CMYK as stored. White-is-zero gray is inverted by the crate,
//! as Pillow's `;I` raw modes do. Palette and YCbCr TIFFs are refused.

use std::io::Cursor;

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::Tag;
use tiff::ColorType;

use super::{image, DecodeOptions, Decoded};
use crate::error::{ImageError, Source};
use crate::image::Pixels;

fn map_err(src: Source, e: tiff::TiffError) -> ImageError {
    match e {
        tiff::TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            src.truncated("data ends before the image is complete")
        }
        tiff::TiffError::UnsupportedError(u) => src.unsupported(u),
        other => src.corrupt(other),
    }
}

/// ExtraSamples value 1: the alpha channel is premultiplied.
const ASSOCIATED_ALPHA: u32 = 1;

/// Pillow's `unpackRGBa`: straight colour from premultiplied, `CLIP8(c * 255 / a)`.
fn unpremultiply_rgba(v: &mut [u8]) {
    for px in v.chunks_exact_mut(4) {
        let a = u32::from(px[3]);
        match a {
            0 => px[..3].fill(0),
            255 => {}
            _ => {
                for c in &mut px[..3] {
                    *c = (u32::from(*c) * 255 / a).min(255) as u8;
                }
            }
        }
    }
}

/// Unpacks 1-bit rows (each padded to whole bytes) to 0/255.
fn unpack_bilevel(packed: &[u8], w: usize, h: usize) -> Vec<u8> {
    let stride = w.div_ceil(8);
    let mut out = Vec::with_capacity(w * h);
    for row in packed.chunks(stride).take(h) {
        out.extend((0..w).map(|x| {
            if row[x / 8] & (0x80 >> (x % 8)) != 0 {
                255
            } else {
                0
            }
        }));
    }
    out
}

pub(crate) fn decode(
    bytes: &[u8],
    src: Source,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    let mut decoder = Decoder::new(Cursor::new(bytes)).map_err(|e| map_err(src, e))?;
    let (w, h) = decoder.dimensions().map_err(|e| map_err(src, e))?;
    src.check_size(u64::from(w), u64::from(h), opts.max_pixels)?;
    // Size accepted: raise the crate's 256 MiB output limit to what this image needs.
    let mut limits = Limits::default();
    limits.decoding_buffer_size = limits
        .decoding_buffer_size
        .max(w as usize * h as usize * 16);
    let mut decoder = decoder.with_limits(limits);
    let colortype = decoder.colortype().map_err(|e| map_err(src, e))?;
    let associated = decoder
        .get_tag_u32(Tag::ExtraSamples)
        .map(|v| v == ASSOCIATED_ALPHA)
        .unwrap_or(false);
    let orientation = if opts.apply_exif_orientation {
        decoder
            .get_tag_u32(Tag::Orientation)
            .ok()
            .and_then(|o| u16::try_from(o).ok())
    } else {
        None
    };
    let data = decoder.read_image().map_err(|e| map_err(src, e))?;
    let (uw, uh) = (w as usize, h as usize);
    let high = |v: Vec<u16>| -> Vec<u8> { v.into_iter().map(|s| (s >> 8) as u8).collect() };
    let pixels = match (colortype, data) {
        (ColorType::Gray(1), DecodingResult::U8(v)) if v.len() >= uw.div_ceil(8) * uh => {
            Pixels::Bilevel(unpack_bilevel(&v, uw, uh))
        }
        (ColorType::Gray(8), DecodingResult::U8(v)) => Pixels::L(v),
        (ColorType::Gray(16), DecodingResult::U16(v)) => Pixels::I16(v),
        (
            ColorType::Multiband {
                bit_depth: 8,
                num_samples: 2,
            },
            DecodingResult::U8(v),
        ) => Pixels::La(v),
        (ColorType::RGB(8), DecodingResult::U8(v)) => Pixels::Rgb(v),
        (ColorType::RGB(16), DecodingResult::U16(v)) => Pixels::Rgb(high(v)),
        (ColorType::RGBA(8), DecodingResult::U8(mut v)) => {
            if associated {
                unpremultiply_rgba(&mut v);
            }
            Pixels::Rgba(v)
        }
        (ColorType::RGBA(16), DecodingResult::U16(v)) => {
            let mut v = high(v);
            if associated {
                unpremultiply_rgba(&mut v);
            }
            Pixels::Rgba(v)
        }
        (ColorType::CMYK(8), DecodingResult::U8(v)) => Pixels::Cmyk(v),
        (ct, _) => return Err(src.unsupported(format!("TIFF colour type {ct:?}"))),
    };
    Ok(Decoded {
        image: image(src, w, h, pixels)?,
        orientation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilevel_rows_are_byte_padded() {
        assert_eq!(
            unpack_bilevel(&[0b1010_0000, 0b0100_0000], 3, 2),
            vec![255, 0, 255, 0, 255, 0]
        );
    }

    #[test]
    fn associated_alpha_is_divided_out() {
        let mut v = vec![100, 50, 25, 128, 9, 9, 9, 0, 1, 2, 3, 255];
        unpremultiply_rgba(&mut v);
        assert_eq!(v, vec![199, 99, 49, 128, 0, 0, 0, 0, 1, 2, 3, 255]);
    }
}
