//! The reference transform `clip.clip._transform(n_px)`:
//! `Resize(n_px, BICUBIC) -> CenterCrop(n_px) -> convert("RGB") -> ToTensor -> Normalize`,
//! with torchvision's size and crop arithmetic and Pillow's per-mode resize.

use crate::image::{DecodedImage, Pixels};
use crate::modes::{premultiply, to_rgb_planar, unpremultiply};
use crate::resample::{bicubic_window, crop_window, nearest_window, Window};

/// Per-channel mean and standard deviation of `Normalize`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    /// Subtracted from each channel (R, G, B) after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Each channel is divided by this after the mean is subtracted.
    pub std: [f32; 3],
}

impl Default for Normalization {
    /// CLIP's constants (`clip/clip.py`, `_transform`), written as the reference writes them;
    /// torch rounds them to f32 exactly as Rust does.
    #[allow(clippy::excessive_precision)]
    fn default() -> Self {
        Self {
            mean: [0.48145466, 0.4578275, 0.40821073],
            std: [0.26862954, 0.26130258, 0.27577711],
        }
    }
}

/// How an image becomes a model's input tensor. A model family describes its own preprocessing
/// (read from the checkpoint), so callers never pick constants themselves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Side of the square input (`n_px`).
    pub resolution: u32,
    /// Per-channel mean and standard deviation.
    pub normalization: Normalization,
}

impl Preprocess {
    /// CLIP's transform at `resolution`: resize the short side (bicubic), centre crop, RGB,
    /// normalise with CLIP's constants.
    pub fn clip(resolution: u32) -> Self {
        Self {
            resolution,
            normalization: Normalization::default(),
        }
    }

    /// The float32 tensor `[3, n, n]`, CHW ([`preprocess`]).
    pub fn apply(&self, img: &DecodedImage) -> Vec<f32> {
        preprocess(img, self.resolution, &self.normalization)
    }

    /// A stable text naming every parameter, for keys that must change when the pixels would.
    pub fn describe(&self) -> String {
        let n = &self.normalization;
        format!(
            "shortest-bicubic-centercrop {} mean {:?} std {:?}",
            self.resolution, n.mean, n.std
        )
    }
}

/// torchvision `Resize(n_px)` size rule: the short side becomes `n_px`, the long side
/// `int(n_px * long / short)` (float division, then truncation). Returns `(width, height)`.
pub fn resized_size(width: u32, height: u32, n_px: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (f64::from(n_px) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (n_px, new_long)
    } else {
        (new_long, n_px)
    }
}

