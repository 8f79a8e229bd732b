//! The reference transforms, described by [`Preprocess`]. CLIP's `clip.clip._transform(n_px)` is
//! `Resize(n_px, BICUBIC) -> CenterCrop(n_px) -> convert("RGB") -> ToTensor -> Normalize`, with
//! torchvision's size and crop arithmetic and Pillow's per-mode resize; open_clip's resize modes
//! (`shortest`, `squash`, `longest` with padding) and transformers' fixed-size processors
//! (`convert_to_rgb` onto white, then a Pillow resize to `n x n`) vary the geometry, the filter and
//! when the image becomes RGB.

use crate::image::{DecodedImage, Mode, Pixels};
use crate::modes::{
    premultiply, to_rgb_interleaved, to_rgb_on_white, to_rgb_planar, unpremultiply,
};
use crate::resample::{crop_window, nearest_window, resample_window, Filter, Window};

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

/// How the image is brought to the square input: the three `resize_mode`s of open_clip, which
/// also cover CLIP and transformers' fixed-size processors. The geometry decides which source
/// pixels reach the model, so it is part of the model's description, never a caller's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizeMode {
    /// torchvision `Resize(n)` (short side to `n`, long side truncated) then `CenterCrop(n)`:
    /// CLIP and open_clip's `"shortest"`.
    Shortest,
    /// Both sides to `n`, aspect ratio not kept, nothing cropped: open_clip's `"squash"`
    /// (`Resize((n, n))`) and transformers' processors with `size = {height, width}` (SigLIP).
    Squash,
    /// open_clip's `"longest"`: `ResizeKeepRatio(n, longest=1)` (long side to `n`, short side
    /// `round(short * n / long)`, ties to even) then `CenterCropOrPad(n, fill)`, which pads the
    /// short side with `fill`, `(n - s) // 2` before and the rest after. The padding is done in
    /// the image's own mode before `convert("RGB")`, as torchvision's `pad` does (a grey fill
    /// `[f, f, f]` is open_clip's integer `fill_color = f`, replicated over the mode's bands).
    Longest {
        /// Padding colour, RGB.
        fill: [u8; 3],
    },
}

/// Pillow's resampling filter for the resize. Modes `P` and `1` are always resized with NEAREST,
/// whatever is asked, as Pillow does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interpolation {
    /// `Image.BICUBIC` (CLIP, most open_clip models).
    Bicubic,
    /// `Image.BILINEAR` (SigLIP, open_clip's `interpolation="bilinear"`).
    Bilinear,
}

/// When the image becomes RGB, which decides what transparent pixels look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RgbConversion {
    /// Resize in the file's own mode, then `convert("RGB")` (CLIP, open_clip): alpha is dropped,
    /// so resized transparent areas usually turn black.
    AfterResize,
    /// transformers' `convert_to_rgb` first: an image with alpha or palette transparency is
    /// composited over opaque white (`Image.alpha_composite`), every other image is
    /// `convert("RGB")`; the resize then runs on RGB.
    BeforeResizeOnWhite,
}

/// How an image becomes a model's input tensor. A model family describes its own preprocessing
/// (read from the checkpoint), so callers never pick constants themselves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Side of the square input (`n_px`).
    pub resolution: u32,
    /// Geometry of the resize (and crop or pad).
    pub resize: ResizeMode,
    /// Pillow filter of the resize.
    pub interpolation: Interpolation,
    /// Whether transparency is composited onto white before the resize.
    pub rgb: RgbConversion,
    /// Per-channel mean and standard deviation.
    pub normalization: Normalization,
}

impl Preprocess {
    /// CLIP's transform at `resolution`: resize the short side (bicubic), centre crop, RGB,
    /// normalise with CLIP's constants.
    pub fn clip(resolution: u32) -> Self {
        Self {
            resolution,
            resize: ResizeMode::Shortest,
            interpolation: Interpolation::Bicubic,
            rgb: RgbConversion::AfterResize,
            normalization: Normalization::default(),
        }
    }

