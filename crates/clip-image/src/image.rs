//! A decoded image in its Pillow mode.
//!
//! The reference resizes differently per mode (bicubic per band, premultiplied alpha, nearest for
//! palette and bilevel, a 16-bit path for `I;16`), so decoders must keep the file's own mode rather
//! than expanding everything to RGB.

use std::fmt;

/// Samples of one image, row-major, interleaved, in one of Pillow's modes.
#[derive(Clone, PartialEq, Eq)]
pub enum Pixels {
    /// Mode `RGB`: 3 bytes per pixel.
    Rgb(Vec<u8>),
    /// Mode `RGBA`: 4 bytes per pixel, straight (not premultiplied) alpha.
    Rgba(Vec<u8>),
    /// Mode `L`: 1 byte per pixel.
    L(Vec<u8>),
    /// Mode `LA`: 2 bytes per pixel, straight alpha.
    La(Vec<u8>),
    /// Mode `P`: one palette index per pixel. Indices past the end of `palette` read as black, as
    /// Pillow's zero-initialised 256-entry palette does.
    Palette {
        /// One index per pixel, kept as stored: Pillow resizes `P` images by index (nearest).
        indices: Vec<u8>,
        /// RGB entries, at most 256; looked up only by `convert("RGB")`, after the resize.
        palette: Vec<[u8; 3]>,
    },
    /// Mode `1`: one byte per pixel, 0 is black and any other value white (Pillow stores 0/255).
    Bilevel(Vec<u8>),
    /// Mode `I;16`: one unsigned 16-bit sample per pixel.
    I16(Vec<u16>),
    /// Mode `CMYK`: 4 bytes per pixel, 0 = no ink (Adobe JPEG inversion already undone).
    Cmyk(Vec<u8>),
}

/// Pillow's name of each mode, for messages and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `RGB`, see [`Pixels::Rgb`].
    Rgb,
    /// `RGBA`, see [`Pixels::Rgba`].
    Rgba,
    /// `L`, see [`Pixels::L`].
    L,
    /// `LA`, see [`Pixels::La`].
    La,
    /// `P`, see [`Pixels::Palette`].
    P,
    /// `1`, see [`Pixels::Bilevel`].
    Bilevel,
    /// `I;16`, see [`Pixels::I16`].
    I16,
    /// `CMYK`, see [`Pixels::Cmyk`].
    Cmyk,
}

impl Mode {
    /// The mode string Pillow reports (`Image.mode`).
    pub fn pillow_name(self) -> &'static str {
        match self {
            Mode::Rgb => "RGB",
            Mode::Rgba => "RGBA",
            Mode::L => "L",
            Mode::La => "LA",
            Mode::P => "P",
            Mode::Bilevel => "1",
            Mode::I16 => "I;16",
            Mode::Cmyk => "CMYK",
        }
    }

    /// Samples per pixel in the interleaved buffer.
    pub fn channels(self) -> usize {
        match self {
            Mode::L | Mode::P | Mode::Bilevel | Mode::I16 => 1,
            Mode::La => 2,
            Mode::Rgb => 3,
            Mode::Rgba | Mode::Cmyk => 4,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pillow_name())
    }
}

impl Pixels {
    /// The Pillow mode these samples are in.
    pub fn mode(&self) -> Mode {
        match self {
            Pixels::Rgb(_) => Mode::Rgb,
            Pixels::Rgba(_) => Mode::Rgba,
            Pixels::L(_) => Mode::L,
            Pixels::La(_) => Mode::La,
            Pixels::Palette { .. } => Mode::P,
            Pixels::Bilevel(_) => Mode::Bilevel,
            Pixels::I16(_) => Mode::I16,
            Pixels::Cmyk(_) => Mode::Cmyk,
        }
    }

    /// Number of samples in the buffer.
    fn len(&self) -> usize {
        match self {
            Pixels::Rgb(v)
            | Pixels::Rgba(v)
            | Pixels::L(v)
            | Pixels::La(v)
            | Pixels::Bilevel(v)
            | Pixels::Cmyk(v) => v.len(),
            Pixels::Palette { indices, .. } => indices.len(),
            Pixels::I16(v) => v.len(),
        }
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pixels::{}({} samples)", self.mode(), self.len())
    }
}

