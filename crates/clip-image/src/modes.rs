//! Pillow's mode conversions that the reference transform goes through (`Convert.c`):
//! premultiplying alpha around a resize, `convert("RGB")` for every mode, and compositing onto
//! white (`alpha_composite`) for transforms that drop transparency that way.

use crate::image::Pixels;

/// `MULDIV255(a, b)`: `round(a * b / 255)` in Pillow's integer form.
#[inline(always)]
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// `RGBA -> RGBa` / `LA -> La` (`rgbA2rgba`, `lA2la`): colour bands times alpha, alpha last.
/// Pillow resizes RGBA and LA images in this premultiplied form.
pub(crate) fn premultiply(data: &[u8], channels: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    for px in out.chunks_exact_mut(channels) {
        let (colour, alpha) = px.split_at_mut(channels - 1);
        for c in colour {
            *c = muldiv255(*c, alpha[0]);
        }
    }
    out
}

/// `RGBa -> RGBA` / `La -> LA` (`rgba2rgbA`, `la2lA`): alpha 0 or 255 keeps the colour, otherwise
/// `min(255, 255 * c / a)` with integer division. Fully transparent pixels stay as resampled
/// (usually black), which is why a resized transparent background turns black in the reference.
pub(crate) fn unpremultiply(data: &mut [u8], channels: usize) {
    for px in data.chunks_exact_mut(channels) {
        let (colour, alpha) = px.split_at_mut(channels - 1);
        let a = u32::from(alpha[0]);
        if a == 0 || a == 255 {
            continue;
        }
        for c in colour {
            *c = (255 * u32::from(*c) / a).min(255) as u8;
        }
    }
}

/// Calls `put(i, [r, g, b])` for every pixel `i` of `convert("RGB")` applied to `pixels`.
fn for_each_rgb(pixels: &Pixels, mut put: impl FnMut(usize, [u8; 3])) {
    let mode = pixels.mode();
    match pixels {
        Pixels::Rgb(v) | Pixels::Rgba(v) => {
            for (i, px) in v.chunks_exact(mode.channels()).enumerate() {
                put(i, [px[0], px[1], px[2]]);
            }
        }
        Pixels::L(v) | Pixels::La(v) => {
            for (i, px) in v.chunks_exact(mode.channels()).enumerate() {
                put(i, [px[0]; 3]);
            }
        }
        Pixels::Bilevel(v) => {
            for (i, &x) in v.iter().enumerate() {
                put(i, [if x != 0 { 255 } else { 0 }; 3]);
            }
        }
        Pixels::Palette { indices, palette } => {
            for (i, &x) in indices.iter().enumerate() {
                put(i, palette.get(usize::from(x)).copied().unwrap_or([0; 3]));
            }
        }
        Pixels::Cmyk(v) => {
            // cmyk2rgb: nk = 255 - K; each channel nk - MULDIV255(c, nk), clipped at 0.
            for (i, px) in v.chunks_exact(4).enumerate() {
                let nk = 255 - px[3];
                let ch = |c: u8| nk.saturating_sub(muldiv255(c, nk));
                put(i, [ch(px[0]), ch(px[1]), ch(px[2])]);
            }
        }
        Pixels::I16(v) => {
            // I16_RGB: values above 255 saturate to 255, so an ordinary 16-bit photo becomes almost
            // white. That is the reference's behaviour, reproduced on purpose.
            for (i, &x) in v.iter().enumerate() {
                put(i, [x.min(255) as u8; 3]);
            }
        }
    }
}

/// Number of pixels in a buffer.
fn pixel_count(pixels: &Pixels) -> usize {
    match pixels {
        Pixels::Rgb(v)
        | Pixels::Rgba(v)
        | Pixels::L(v)
        | Pixels::La(v)
        | Pixels::Bilevel(v)
        | Pixels::Cmyk(v) => v.len() / pixels.mode().channels(),
        Pixels::Palette { indices, .. } => indices.len(),
        Pixels::I16(v) => v.len(),
    }
}

