//! WebP through libwebp 1.6.0 (the `libwebp-sys` vendored build), called exactly as Pillow's
//! `_webp.c` does: `WebPAnimDecoder` with default options (RGBA output, fancy upsampling), first
//! frame, mode `RGBA` when the bitstream has alpha and `RGB` otherwise. Lossy files therefore get
//! libwebp's own YUV->RGB conversion, identical to the reference.

use libwebp_sys as ffi;

use super::{image, DecodeOptions, Decoded};
use crate::error::{ImageError, Source};
use crate::exif;
use crate::image::Pixels;

/// Owns a `WebPAnimDecoder`.
struct AnimDecoder(*mut ffi::WebPAnimDecoder);

impl Drop for AnimDecoder {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `WebPAnimDecoderNew` and is deleted only here, once;
        // libwebp accepts null (a decoder that could not be created).
        unsafe { ffi::WebPAnimDecoderDelete(self.0) }
    }
}

/// The payload of the first RIFF chunk named `fourcc` after the `WEBP` header.
fn riff_chunk<'a>(bytes: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = bytes.get(pos + 8..(pos + 8).checked_add(len)?)?;
        if &bytes[pos..pos + 4] == fourcc {
            return Some(body);
        }
        pos += 8 + len + (len & 1);
    }
    None
}

pub(crate) fn decode(
    bytes: &[u8],
    src: Source,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    // SAFETY: `WebPBitstreamFeatures` is a C struct of integers, valid when all-zero.
    let mut features: ffi::WebPBitstreamFeatures = unsafe { std::mem::zeroed() };
    // SAFETY: libwebp reads at most `bytes.len()` bytes of the live slice and writes only into
    // `features`, a valid exclusive borrow.
    let status = unsafe { ffi::WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut features) };
    match status {
        ffi::VP8StatusCode::VP8_STATUS_OK => {}
        ffi::VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => {
            return Err(src.truncated("header is incomplete"))
        }
        other => return Err(src.corrupt(format!("bitstream rejected by libwebp ({other:?})"))),
    }
    src.check_size(
        features.width.max(0) as u64,
        features.height.max(0) as u64,
        opts.max_pixels,
    )?;

    let data = ffi::WebPData {
        bytes: bytes.as_ptr(),
        size: bytes.len(),
    };
    // SAFETY: `data` describes `bytes`, which the decoder references without copying: `bytes`
    // outlives `dec` (dropped below, before returning). Null options mean libwebp's defaults
    // (RGBA output), as Pillow uses them.
    let dec = AnimDecoder(unsafe { ffi::WebPAnimDecoderNew(&data, std::ptr::null()) });
    if dec.0.is_null() {
        return Err(src.corrupt("libwebp could not create a decoder (malformed container)"));
    }
    let mut info = ffi::WebPAnimInfo::default();
    // SAFETY: `dec.0` is a live decoder (non-null, checked); `info` is a valid out-parameter.
    if unsafe { ffi::WebPAnimDecoderGetInfo(dec.0, &mut info) } == 0 {
        return Err(src.corrupt("libwebp could not read the image info"));
    }
    let (w, h) = (info.canvas_width, info.canvas_height);
    src.check_size(u64::from(w), u64::from(h), opts.max_pixels)?;
    let mut buf: *mut u8 = std::ptr::null_mut();
    let mut timestamp = 0;
    // SAFETY: `dec.0` is a live decoder; `buf` and `timestamp` are valid out-parameters.
    if unsafe { ffi::WebPAnimDecoderGetNext(dec.0, &mut buf, &mut timestamp) } == 0 || buf.is_null()
    {
        return Err(
            src.corrupt("libwebp failed to decode the first frame (damaged or truncated data)")
        );
    }
    // SAFETY: `buf` (non-null, checked) is the decoder's RGBA canvas, `canvas_width * 4 *
    // canvas_height` bytes (libwebp's contract for `WebPAnimDecoderGetNext` in RGBA mode), owned by
    // the decoder and valid until the next call on it; `rgba` is copied out before `dec` is
    // dropped. The decoder allocated exactly this many bytes, so the product fits `usize`.
    let rgba = unsafe { std::slice::from_raw_parts(buf, w as usize * h as usize * 4) };
    let pixels = if features.has_alpha != 0 {
        Pixels::Rgba(rgba.to_vec())
    } else {
        Pixels::Rgb(
            rgba.chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        )
    };
    drop(dec);
    let orientation = if opts.apply_exif_orientation {
        riff_chunk(bytes, b"EXIF").and_then(exif::orientation)
    } else {
        None
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
    fn finds_riff_chunks() {
        let mut f = b"RIFF\0\0\0\0WEBP".to_vec();
        f.extend(b"VP8X\x03\0\0\0abc\0");
        f.extend(b"EXIF\x02\0\0\0xy");
        assert_eq!(riff_chunk(&f, b"EXIF"), Some(&b"xy"[..]));
        assert_eq!(riff_chunk(&f, b"ICCP"), None);
        f.extend(b"XMP \xff\0\0\0");
        assert_eq!(riff_chunk(&f, b"XMP "), None);
    }
}