/// Python's `int(round(d / 2.0))` for a non-negative integer `d`: halves go to the even neighbour.
fn half_round_even(d: u32) -> u32 {
    let q = d / 2;
    if d % 2 == 1 && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

/// torchvision `CenterCrop(n_px)` offsets `(top, left)` for a `width x height` image that is at
/// least `n_px` on both sides.
pub fn center_crop_offsets(width: u32, height: u32, n_px: u32) -> (u32, u32) {
    (
        half_round_even(height - n_px),
        half_round_even(width - n_px),
    )
}

/// `img.resize((out_w, out_h), BICUBIC)` as Pillow does it for the image's mode, but only the
/// rectangle `win` of the result.
fn resize_window(img: &DecodedImage, out: (usize, usize), win: Window) -> Pixels {
    let size = (img.width() as usize, img.height() as usize);
    match img.pixels() {
        Pixels::Rgb(v) => Pixels::Rgb(bicubic_window(v, 3, size, out, win)),
        Pixels::L(v) => Pixels::L(bicubic_window(v, 1, size, out, win)),
        Pixels::Cmyk(v) => Pixels::Cmyk(bicubic_window(v, 4, size, out, win)),
        Pixels::I16(v) => Pixels::I16(bicubic_window(v, 1, size, out, win)),
        Pixels::Rgba(v) => {
            let mut r = bicubic_window(&premultiply(v, 4), 4, size, out, win);
            unpremultiply(&mut r, 4);
            Pixels::Rgba(r)
        }
        Pixels::La(v) => {
            let mut r = bicubic_window(&premultiply(v, 2), 2, size, out, win);
            unpremultiply(&mut r, 2);
            Pixels::La(r)
        }
        // Pillow forces NEAREST for P and 1, whatever filter was asked for.
        Pixels::Palette { indices, palette } => Pixels::Palette {
            indices: nearest_window(indices, size, out, win),
            palette: palette.clone(),
        },
        Pixels::Bilevel(v) => Pixels::Bilevel(nearest_window(v, size, out, win)),
    }
}

/// The rectangle `win` of an image used at its own size (`Resize` returns it untouched).
fn crop_pixels(img: &DecodedImage, win: Window) -> Pixels {
    let w = img.width() as usize;
    match img.pixels() {
        Pixels::Rgb(v) => Pixels::Rgb(crop_window(v, 3, w, win)),
        Pixels::Rgba(v) => Pixels::Rgba(crop_window(v, 4, w, win)),
        Pixels::L(v) => Pixels::L(crop_window(v, 1, w, win)),
        Pixels::La(v) => Pixels::La(crop_window(v, 2, w, win)),
        Pixels::Cmyk(v) => Pixels::Cmyk(crop_window(v, 4, w, win)),
        Pixels::Bilevel(v) => Pixels::Bilevel(crop_window(v, 1, w, win)),
        Pixels::I16(v) => Pixels::I16(crop_window(v, 1, w, win)),
        Pixels::Palette { indices, palette } => Pixels::Palette {
            indices: crop_window(indices, 1, w, win),
            palette: palette.clone(),
        },
    }
}

/// The uint8 RGB crop that enters `ToTensor`: planar CHW `[3, n_px, n_px]`.
///
/// # Panics
/// If `n_px` is 0.
pub fn resize_crop_rgb(img: &DecodedImage, n_px: u32) -> Vec<u8> {
    assert!(n_px > 0, "n_px must be positive");
    let (w, h) = (img.width(), img.height());
    let (new_w, new_h) = resized_size(w, h, n_px);
    let (top, left) = center_crop_offsets(new_w, new_h, n_px);
    let n = n_px as usize;
    let win = Window {
        left: left as usize,
        top: top as usize,
        width: n,
        height: n,
    };
    let crop = if (new_w, new_h) == (w, h) {
        crop_pixels(img, win)
    } else {
        resize_window(img, (new_w as usize, new_h as usize), win)
    };
    to_rgb_planar(&crop)
}

/// The reference transform's float32 tensor, CHW `[3, n_px, n_px]`: `(u8 / 255 - mean) / std`,
/// each operation in f32 as torchvision computes it (so the values are bit-identical).
///
/// # Panics
/// If `n_px` is 0.
pub fn preprocess(img: &DecodedImage, n_px: u32, norm: &Normalization) -> Vec<f32> {
    let rgb = resize_crop_rgb(img, n_px);
    let plane = (n_px as usize) * (n_px as usize);
    let mut out = Vec::with_capacity(rgb.len());
    for (c, chunk) in rgb.chunks_exact(plane).enumerate() {
        let lut: Vec<f32> = (0..=255u8)
            .map(|v| (f32::from(v) / 255.0 - norm.mean[c]) / norm.std[c])
            .collect();
        out.extend(chunk.iter().map(|&v| lut[usize::from(v)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_sizes() {
        assert_eq!(resized_size(451, 300, 224), (336, 224));
        assert_eq!(resized_size(240, 560, 224), (224, 522));
        assert_eq!(resized_size(1500, 60, 224), (5600, 224));
        assert_eq!(resized_size(50, 1200, 224), (224, 5376));
        assert_eq!(resized_size(1, 1, 224), (224, 224));
        assert_eq!(resized_size(7, 5, 224), (313, 224));
        assert_eq!(resized_size(224, 224, 224), (224, 224));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // (h - n) / 2 = 2.5 -> 2 and 3.5 -> 4, as Python's round().
        assert_eq!(center_crop_offsets(229, 224, 224), (0, 2));
        assert_eq!(center_crop_offsets(231, 224, 224), (0, 4));
        assert_eq!(center_crop_offsets(224, 226, 224), (1, 0));
        assert_eq!(center_crop_offsets(313, 224, 224), (0, 44));
    }

    #[test]
    fn rgba_at_target_size_keeps_transparent_colours() {
        // No resize -> no premultiply round trip: transparent white stays white.
        let px: Vec<u8> = [255, 255, 255, 0].repeat(4);
        let img = DecodedImage::new(2, 2, Pixels::Rgba(px)).unwrap();
        assert!(resize_crop_rgb(&img, 2).iter().all(|&v| v == 255));
        // With a resize the transparent pixels become black.
        let px: Vec<u8> = [255, 255, 255, 0].repeat(9);
        let img = DecodedImage::new(3, 3, Pixels::Rgba(px)).unwrap();
        assert!(resize_crop_rgb(&img, 2).iter().all(|&v| v == 0));
    }

    #[test]
    fn normalisation_in_f32() {
        let img = DecodedImage::new(1, 1, Pixels::Rgb(vec![0, 128, 255])).unwrap();
        let t = preprocess(&img, 1, &Normalization::default());
        let n = Normalization::default();
        assert_eq!(t[0], (0.0f32 / 255.0 - n.mean[0]) / n.std[0]);
        assert_eq!(t[1], (128.0f32 / 255.0 - n.mean[1]) / n.std[1]);
        assert_eq!(t[2], (255.0f32 / 255.0 - n.mean[2]) / n.std[2]);
    }
}