/// `convert("RGB")` of a whole pixel buffer, written as planar CHW (`[R plane, G plane, B plane]`),
/// the layout `ToTensor` produces. Alpha is dropped, never composited; palette transparency is
/// ignored, as Pillow does.
pub(crate) fn to_rgb_planar(pixels: &Pixels) -> Vec<u8> {
    let n = pixel_count(pixels);
    let mut out = vec![0u8; 3 * n];
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for_each_rgb(pixels, |i, rgb| {
        r[i] = rgb[0];
        g[i] = rgb[1];
        b[i] = rgb[2];
    });
    out
}

/// `convert("RGB")` of a whole pixel buffer, interleaved (mode `RGB`).
pub(crate) fn to_rgb_interleaved(pixels: &Pixels) -> Vec<u8> {
    let mut out = vec![0u8; 3 * pixel_count(pixels)];
    for_each_rgb(pixels, |i, rgb| out[3 * i..3 * i + 3].copy_from_slice(&rgb));
    out
}

/// `Image.alpha_composite(white, src)` for one straight-alpha colour sample over an opaque white
/// background (`AlphaComposite.c`, 7 extra bits of precision, divisions by 255 rounded by
/// `SHIFTFORDIV255`). A transparent pixel becomes white; an opaque one keeps its colour.
#[inline]
pub(crate) fn over_white(c: u8, a: u8) -> u8 {
    const PRECISION_BITS: u32 = 7;
    if a == 0 {
        return 255;
    }
    let (c, a) = (u32::from(c), u32::from(a));
    let blend = 255 * (255 - a);
    let outa255 = a * 255 + blend;
    let coef1 = a * 255 * 255 * (1 << PRECISION_BITS) / outa255;
    let coef2 = 255 * (1 << PRECISION_BITS) - coef1;
    let tmp = c * coef1 + 255 * coef2 + (0x80 << PRECISION_BITS);
    ((((tmp >> 8) + tmp) >> 8) >> PRECISION_BITS) as u8
}

