//! Errors of decoding. Every variant names the input (a path or the caller's name for the bytes)
//! so that a failure inside a batch of thousands of photos says which file it was.

use std::fmt;

/// Container formats recognised by their magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// PNG (`\x89PNG`).
    Png,
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// GIF87a / GIF89a.
    Gif,
    /// WebP (`RIFF....WEBP`).
    WebP,
    /// Windows bitmap (`BM`).
    Bmp,
    /// TIFF (either byte order, classic or BigTIFF).
    Tiff,
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Gif => "GIF",
            ImageFormat::WebP => "WebP",
            ImageFormat::Bmp => "BMP",
            ImageFormat::Tiff => "TIFF",
        })
    }
}

/// Why an image could not be decoded. `name` is the path, or the caller's name for the bytes.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("{name}: cannot read file: {source}")]
    Io {
        /// The input.
        name: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The path is a folder, a FIFO, a device or a socket: only regular files are read (a FIFO
    /// would block forever, `/dev/zero` never ends).
    #[error("{name}: not a regular file ({kind})")]
    NotAFile {
        /// The input.
        name: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than [`crate::DecodeOptions::max_file_bytes`].
    #[error("{name}: file of {bytes} bytes exceeds the limit of {limit} bytes")]
    FileTooLarge {
        /// The input.
        name: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Zero bytes.
    #[error("{name}: empty file")]
    Empty {
        /// The input.
        name: String,
    },
    /// No known image signature. The bytes themselves are never echoed (they may be a secret
    /// file's first line).
    #[error("{name}: not an image (unrecognised format)")]
    UnknownFormat {
        /// The input.
        name: String,
    },
    /// The declared size is over the pixel limit: refused before any pixel buffer exists.
    #[error(
        "{name}: decompression bomb: {width}x{height} = {pixels:.3e} pixels exceeds limit of {limit} pixels"
    )]
    DecompressionBomb {
        /// The input.
        name: String,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// `width * height`.
        pixels: f64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The data ends before the image does.
    #[error("{name}: truncated {format} file ({detail})")]
    Truncated {
        /// The input.
        name: String,
        /// Its container format.
        format: ImageFormat,
        /// What was missing.
        detail: String,
    },
    /// The data breaks the format's rules.
    #[error("{name}: invalid {format} file: {detail}")]
    Corrupt {
        /// The input.
        name: String,
        /// Its container format.
        format: ImageFormat,
        /// The decoder's reason.
        detail: String,
    },
    /// A valid file using a feature the decoders do not implement.
    #[error("{name}: unsupported {format} variant: {detail}")]
    Unsupported {
        /// The input.
        name: String,
        /// Its container format.
        format: ImageFormat,
        /// Which feature.
        detail: String,
    },
    /// A decoder panicked on this input (a bug it should have reported as corruption); the
    /// panic was contained.
    #[error("{name}: the decoder crashed on this file")]
    Crashed {
        /// The input.
        name: String,
    },
}

/// The input's name and format, carried by decoders to build errors tersely.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub name: &'a str,
    pub format: ImageFormat,
}

impl Source<'_> {
    pub fn corrupt(&self, detail: impl fmt::Display) -> ImageError {
        ImageError::Corrupt {
            name: self.name.to_owned(),
            format: self.format,
            detail: detail.to_string(),
        }
    }

    pub fn truncated(&self, detail: impl fmt::Display) -> ImageError {
        ImageError::Truncated {
            name: self.name.to_owned(),
            format: self.format,
            detail: detail.to_string(),
        }
    }

    pub fn unsupported(&self, detail: impl fmt::Display) -> ImageError {
        ImageError::Unsupported {
            name: self.name.to_owned(),
            format: self.format,
            detail: detail.to_string(),
        }
    }

    /// Pillow's `_decompression_bomb_check`: refuse before any pixel buffer is allocated.
    pub fn check_size(&self, width: u64, height: u64, max_pixels: u64) -> Result<(), ImageError> {
        let pixels = width.saturating_mul(height);
        if pixels > max_pixels {
            return Err(ImageError::DecompressionBomb {
                name: self.name.to_owned(),
                width,
                height,
                pixels: pixels as f64,
                limit: max_pixels,
            });
        }
        if width == 0 || height == 0 {
            return Err(self.corrupt(format!("image size {width}x{height} has no pixels")));
        }
        Ok(())
    }
}