    /// The float32 tensor `[3, n, n]`, CHW: [`Self::rgb_u8`], then `(u8 / 255 - mean) / std`
    /// in f32 (torchvision's `ToTensor` + `Normalize`; transformers' `rescale` in f64 then f32
    /// gives the same values for `rescale_factor = 1/255`).
    ///
    /// # Panics
    /// If `resolution` is 0.
    pub fn apply(&self, img: &DecodedImage) -> Vec<f32> {
        normalize(&self.rgb_u8(img), self.resolution, &self.normalization)
    }

    /// The uint8 RGB image that enters `ToTensor`, planar CHW `[3, n, n]`.
    ///
    /// # Panics
    /// If `resolution` is 0.
    pub fn rgb_u8(&self, img: &DecodedImage) -> Vec<u8> {
        let n = self.resolution;
        assert!(n > 0, "resolution must be positive");
        let converted;
        let img = match self.rgb {
            RgbConversion::BeforeResizeOnWhite if img.mode() != Mode::Rgb => {
                let rgb = to_rgb_on_white(img.pixels(), img.palette_alpha());
                converted = DecodedImage::new(img.width(), img.height(), Pixels::Rgb(rgb))
                    .expect("conversion keeps the size");
                &converted
            }
            _ => img,
        };
        let (w, h) = (img.width(), img.height());
        let filter = match self.interpolation {
            Interpolation::Bicubic => Filter::Bicubic,
            Interpolation::Bilinear => Filter::Bilinear,
        };
        let (new_w, new_h) = match self.resize {
            ResizeMode::Shortest => resized_size(w, h, n),
            ResizeMode::Squash => (n, n),
            ResizeMode::Longest { .. } => keep_ratio_longest_size(w, h, n),
        };
        let (cols, pad_left) = crop_or_pad(new_w, n);
        let (rows, pad_top) = crop_or_pad(new_h, n);
        let win = Window {
            left: cols.0 as usize,
            top: rows.0 as usize,
            width: cols.1 as usize,
            height: rows.1 as usize,
        };
        let part = if (new_w, new_h) == (w, h) {
            crop_pixels(img, win)
        } else {
            resize_window(img, filter, (new_w as usize, new_h as usize), win)
        };
        if (win.width, win.height) == (n as usize, n as usize) {
            return to_rgb_planar(&part);
        }
        let fill = match self.resize {
            ResizeMode::Longest { fill } => fill,
            // Shortest and Squash never leave a side short of `n`.
            _ => [0; 3],
        };
        let padded = pad(
            &part,
            win,
            n as usize,
            (pad_left as usize, pad_top as usize),
            fill,
        );
        to_rgb_planar(&padded)
    }

    /// A stable text naming every parameter, for keys that must change when the pixels would.
    /// CLIP's transform keeps the text it always had (caches are keyed by it).
    pub fn describe(&self) -> String {
        let n = &self.normalization;
        let interp = match self.interpolation {
            Interpolation::Bicubic => "bicubic",
            Interpolation::Bilinear => "bilinear",
        };
        let geometry = match self.resize {
            ResizeMode::Shortest => format!("shortest-{interp}-centercrop {}", self.resolution),
            ResizeMode::Squash => format!("squash-{interp} {}", self.resolution),
            ResizeMode::Longest { fill } => {
                format!(
                    "longest-{interp}-centerpad {} fill {fill:?}",
                    self.resolution
                )
            }
        };
        let rgb = match self.rgb {
            RgbConversion::AfterResize => "",
            RgbConversion::BeforeResizeOnWhite => " rgb-on-white-before-resize",
        };
        format!("{geometry} mean {:?} std {:?}{rgb}", n.mean, n.std)
    }
}

/// open_clip's `ResizeKeepRatio(n, longest=1).get_params` for a square target: with
/// `ratio = max(h / n, w / n)` (f64), each side becomes `round(side / ratio)`, Python's round
/// (ties to even). Returns `(width, height)`. A side that would round to 0 (an image more than
/// `2n` times longer than wide) is kept at 1, where the reference would fail.
pub fn keep_ratio_longest_size(width: u32, height: u32, n_px: u32) -> (u32, u32) {
    let n = f64::from(n_px);
    let ratio = (f64::from(height) / n).max(f64::from(width) / n);
    let side = |s: u32| ((f64::from(s) / ratio).round_ties_even() as u32).max(1);
    (side(width), side(height))
}