/// transformers' `convert_to_rgb` on a Pillow image, as interleaved RGB: an image with an alpha
/// band (`RGBA`, `LA`) or with palette transparency (`palette_alpha`) goes through
/// `convert("RGBA")` (`LA` becomes `(l, l, l, a)`, a palette entry takes its tRNS alpha, opaque
/// past the end), is composited over opaque white and converted to RGB; every other image is just
/// `convert("RGB")`.
pub(crate) fn to_rgb_on_white(pixels: &Pixels, palette_alpha: Option<&[u8]>) -> Vec<u8> {
    match (pixels, palette_alpha) {
        (Pixels::Rgba(v), _) => v
            .chunks_exact(4)
            .flat_map(|p| [0, 1, 2].map(|i| over_white(p[i], p[3])))
            .collect(),
        (Pixels::La(v), _) => v
            .chunks_exact(2)
            .flat_map(|p| [over_white(p[0], p[1]); 3])
            .collect(),
        (Pixels::Palette { indices, palette }, Some(alpha)) => {
            // One lookup table per palette index: the composited colour.
            let lut: Vec<[u8; 3]> = (0..256)
                .map(|i| {
                    let rgb = palette.get(i).copied().unwrap_or([0; 3]);
                    let a = alpha.get(i).copied().unwrap_or(255);
                    rgb.map(|c| over_white(c, a))
                })
                .collect();
            indices.iter().flat_map(|&x| lut[usize::from(x)]).collect()
        }
        _ => to_rgb_interleaved(pixels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muldiv255_rounds() {
        assert_eq!(muldiv255(255, 255), 255);
        assert_eq!(muldiv255(255, 0), 0);
        assert_eq!(muldiv255(128, 128), 64);
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let exact = (f64::from(a) * f64::from(b) / 255.0).round() as u8;
                assert_eq!(muldiv255(a, b), exact, "{a}*{b}");
            }
        }
    }

    #[test]
    fn premultiply_round_trip_keeps_opaque_and_transparent() {
        let px = vec![200, 100, 50, 255, 255, 255, 255, 0, 200, 100, 50, 128];
        let mut pm = premultiply(&px, 4);
        assert_eq!(&pm[..8], &[200, 100, 50, 255, 0, 0, 0, 0]);
        assert_eq!(&pm[8..], &[100, 50, 25, 128]);
        unpremultiply(&mut pm, 4);
        // Transparent white became black; half-transparent colours come back up to rounding.
        assert_eq!(&pm[..8], &[200, 100, 50, 255, 0, 0, 0, 0]);
        assert_eq!(&pm[8..], &[199, 99, 49, 128]);
    }

    #[test]
    fn compositing_over_white_follows_pillow() {
        // `Image.alpha_composite(white, RGBA(c, c, c, a))` with Pillow 13.0.0 (the formula was
        // checked against Pillow for all 65536 pairs).
        for (c, a, want) in [
            (0, 128, 127),
            (200, 1, 255),
            (10, 254, 11),
            (255, 37, 255),
            (77, 200, 115),
            (9, 0, 255),
            (9, 255, 9),
        ] {
            assert_eq!(over_white(c, a), want, "{c} over white at alpha {a}");
        }
    }

    #[test]
    fn convert_to_rgb_on_white_per_mode() {
        // transformers' convert_to_rgb on the same images, with Pillow 13.0.0.
        let rgba = Pixels::Rgba(vec![0, 0, 0, 128, 1, 2, 3, 255, 4, 5, 6, 0]);
        assert_eq!(
            to_rgb_on_white(&rgba, None),
            vec![127, 127, 127, 1, 2, 3, 255, 255, 255]
        );
        let la = Pixels::La(vec![50, 0, 50, 128, 50, 255]);
        assert_eq!(
            to_rgb_on_white(&la, None),
            vec![255, 255, 255, 152, 152, 152, 50, 50, 50]
        );
        // Palette transparency: entry 0 transparent, entry 1 half, entry 2 past the tRNS opaque.
        let p = Pixels::Palette {
            indices: vec![0, 1, 2],
            palette: vec![[10, 20, 30], [200, 100, 0], [5, 5, 5]],
        };
        assert_eq!(
            to_rgb_on_white(&p, Some(&[0, 128])),
            vec![255, 255, 255, 227, 177, 127, 5, 5, 5]
        );
        // Without transparency it is plain convert("RGB").
        assert_eq!(
            to_rgb_on_white(&p, None),
            vec![10, 20, 30, 200, 100, 0, 5, 5, 5]
        );
        assert_eq!(
            to_rgb_on_white(&Pixels::L(vec![7, 9]), None),
            vec![7, 7, 7, 9, 9, 9]
        );
        assert_eq!(
            to_rgb_interleaved(&Pixels::Cmyk(vec![255, 128, 0, 51])),
            vec![0, 102, 204]
        );
    }

    #[test]
    fn conversions_to_rgb() {
        assert_eq!(
            to_rgb_planar(&Pixels::La(vec![7, 0, 9, 255])),
            vec![7, 9, 7, 9, 7, 9]
        );
        assert_eq!(
            to_rgb_planar(&Pixels::Bilevel(vec![0, 255, 1])),
            vec![0, 255, 255, 0, 255, 255, 0, 255, 255]
        );
        let p = Pixels::Palette {
            indices: vec![1, 0, 9],
            palette: vec![[1, 2, 3], [4, 5, 6]],
        };
        assert_eq!(to_rgb_planar(&p), vec![4, 1, 0, 5, 2, 0, 6, 3, 0]);
        // CMYK: no ink is white, full K is black.
        assert_eq!(
            to_rgb_planar(&Pixels::Cmyk(vec![0, 0, 0, 0, 0, 0, 0, 255])),
            vec![255, 0, 255, 0, 255, 0]
        );
        assert_eq!(
            to_rgb_planar(&Pixels::Cmyk(vec![255, 128, 0, 51])),
            vec![0, 102, 204]
        );
        assert_eq!(
            to_rgb_planar(&Pixels::I16(vec![3, 256, 65535])),
            vec![3, 255, 255, 3, 255, 255, 3, 255, 255]
        );
        assert_eq!(
            to_rgb_planar(&Pixels::Rgba(vec![1, 2, 3, 0])),
            vec![1, 2, 3]
        );
    }
}
