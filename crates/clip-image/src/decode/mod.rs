//! Decoding files into [`DecodedImage`]s in the mode Pillow's `Image.open` gives them.
//!
//! The format is sniffed from the magic bytes, never from the file name (as Pillow does), and each
//! decoder checks the declared size against the decompression-bomb limit before allocating pixels.

mod bmp;
mod gif;
mod jpeg;
mod png;
mod tiff;
mod webp;

use std::path::Path;

use crate::error::{Format, ImageError, Source};
use crate::exif;
use crate::image::DecodedImage;

/// Pillow's `Image.MAX_IMAGE_PIXELS`; twice this raises `DecompressionBombError`.
pub const PILLOW_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// How to decode. `Default` is the reference's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Rotate/flip by the EXIF orientation tag (`ImageOps.exif_transpose`). The reference does
    /// not, so the default is `false`.
    pub apply_exif_orientation: bool,
    /// Images with more pixels than this are refused before any pixel buffer is allocated.
    /// Default: `2 * 89,478,485`, the size at which Pillow raises `DecompressionBombError`.
    pub max_pixels: u64,
    /// Opt-in fast path, **not the reference's pixels**: let libjpeg decode JPEGs at 1/2, 1/4 or
    /// 1/8 of their size in the DCT domain (the smallest scale whose shorter side is still at
    /// least this many pixels) before the exact resize. Decoding a 12-megapixel photo for a
    /// 224-pixel model then costs a fraction of the full decode. `None` (the default): full size.
    pub jpeg_min_side: Option<u32>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            apply_exif_orientation: false,
            max_pixels: 2 * PILLOW_MAX_IMAGE_PIXELS,
            jpeg_min_side: None,
        }
    }
}

/// What a format decoder returns: the image and, when asked for, its EXIF orientation.
pub(crate) struct Decoded {
    pub image: DecodedImage,
    pub orientation: Option<u16>,
}

impl Decoded {
    pub(crate) fn plain(image: DecodedImage) -> Self {
        Self {
            image,
            orientation: None,
        }
    }
}

/// The container format of `bytes`, by magic number (Pillow's `_accept` functions).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else if bytes.starts_with(b"BM") {
        Some(Format::Bmp)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|m| bytes.starts_with(*m))
    {
        Some(Format::Tiff)
    } else {
        None
    }
}

/// Reads and decodes a file. Errors name the path.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<DecodedImage, ImageError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        name: name.clone(),
        source,
    })?;
    decode_bytes(&bytes, &name, opts)
}

/// Decodes an in-memory file; `name` is used in error messages.
pub fn decode_bytes(
    bytes: &[u8],
    name: &str,
    opts: &DecodeOptions,
) -> Result<DecodedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty {
            name: name.to_owned(),
        });
    }
    let Some(format) = sniff(bytes) else {
        let magic: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(ImageError::UnknownFormat {
            name: name.to_owned(),
            magic: magic.join(" "),
        });
    };
    let src = Source { name, format };
    let decoded = match format {
        Format::Png => png::decode(bytes, src, opts)?,
        Format::Jpeg => jpeg::decode(bytes, src, opts)?,
        Format::Gif => gif::decode(bytes, src, opts)?,
        Format::WebP => webp::decode(bytes, src, opts)?,
        Format::Bmp => bmp::decode(bytes, src, opts)?,
        Format::Tiff => tiff::decode(bytes, src, opts)?,
    };
    Ok(match decoded.orientation {
        Some(o) if opts.apply_exif_orientation => exif::apply(decoded.image, o),
        _ => decoded.image,
    })
}

/// Builds the image, turning a size mismatch (a decoder bug or a lying file) into an error.
pub(crate) fn image(
    src: Source,
    width: u32,
    height: u32,
    pixels: crate::image::Pixels,
) -> Result<DecodedImage, ImageError> {
    DecodedImage::new(width, height, pixels).map_err(|e| src.corrupt(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some(Format::Jpeg));
        assert_eq!(sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(sniff(b"BM\0\0"), Some(Format::Bmp));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
    }

    #[test]
    fn empty_and_unknown_inputs_are_named() {
        let e = decode_bytes(b"", "x.jpg", &DecodeOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "x.jpg: empty file");
        let e = decode_bytes(b"hello world", "y.png", &DecodeOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "y.png: unrecognised image format (first bytes: 68 65 6c 6c 6f 20 77 6f)"
        );
    }
}
