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

use crate::error::{ImageError, ImageFormat, Source};
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
    /// Files larger than this are refused before they are read (default 1 GiB: a 100-megapixel
    /// uncompressed TIFF is 300 MB).
    pub max_file_bytes: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            apply_exif_orientation: false,
            max_pixels: 2 * PILLOW_MAX_IMAGE_PIXELS,
            jpeg_min_side: None,
            max_file_bytes: 1 << 30,
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
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else if bytes.starts_with(b"BM") {
        Some(ImageFormat::Bmp)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|m| bytes.starts_with(*m))
    {
        Some(ImageFormat::Tiff)
    } else {
        None
    }
}

/// Reads and decodes a file. Errors name the path.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<DecodedImage, ImageError> {
    let name = path.display().to_string();
    let bytes = read_file(path, &name, opts.max_file_bytes)?;
    decode_bytes(&bytes, &name, opts)
}

/// The bytes of a regular file of at most `limit` bytes; anything else is refused before a
/// byte is read (a FIFO would block, a device never end). `name` names it in errors.
pub fn read_file(path: &Path, name: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
    use std::io::Read;
    let io = |source| ImageError::Io {
        name: name.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ImageError::NotAFile {
            name: name.to_owned(),
            kind: file_kind(&kind),
        });
    }
    if meta.len() > limit {
        return Err(ImageError::FileTooLarge {
            name: name.to_owned(),
            bytes: meta.len(),
            limit,
        });
    }
    // The size can change between the check and the read: never read past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ImageError::FileTooLarge {
            name: name.to_owned(),
            bytes: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// What a non-regular file is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

/// The `(width, height)` an in-memory image declares, read from its header (no pixel is
/// decoded): what a server weighs an image by before it decodes it. Errors as [`decode_bytes`]
/// would give them for the header, including a size over `opts.max_pixels`.
pub fn probe(bytes: &[u8], name: &str, opts: &DecodeOptions) -> Result<(u32, u32), ImageError> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    // Every decoder checks the declared size (`Source::check_size`) before it allocates pixels;
    // with a pixel limit of 0 that check refuses every image, reporting the size it read.
    let header_only = DecodeOptions {
        max_pixels: 0,
        ..*opts
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        decode_unguarded(bytes, name, &header_only)
    }))
    .unwrap_or_else(|_| {
        Err(ImageError::Crashed {
            name: name.to_owned(),
        })
    });
    match result {
        Err(ImageError::DecompressionBomb { width, height, .. }) => {
            let pixels = width.saturating_mul(height);
            if pixels > opts.max_pixels {
                return Err(ImageError::DecompressionBomb {
                    name: name.to_owned(),
                    width,
                    height,
                    pixels: pixels as f64,
                    limit: opts.max_pixels,
                });
            }
            Ok((
                u32::try_from(width).unwrap_or(u32::MAX),
                u32::try_from(height).unwrap_or(u32::MAX),
            ))
        }
        Err(other) => Err(other),
        // Not reached (a limit of 0 refuses every size), but a decoded image knows its size.
        Ok(image) => Ok((image.width(), image.height())),
    }
}

/// Decodes an in-memory file; `name` is used in error messages. A decoder panic on hostile
/// bytes is contained and reported as [`ImageError::Crashed`].
pub fn decode_bytes(
    bytes: &[u8],
    name: &str,
    opts: &DecodeOptions,
) -> Result<DecodedImage, ImageError> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, name, opts))).unwrap_or_else(|_| {
        Err(ImageError::Crashed {
            name: name.to_owned(),
        })
    })
}

fn decode_unguarded(
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
        return Err(ImageError::UnknownFormat {
            name: name.to_owned(),
        });
    };
    let src = Source { name, format };
    let decoded = match format {
        ImageFormat::Png => png::decode(bytes, src, opts)?,
        ImageFormat::Jpeg => jpeg::decode(bytes, src, opts)?,
        ImageFormat::Gif => gif::decode(bytes, src, opts)?,
        ImageFormat::WebP => webp::decode(bytes, src, opts)?,
        ImageFormat::Bmp => bmp::decode(bytes, src, opts)?,
        ImageFormat::Tiff => tiff::decode(bytes, src, opts)?,
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
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a"), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::WebP));
        assert_eq!(sniff(b"BM\0\0"), Some(ImageFormat::Bmp));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(ImageFormat::Tiff));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
    }

    #[test]
    fn empty_and_unknown_inputs_are_named() {
        let e = decode_bytes(b"", "x.jpg", &DecodeOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "x.jpg: empty file");
        let e = decode_bytes(b"hello world", "y.png", &DecodeOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "y.png: not an image (unrecognised format)");
    }

    #[test]
    fn probe_reads_the_size_without_decoding() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/images");
        let opts = DecodeOptions::default();
        for (name, size) in [
            ("good/chelsea_small.bmp", (200, 133)),
            ("good/tiny_7x5.png", (7, 5)),
            ("good/camera_gray.jpg", (512, 512)),
            ("good/logo_lossless.webp", (0, 0)),
            ("good/coffee_lzw.tiff", (0, 0)),
            ("good/chelsea_animated.gif", (0, 0)),
        ] {
            let bytes = std::fs::read(fixtures.join(name)).unwrap();
            let decoded = decode_bytes(&bytes, name, &opts).unwrap();
            let want = (decoded.width(), decoded.height());
            if size != (0, 0) {
                assert_eq!(want, size, "{name}");
            }
            assert_eq!(probe(&bytes, name, &opts).unwrap(), want, "{name}");
        }
        let bomb = std::fs::read(fixtures.join("bad/bomb_60000x60000.png")).unwrap();
        let e = probe(&bomb, "bomb.png", &opts).unwrap_err();
        assert!(
            matches!(e, ImageError::DecompressionBomb { width: 60000, .. }),
            "{e}"
        );
        let small = DecodeOptions {
            max_pixels: 100,
            ..opts
        };
        let png = std::fs::read(fixtures.join("good/chelsea_small.bmp")).unwrap();
        assert!(matches!(
            probe(&png, "x", &small).unwrap_err(),
            ImageError::DecompressionBomb { .. }
        ));
        assert!(matches!(
            probe(b"hello", "y", &opts).unwrap_err(),
            ImageError::UnknownFormat { .. }
        ));
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let opts = DecodeOptions::default();
        let e = decode_file(Path::new("/dev/zero"), &opts).unwrap_err();
        assert_eq!(e.to_string(), "/dev/zero: not a regular file (a device)");
        let dir = std::env::temp_dir().join(format!("clip-image-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = decode_file(&dir, &opts).unwrap_err();
        assert!(
            e.to_string().ends_with("not a regular file (a folder)"),
            "{e}"
        );
        let file = dir.join("big.png");
        std::fs::write(&file, [0u8; 100]).unwrap();
        let small = DecodeOptions {
            max_file_bytes: 99,
            ..opts
        };
        let e = decode_file(&file, &small).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("file of 100 bytes exceeds the limit of 99 bytes"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
