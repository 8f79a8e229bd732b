//! EXIF orientation: reading tag 0x0112 from a TIFF-structured EXIF block and applying it as
//! `PIL.ImageOps.exif_transpose` would. The reference never applies it; this is opt-in
//! ([`crate::DecodeOptions::apply_exif_orientation`]).

use crate::image::{DecodedImage, Pixels};

const ORIENTATION_TAG: u16 = 0x0112;

/// The orientation (1..=8) stored in IFD0 of a TIFF-structured block (`II*\0` or `MM\0*`), as
/// found after the `Exif\0\0` prefix of a JPEG APP1 segment, in a PNG `eXIf` chunk or a WebP `EXIF`
/// chunk. Malformed blocks give `None`: orientation is best effort and never fails a decode.
pub(crate) fn orientation(tiff: &[u8]) -> Option<u16> {
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    let little = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |o: usize| {
        let b = [*tiff.get(o)?, *tiff.get(o + 1)?];
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |o: usize| {
        let b: [u8; 4] = tiff.get(o..o + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count).find_map(|i| {
        let entry = ifd + 2 + 12 * i;
        if u16_at(entry)? != ORIENTATION_TAG {
            return None;
        }
        // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
        let value = u16_at(entry + 8)?;
        (1..=8).contains(&value).then_some(value)
    })
}

/// Maps output pixel `(x, y)` of the reoriented image to its source pixel, for an image of
/// `w x h` (before reorientation). Orientation 2..=8 as `ImageOps.exif_transpose`: 2 mirror,
/// 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
fn source_of(o: u16, w: usize, h: usize, x: usize, y: usize) -> (usize, usize) {
    match o {
        2 => (w - 1 - x, y),
        3 => (w - 1 - x, h - 1 - y),
        4 => (x, h - 1 - y),
        5 => (y, x),
        6 => (y, h - 1 - x),
        7 => (w - 1 - y, h - 1 - x),
        8 => (w - 1 - y, x),
        _ => (x, y),
    }
}

fn reorient<T: Copy>(data: &[T], channels: usize, w: usize, h: usize, o: u16) -> Vec<T> {
    let (nw, nh) = if o >= 5 { (h, w) } else { (w, h) };
    let mut out = Vec::with_capacity(data.len());
    for y in 0..nh {
        for x in 0..nw {
            let (sx, sy) = source_of(o, w, h, x, y);
            let i = (sy * w + sx) * channels;
            out.extend_from_slice(&data[i..i + channels]);
        }
    }
    out
}

/// Applies an EXIF orientation to a decoded image (1 or unknown values leave it unchanged).
pub(crate) fn apply(img: DecodedImage, o: u16) -> DecodedImage {
    if !(2..=8).contains(&o) {
        return img;
    }
    let (w, h) = (img.width(), img.height());
    let (uw, uh) = (w as usize, h as usize);
    let (nw, nh) = if o >= 5 { (h, w) } else { (w, h) };
    let c = img.mode().channels();
    let alpha = img.palette_alpha().map(<[u8]>::to_vec);
    let pixels = match img.into_pixels() {
        Pixels::Rgb(v) => Pixels::Rgb(reorient(&v, c, uw, uh, o)),
        Pixels::Rgba(v) => Pixels::Rgba(reorient(&v, c, uw, uh, o)),
        Pixels::L(v) => Pixels::L(reorient(&v, c, uw, uh, o)),
        Pixels::La(v) => Pixels::La(reorient(&v, c, uw, uh, o)),
        Pixels::Bilevel(v) => Pixels::Bilevel(reorient(&v, c, uw, uh, o)),
        Pixels::Cmyk(v) => Pixels::Cmyk(reorient(&v, c, uw, uh, o)),
        Pixels::I16(v) => Pixels::I16(reorient(&v, c, uw, uh, o)),
        Pixels::Palette { indices, palette } => Pixels::Palette {
            indices: reorient(&indices, 1, uw, uh, o),
            palette,
        },
    };
    let out = DecodedImage::new(nw, nh, pixels).expect("reorientation keeps the sample count");
    match alpha {
        Some(a) => out.with_palette_alpha(a),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif_with_orientation(little: bool, value: u16) -> Vec<u8> {
        let mut t = Vec::new();
        let p16 = |t: &mut Vec<u8>, v: u16| {
            t.extend(if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            })
        };
        let p32 = |t: &mut Vec<u8>, v: u32| {
            t.extend(if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            })
        };
        t.extend_from_slice(if little { b"II*\0" } else { b"MM\0*" });
        p32(&mut t, 8);
        p16(&mut t, 2);
        // An unrelated tag first, then Orientation.
        p16(&mut t, 0x010F);
        p16(&mut t, 2);
        p32(&mut t, 4);
        t.extend_from_slice(b"abc\0");
        p16(&mut t, ORIENTATION_TAG);
        p16(&mut t, 3);
        p32(&mut t, 1);
        p16(&mut t, value);
        p16(&mut t, 0);
        p32(&mut t, 0);
        t
    }

    #[test]
    fn reads_orientation_in_both_byte_orders() {
        assert_eq!(orientation(&exif_with_orientation(true, 6)), Some(6));
        assert_eq!(orientation(&exif_with_orientation(false, 8)), Some(8));
        let mut prefixed = b"Exif\0\0".to_vec();
        prefixed.extend(exif_with_orientation(false, 3));
        assert_eq!(orientation(&prefixed), Some(3));
        assert_eq!(orientation(&exif_with_orientation(true, 9)), None);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), None);
        assert_eq!(orientation(b""), None);
    }

    #[test]
    fn transposes_like_pillow() {
        // 3x2 image, values 0..6 row-major:  0 1 2 / 3 4 5
        let img = DecodedImage::new(3, 2, Pixels::L((0..6).collect())).unwrap();
        let get = |o: u16| {
            let r = apply(img.clone(), o);
            let Pixels::L(v) = r.pixels() else {
                unreachable!()
            };
            (r.width(), r.height(), v.clone())
        };
        assert_eq!(get(1), (3, 2, vec![0, 1, 2, 3, 4, 5]));
        assert_eq!(get(2), (3, 2, vec![2, 1, 0, 5, 4, 3]));
        assert_eq!(get(3), (3, 2, vec![5, 4, 3, 2, 1, 0]));
        assert_eq!(get(4), (3, 2, vec![3, 4, 5, 0, 1, 2]));
        assert_eq!(get(5), (2, 3, vec![0, 3, 1, 4, 2, 5]));
        // Rotate 90 clockwise: the left column read bottom-up becomes the top row.
        assert_eq!(get(6), (2, 3, vec![3, 0, 4, 1, 5, 2]));
        assert_eq!(get(7), (2, 3, vec![5, 2, 4, 1, 3, 0]));
        assert_eq!(get(8), (2, 3, vec![2, 5, 1, 4, 0, 3]));
    }
}