/// One axis of open_clip's `center_crop_or_pad` to `n`: a side shorter than `n` is padded,
/// `(n - s) // 2` before; a longer one is cropped at `round((s - n) / 2)` (ties to even), as
/// torchvision's `CenterCrop`. Returns `((offset, length) kept of the side, padding before)`.
fn crop_or_pad(side: u32, n: u32) -> ((u32, u32), u32) {
    if side < n {
        ((0, side), (n - side) / 2)
    } else {
        ((half_round_even(side - n), n), 0)
    }
}

/// torchvision `pad` (`ImageOps.expand`) of `part` (`win.width x win.height`) to `n x n`, placed
/// at `(left, top)`, filled in the image's own mode with the integer fill replicated over its
/// bands (a palette image is filled with index `fill`, a bilevel one with the raw value). A fill
/// that is not grey has no per-mode reference for non-RGB modes (torchvision refuses it); such
/// images are converted to RGB first and padded with the colour.
fn pad(part: &Pixels, win: Window, n: usize, (left, top): (usize, usize), fill: [u8; 3]) -> Pixels {
    fn place<S: Copy>(
        data: &[S],
        c: usize,
        win: Window,
        n: usize,
        at: (usize, usize),
        px: &[S],
    ) -> Vec<S> {
        let mut out: Vec<S> = px.iter().copied().cycle().take(n * n * c).collect();
        for y in 0..win.height {
            let dst = ((at.1 + y) * n + at.0) * c;
            out[dst..dst + win.width * c]
                .copy_from_slice(&data[y * win.width * c..(y + 1) * win.width * c]);
        }
        out
    }
    let at = (left, top);
    let f = fill[0];
    let grey = fill.iter().all(|&v| v == f);
    match part {
        Pixels::Rgb(v) => Pixels::Rgb(place(v, 3, win, n, at, &fill)),
        _ if !grey => Pixels::Rgb(place(&to_rgb_interleaved(part), 3, win, n, at, &fill)),
        Pixels::Rgba(v) => Pixels::Rgba(place(v, 4, win, n, at, &[f; 4])),
        Pixels::Cmyk(v) => Pixels::Cmyk(place(v, 4, win, n, at, &[f; 4])),
        Pixels::La(v) => Pixels::La(place(v, 2, win, n, at, &[f; 2])),
        Pixels::L(v) => Pixels::L(place(v, 1, win, n, at, &[f])),
        Pixels::Bilevel(v) => Pixels::Bilevel(place(v, 1, win, n, at, &[f])),
        Pixels::I16(v) => Pixels::I16(place(v, 1, win, n, at, &[u16::from(f)])),
        Pixels::Palette { indices, palette } => Pixels::Palette {
            indices: place(indices, 1, win, n, at, &[f]),
            palette: palette.clone(),
        },
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

/// `img.resize((out_w, out_h), filter)` as Pillow does it for the image's mode, but only the
/// rectangle `win` of the result.
fn resize_window(img: &DecodedImage, filter: Filter, out: (usize, usize), win: Window) -> Pixels {
    let size = (img.width() as usize, img.height() as usize);
    match img.pixels() {
        Pixels::Rgb(v) => Pixels::Rgb(resample_window(filter, v, 3, size, out, win)),
        Pixels::L(v) => Pixels::L(resample_window(filter, v, 1, size, out, win)),
        Pixels::Cmyk(v) => Pixels::Cmyk(resample_window(filter, v, 4, size, out, win)),
        Pixels::I16(v) => Pixels::I16(resample_window(filter, v, 1, size, out, win)),
        Pixels::Rgba(v) => {
            let mut r = resample_window(filter, &premultiply(v, 4), 4, size, out, win);
            unpremultiply(&mut r, 4);
            Pixels::Rgba(r)
        }
        Pixels::La(v) => {
            let mut r = resample_window(filter, &premultiply(v, 2), 2, size, out, win);
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

/// The uint8 RGB crop that enters `ToTensor` in CLIP's transform: planar CHW `[3, n_px, n_px]`
/// ([`Preprocess::rgb_u8`] of [`Preprocess::clip`]).
///
/// # Panics
/// If `n_px` is 0.
pub fn resize_crop_rgb(img: &DecodedImage, n_px: u32) -> Vec<u8> {
    Preprocess::clip(n_px).rgb_u8(img)
}

/// `(u8 / 255 - mean) / std` per plane of a planar `[3, n, n]` image, each operation in f32 as
/// torchvision computes it.
fn normalize(rgb: &[u8], n_px: u32, norm: &Normalization) -> Vec<f32> {
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

/// The reference transform's float32 tensor, CHW `[3, n_px, n_px]`: `(u8 / 255 - mean) / std`,
/// each operation in f32 as torchvision computes it (so the values are bit-identical).
///
/// # Panics
/// If `n_px` is 0.
pub fn preprocess(img: &DecodedImage, n_px: u32, norm: &Normalization) -> Vec<f32> {
    Preprocess {
        normalization: *norm,
        ..Preprocess::clip(n_px)
    }
    .apply(img)
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
    fn clip_description_is_unchanged() {
        // Caches and index spaces are keyed by this text: it must never change for CLIP.
        assert_eq!(
            Preprocess::clip(224).describe(),
            "shortest-bicubic-centercrop 224 mean [0.48145467, 0.4578275, 0.40821072] \
             std [0.26862955, 0.2613026, 0.2757771]"
        );
        let half = Normalization {
            mean: [0.5; 3],
            std: [0.5; 3],
        };
        let siglip = Preprocess {
            resolution: 384,
            resize: ResizeMode::Squash,
            interpolation: Interpolation::Bilinear,
            rgb: RgbConversion::BeforeResizeOnWhite,
            normalization: half,
        };
        assert_eq!(
            siglip.describe(),
            "squash-bilinear 384 mean [0.5, 0.5, 0.5] std [0.5, 0.5, 0.5] \
             rgb-on-white-before-resize"
        );
        let longest = Preprocess {
            resize: ResizeMode::Longest { fill: [128; 3] },
            ..Preprocess::clip(224)
        };
        assert!(longest
            .describe()
            .starts_with("longest-bicubic-centerpad 224 fill [128, 128, 128] mean "));
        // Every parameter shows in the text.
        let variants = [
            Preprocess::clip(224),
            Preprocess::clip(336),
            siglip,
            Preprocess {
                rgb: RgbConversion::AfterResize,
                ..siglip
            },
            Preprocess {
                interpolation: Interpolation::Bicubic,
                ..siglip
            },
            Preprocess {
                resize: ResizeMode::Shortest,
                ..siglip
            },
            Preprocess {
                normalization: Normalization::default(),
                ..siglip
            },
            longest,
            Preprocess {
                resize: ResizeMode::Longest { fill: [0; 3] },
                ..longest
            },
        ];
        let texts: std::collections::HashSet<String> =
            variants.iter().map(Preprocess::describe).collect();
        assert_eq!(texts.len(), variants.len());
    }

    #[test]
    fn longest_sizes_round_half_to_even() {
        // round(side / max(h / n, w / n)): 451x300 -> 224 x round(148.98) = 149.
        assert_eq!(keep_ratio_longest_size(451, 300, 224), (224, 149));
        assert_eq!(keep_ratio_longest_size(240, 560, 224), (96, 224));
        assert_eq!(keep_ratio_longest_size(1500, 60, 32), (32, 1));
        assert_eq!(keep_ratio_longest_size(7, 5, 32), (32, 23));
        assert_eq!(keep_ratio_longest_size(1, 1, 224), (224, 224));
        // Ties: 3 * 4 / 8 = 1.5 -> 2 and 5 * 4 / 8 = 2.5 -> 2, as Python's round.
        assert_eq!(keep_ratio_longest_size(8, 3, 4), (4, 2));
        assert_eq!(keep_ratio_longest_size(5, 8, 4), (2, 4));
        // Never 0 (the reference would fail).
        assert_eq!(keep_ratio_longest_size(1, 1000, 32), (1, 32));
    }

    #[test]
    fn crop_or_pad_offsets() {
        // Padding: (n - s) // 2 before, the rest after.
        assert_eq!(crop_or_pad(149, 224), ((0, 149), 37));
        assert_eq!(crop_or_pad(150, 224), ((0, 150), 37));
        assert_eq!(crop_or_pad(1, 32), ((0, 1), 15));
        // Exact and crop (torchvision's rounding).
        assert_eq!(crop_or_pad(224, 224), ((0, 224), 0));
        assert_eq!(crop_or_pad(229, 224), ((2, 224), 0));
    }

    #[test]
    fn squash_resizes_both_sides_without_crop() {
        // A 4x2 image with a distinct left and right half: squashed to 2x2, both halves survive
        // (a centre crop would keep only the middle).
        let px = [[0u8, 0, 255, 255]; 2].concat();
        let img = DecodedImage::new(4, 2, Pixels::L(px)).unwrap();
        let pre = Preprocess {
            resize: ResizeMode::Squash,
            ..Preprocess::clip(2)
        };
        let got = pre.rgb_u8(&img);
        assert!(got.chunks(2).all(|px| px[0] < 64 && px[1] > 192), "{got:?}");
        // Already n x n: untouched, no resample.
        let img = DecodedImage::new(2, 2, Pixels::L(vec![1, 2, 3, 4])).unwrap();
        assert_eq!(pre.rgb_u8(&img), [1, 2, 3, 4].repeat(3));
    }

    #[test]
    fn longest_pads_in_the_image_mode() {
        let longest = |fill| Preprocess {
            resize: ResizeMode::Longest { fill },
            ..Preprocess::clip(4)
        };
        // 4x2 L image, no resize needed: one row of fill above, one below.
        let img = DecodedImage::new(4, 2, Pixels::L(vec![9; 8])).unwrap();
        let want: Vec<u8> = [[128; 4], [9; 4], [9; 4], [128; 4]].concat();
        assert_eq!(longest([128; 3]).rgb_u8(&img), want.repeat(3));
        // A palette image is filled with index `fill`, looked up after the padding.
        let p = Pixels::Palette {
            indices: vec![0; 8],
            palette: vec![[1, 2, 3], [40, 50, 60]],
        };
        let img = DecodedImage::new(2, 4, p).unwrap();
        let got = longest([1; 3]).rgb_u8(&img);
        assert_eq!(&got[..4], &[40, 1, 1, 40]);
        assert_eq!(&got[16..20], &[50, 2, 2, 50]);
        // CMYK is filled with (f, f, f, f), which is not grey once converted.
        let img = DecodedImage::new(4, 2, Pixels::Cmyk(vec![0; 32])).unwrap();
        assert_eq!(longest([128; 3]).rgb_u8(&img)[0], 63);
        // A colour fill on RGB pads with the colour.
        let img = DecodedImage::new(4, 2, Pixels::Rgb(vec![0; 24])).unwrap();
        let got = longest([10, 20, 30]).rgb_u8(&img);
        assert_eq!((got[0], got[16], got[32]), (10, 20, 30));
    }

    #[test]
    fn white_first_changes_only_transparent_images() {
        let white_first = Preprocess {
            rgb: RgbConversion::BeforeResizeOnWhite,
            ..Preprocess::clip(2)
        };
        // Transparent pixels: black after resizing RGBa, white when composited first.
        let img = DecodedImage::new(3, 3, Pixels::Rgba([255, 255, 255, 0].repeat(9))).unwrap();
        assert!(Preprocess::clip(2).rgb_u8(&img).iter().all(|&v| v == 0));
        assert!(white_first.rgb_u8(&img).iter().all(|&v| v == 255));
        // Opaque images give the same bytes either way.
        let px: Vec<u8> = (0..27).map(|v| (v * 9) as u8).collect();
        let img = DecodedImage::new(3, 3, Pixels::Rgb(px)).unwrap();
        assert_eq!(white_first.rgb_u8(&img), Preprocess::clip(2).rgb_u8(&img));
        // Palette transparency counts only with this conversion.
        let p = Pixels::Palette {
            indices: vec![0, 1, 1, 0],
            palette: vec![[0, 0, 0], [9, 9, 9]],
        };
        let img = DecodedImage::new(2, 2, p)
            .unwrap()
            .with_palette_alpha(vec![0]);
        assert_eq!(white_first.rgb_u8(&img), [255, 9, 9, 255].repeat(3));
        assert_eq!(Preprocess::clip(2).rgb_u8(&img), [0, 9, 9, 0].repeat(3));
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
