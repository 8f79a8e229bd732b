//! Errors of decoding. Every variant names the input (a path or the caller's name for the bytes)
//! so that a failure inside a batch of thousands of photos says which file it was.

use std::fmt;

/// Container formats recognised by their magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
    Bmp,
    Tiff,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Gif => "GIF",
            Format::WebP => "WebP",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{name}: cannot read file: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: empty file")]
    Empty { name: String },
    #[error("{name}: unrecognised image format (first bytes: {magic})")]
    UnknownFormat { name: String, magic: String },
    #[error(
        "{name}: decompression bomb: {width}x{height} = {pixels:.3e} pixels exceeds limit of {limit} pixels"
    )]
    DecompressionBomb {
        name: String,
        width: u64,
        height: u64,
        pixels: f64,
        limit: u64,
    },
    #[error("{name}: truncated {format} file ({detail})")]
    Truncated {
        name: String,
        format: Format,
        detail: String,
    },
    #[error("{name}: invalid {format} file: {detail}")]
    Corrupt {
        name: String,
        format: Format,
        detail: String,
    },
    #[error("{name}: unsupported {format} variant: {detail}")]
    Unsupported {
        name: String,
        format: Format,
        detail: String,
    },
}

/// The input's name and format, carried by decoders to build errors tersely.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub name: &'a str,
    pub format: Format,
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