/// Why [`DecodedImage::new`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PixelsError {
    /// A side is 0: Pillow cannot open such a file, and the resize would divide by it.
    #[error("image dimensions must be at least 1x1, got {width}x{height}")]
    ZeroSize {
        /// The width given.
        width: u32,
        /// The height given.
        height: u32,
    },
    /// The buffer does not hold `width * height * channels` samples.
    #[error("{mode} image of {width}x{height} needs {expected} samples, got {actual}")]
    Length {
        /// The mode of the samples given.
        mode: Mode,
        /// The width given.
        width: u32,
        /// The height given.
        height: u32,
        /// Samples that size needs (`usize::MAX` when it overflows).
        expected: usize,
        /// Samples given.
        actual: usize,
    },
    /// A palette longer than an 8-bit index can reach.
    #[error("palette has {0} entries; at most 256 are allowed")]
    PaletteTooLong(usize),
}

/// A decoded image: size plus samples in its Pillow mode. The constructor guarantees that the
/// buffer length matches the size, so the resampler never indexes out of bounds.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedImage {
    width: u32,
    height: u32,
    pixels: Pixels,
    palette_alpha: Option<Vec<u8>>,
}

impl DecodedImage {
    /// Checks that `pixels` holds exactly `width x height` pixels of its mode (and at most 256
    /// palette entries), so that no later step needs to check bounds.
    pub fn new(width: u32, height: u32, pixels: Pixels) -> Result<Self, PixelsError> {
        if width == 0 || height == 0 {
            return Err(PixelsError::ZeroSize { width, height });
        }
        let mode = pixels.mode();
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(mode.channels()))
            .unwrap_or(usize::MAX);
        if pixels.len() != expected {
            return Err(PixelsError::Length {
                mode,
                width,
                height,
                expected,
                actual: pixels.len(),
            });
        }
        if let Pixels::Palette { palette, .. } = &pixels {
            if palette.len() > 256 {
                return Err(PixelsError::PaletteTooLong(palette.len()));
            }
        }
        Ok(Self {
            width,
            height,
            pixels,
            palette_alpha: None,
        })
    }

    /// Attaches a palette image's transparency (PNG `tRNS`, Pillow's `info["transparency"]`): the
    /// alpha of each palette entry in index order; entries past the end are opaque, as after
    /// Pillow's `putpalettealphas`. CLIP's own transform ignores it (`convert("RGB")` drops
    /// transparency), but transforms that composite onto white before resizing need it. Ignored
    /// (dropped) for modes other than `P`; at most 256 values are kept.
    pub fn with_palette_alpha(mut self, mut alpha: Vec<u8>) -> Self {
        if matches!(self.pixels, Pixels::Palette { .. }) {
            alpha.truncate(256);
            self.palette_alpha = Some(alpha);
        }
        self
    }

    /// The palette transparency attached by [`with_palette_alpha`](Self::with_palette_alpha).
    pub fn palette_alpha(&self) -> Option<&[u8]> {
        self.palette_alpha.as_deref()
    }

    /// Width in pixels (at least 1).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels (at least 1).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The Pillow mode of the samples.
    pub fn mode(&self) -> Mode {
        self.pixels.mode()
    }

    /// The samples, row-major and interleaved.
    pub fn pixels(&self) -> &Pixels {
        &self.pixels
    }

    /// The samples, without copying them.
    pub fn into_pixels(self) -> Pixels {
        self.pixels
    }
}

impl fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DecodedImage({}x{} {})",
            self.width,
            self.height,
            self.mode()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_checks_lengths() {
        assert!(DecodedImage::new(2, 2, Pixels::Rgb(vec![0; 12])).is_ok());
        let err = DecodedImage::new(2, 2, Pixels::Rgb(vec![0; 11])).unwrap_err();
        assert_eq!(err.to_string(), "RGB image of 2x2 needs 12 samples, got 11");
        assert!(matches!(
            DecodedImage::new(0, 2, Pixels::L(vec![])),
            Err(PixelsError::ZeroSize { .. })
        ));
        let p = Pixels::Palette {
            indices: vec![0; 4],
            palette: vec![[0; 3]; 257],
        };
        assert_eq!(
            DecodedImage::new(2, 2, p),
            Err(PixelsError::PaletteTooLong(257))
        );
        assert!(DecodedImage::new(1, 1, Pixels::I16(vec![7])).is_ok());
    }
}
