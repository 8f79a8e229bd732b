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
        indices: Vec<u8>,
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
    Rgb,
    Rgba,
    L,
    La,
    P,
    Bilevel,
    I16,
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
    #[error("image dimensions must be at least 1x1, got {width}x{height}")]
    ZeroSize { width: u32, height: u32 },
    #[error("{mode} image of {width}x{height} needs {expected} samples, got {actual}")]
    Length {
        mode: Mode,
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
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
}

impl DecodedImage {
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
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn mode(&self) -> Mode {
        self.pixels.mode()
    }

    pub fn pixels(&self) -> &Pixels {
        &self.pixels
    }

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
