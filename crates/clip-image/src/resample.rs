//! Pillow's resamplers, bit-exact: bicubic and bilinear (`Resample.c`, one convolution path
//! parameterised by the filter; fixed point for 8-bit bands, double for `I;16`) and nearest (`Geometry.c ImagingScaleAffine`, forced by Pillow for modes `P` and `1`).
//!
//! Every output sample depends only on its own filter window, so we compute just the window of the
//! resized image that the center crop keeps (and, for the first pass, just the source rows or
//! columns that the second pass reads). The values are the same as resizing the whole image and
//! cropping afterwards, as the reference does, but a panorama costs no more than a square photo.

use std::ops::Range;

/// The part of the resized image that is wanted (the center crop), in resized coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
}

impl Window {
    fn cols(&self) -> Range<usize> {
        self.left..self.left + self.width
    }

    fn rows(&self) -> Range<usize> {
        self.top..self.top + self.height
    }
}

/// Keys cubic with a = -0.5 (`bicubic_filter` in Resample.c); support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Triangle filter (`bilinear_filter` in Resample.c); support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// The convolution filters of `Resample.c` that the transforms use. Both go through the same
/// coefficient and accumulation code; only the kernel and its support differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// `Image.BICUBIC`: Keys cubic, a = -0.5, support 2.
    Bicubic,
    /// `Image.BILINEAR`: triangle, support 1 (antialiased when shrinking, like every filter).
    Bilinear,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Bilinear => 1.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Bicubic => bicubic(x),
            Filter::Bilinear => triangle(x),
        }
    }
}

/// Filter windows of one axis for the output positions in `outputs`: for each, the first source
/// index and the number of taps, plus `ksize` weights per position (zero-padded).
pub(crate) struct Coeffs<W> {
    starts: Vec<usize>,
    lens: Vec<usize>,
    ksize: usize,
    weights: Vec<W>,
}

impl<W: Copy> Coeffs<W> {
    fn len(&self) -> usize {
        self.starts.len()
    }

    fn taps(&self, i: usize) -> (usize, &[W]) {
        let w = &self.weights[i * self.ksize..i * self.ksize + self.lens[i]];
        (self.starts[i], w)
    }

    /// The source range read by all windows.
    fn span(&self) -> Range<usize> {
        let lo = self.starts.iter().copied().min().unwrap_or(0);
        let hi = self
            .starts
            .iter()
            .zip(&self.lens)
            .map(|(s, l)| s + l)
            .max()
            .unwrap_or(0);
        lo..hi
    }
}

/// `precompute_coeffs` of Resample.c (box = whole image) for the output positions in `outputs`,
/// with weights normalised by their sum in double precision.
fn precompute(
    filter: Filter,
    in_size: usize,
    out_size: usize,
    outputs: Range<usize>,
) -> Coeffs<f64> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let inv = 1.0 / filterscale;
    let n = outputs.len();
    let mut c = Coeffs {
        starts: Vec::with_capacity(n),
        lens: Vec::with_capacity(n),
        ksize,
        weights: vec![0.0; n * ksize],
    };
    for (i, xx) in outputs.enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // C `(int)` truncates toward zero; the clamps come after, as in Resample.c.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let xmin = xmin as usize;
        let taps = xmax.max(0) as usize;
        let w = &mut c.weights[i * ksize..i * ksize + taps];
        let mut total = 0.0;
        for (x, slot) in w.iter_mut().enumerate() {
            let v = filter.eval(((x + xmin) as f64 - center + 0.5) * inv);
            *slot = v;
            total += v;
        }
        if total != 0.0 {
            for slot in w.iter_mut() {
                *slot /= total;
            }
        }
        c.starts.push(xmin);
        c.lens.push(taps);
    }
    c
}

/// A sample type with Pillow's accumulation rule for its resampling path.
pub(crate) trait Sample: Copy + Default {
    type Weight: Copy;
    type Acc: Copy;
    fn coeffs(
        filter: Filter,
        in_size: usize,
        out_size: usize,
        outputs: Range<usize>,
    ) -> Coeffs<Self::Weight>;
    fn start() -> Self::Acc;
    fn mac(acc: Self::Acc, s: Self, w: Self::Weight) -> Self::Acc;
    fn finish(acc: Self::Acc) -> Self;
    /// The horizontal pass over `rows` of `src` (see [`horizontal`]).
    fn horizontal(
        src: &Plane<Self>,
        rows: Range<usize>,
        k: &Coeffs<Self::Weight>,
        base: usize,
    ) -> Vec<Self>;
    /// The vertical pass over the columns `cols` of `src` (see [`vertical`]).
    fn vertical(
        src: &Plane<Self>,
        cols: Range<usize>,
        k: &Coeffs<Self::Weight>,
        base: usize,
    ) -> Vec<Self>;
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// 8-bit bands: weights in fixed point with 22 fraction bits (rounded half away from zero),
/// `2^21 + sum(pixel * w)` in i32, then `>> 22` clipped to 0..=255. Integer sums are exact, so the
/// order of accumulation does not matter.
impl Sample for u8 {
    type Weight = i32;
    type Acc = i32;

    fn coeffs(
        filter: Filter,
        in_size: usize,
        out_size: usize,
        outputs: Range<usize>,
    ) -> Coeffs<i32> {
        let c = precompute(filter, in_size, out_size, outputs);
        let one = (1u32 << PRECISION_BITS) as f64;
        let weights = c
            .weights
            .iter()
            .map(|&k| {
                if k < 0.0 {
                    (k * one - 0.5) as i32
                } else {
                    (k * one + 0.5) as i32
                }
            })
            .collect();
        Coeffs {
            starts: c.starts,
            lens: c.lens,
            ksize: c.ksize,
            weights,
        }
    }

    #[inline(always)]
    fn start() -> i32 {
        1 << (PRECISION_BITS - 1)
    }

    #[inline(always)]
    fn mac(acc: i32, s: u8, w: i32) -> i32 {
        acc.wrapping_add(i32::from(s).wrapping_mul(w))
    }

    #[inline(always)]
    fn finish(acc: i32) -> u8 {
        (acc >> PRECISION_BITS).clamp(0, 255) as u8
    }

    fn horizontal(src: &Plane<u8>, rows: Range<usize>, k: &Coeffs<i32>, base: usize) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { simd::horizontal_u8_avx2(src, rows, k, base) };
        }
        horizontal_u8(src, rows, k, base)
    }

    fn vertical(src: &Plane<u8>, cols: Range<usize>, k: &Coeffs<i32>, base: usize) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { simd::vertical_u8_avx2(src, cols, k, base) };
        }
        vertical(src, cols, k, base)
    }
}

/// `I;16`: double weights, summed in window order, rounded half away from zero, clamped to u16.
impl Sample for u16 {
    type Weight = f64;
    type Acc = f64;

    fn coeffs(
        filter: Filter,
        in_size: usize,
        out_size: usize,
        outputs: Range<usize>,
    ) -> Coeffs<f64> {
        precompute(filter, in_size, out_size, outputs)
    }

    #[inline(always)]
    fn start() -> f64 {
        0.0
    }

    #[inline(always)]
    fn mac(acc: f64, s: u16, w: f64) -> f64 {
        acc + f64::from(s) * w
    }

    #[inline(always)]
    fn finish(acc: f64) -> u16 {
        let r = if acc >= 0.0 {
            (acc + 0.5).floor()
        } else {
            -(acc.abs() + 0.5).floor()
        };
        r.clamp(0.0, 65535.0) as u16
    }

    fn horizontal(src: &Plane<u16>, rows: Range<usize>, k: &Coeffs<f64>, base: usize) -> Vec<u16> {
        horizontal(src, rows, k, base)
    }

    fn vertical(src: &Plane<u16>, cols: Range<usize>, k: &Coeffs<f64>, base: usize) -> Vec<u16> {
        vertical(src, cols, k, base)
    }
}

/// The 8-bit passes compiled a second time with AVX2 enabled, chosen at run time. Integer sums
/// are exact, so the vectorised code gives the same bytes as the scalar one.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::*;

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn horizontal_u8_avx2(
        src: &Plane<u8>,
        rows: Range<usize>,
        k: &Coeffs<i32>,
        base: usize,
    ) -> Vec<u8> {
        horizontal_u8(src, rows, k, base)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical_u8_avx2(
        src: &Plane<u8>,
        cols: Range<usize>,
        k: &Coeffs<i32>,
        base: usize,
    ) -> Vec<u8> {
        vertical(src, cols, k, base)
    }
}

/// `sum(p[i] * w[i])` in i32: a plain reduction that the compiler vectorises (integer sums are
/// exact in any order).
#[inline(always)]
fn dot_u8(p: &[u8], w: &[i32]) -> i32 {
    p.iter().zip(w).fold(0i32, |acc, (&a, &b)| {
        acc.wrapping_add(i32::from(a).wrapping_mul(b))
    })
}

/// The 8-bit horizontal pass: each source row is split into one plane per band first, so every
/// output sample is a contiguous dot product of its window with the weights.
#[inline(always)]
fn horizontal_u8(src: &Plane<u8>, rows: Range<usize>, k: &Coeffs<i32>, base: usize) -> Vec<u8> {
    let c = src.channels;
    let out_w = k.len();
    let stride = src.width * c;
    let mut out = vec![0u8; rows.len() * out_w * c];
    let mut planes = vec![0u8; stride];
    for (row_out, y) in out.chunks_exact_mut(out_w * c).zip(rows) {
        let row = &src.data[y * stride..(y + 1) * stride];
        let planes: &[u8] = if c == 1 {
            row
        } else {
            for (x, px) in row.chunks_exact(c).enumerate() {
                for (ch, &v) in px.iter().enumerate() {
                    planes[ch * src.width + x] = v;
                }
            }
            &planes
        };
        for (x, px) in row_out.chunks_exact_mut(c).enumerate() {
            let (start, w) = k.taps(x);
            let s = start - base;
            for (ch, o) in px.iter_mut().enumerate() {
                let p = &planes[ch * src.width + s..ch * src.width + s + w.len()];
                *o = u8::finish(u8::start().wrapping_add(dot_u8(p, w)));
            }
        }
    }
    out
}

/// An interleaved image buffer: `width * height * channels` samples.
pub(crate) struct Plane<'a, S> {
    data: &'a [S],
    width: usize,
    channels: usize,
}

/// Horizontal pass over `rows` of `src`: output `rows.len() x k.len()` pixels, in the source's
/// interleaved layout. `base` is subtracted from every window start (the column `src` begins at).
/// The straightforward form, used for `I;16` (and as the cross-check of the 8-bit fast path).
fn horizontal<S: Sample>(
    src: &Plane<S>,
    rows: Range<usize>,
    k: &Coeffs<S::Weight>,
    base: usize,
) -> Vec<S> {
    let c = src.channels;
    let out_w = k.len();
    let stride = src.width * c;
    let mut out = vec![S::default(); rows.len() * out_w * c];
    for (row_out, y) in out.chunks_exact_mut(out_w * c).zip(rows) {
        let row = &src.data[y * stride..(y + 1) * stride];
        for (x, px) in row_out.chunks_exact_mut(c).enumerate() {
            let (start, w) = k.taps(x);
            for (ch, o) in px.iter_mut().enumerate() {
                let mut acc = S::start();
                for (t, &wk) in w.iter().enumerate() {
                    acc = S::mac(acc, row[(start - base + t) * c + ch], wk);
                }
                *o = S::finish(acc);
            }
        }
    }
    out
}

/// Vertical pass over the columns `cols` of `src`: output `k.len() x cols.len()` pixels.
/// `base` is subtracted from every window start (the row `src` begins at). Accumulates a whole
/// output row at once, tap by tap, so the inner loop is a contiguous multiply-add.
#[inline(always)]
fn vertical<S: Sample>(
    src: &Plane<S>,
    cols: Range<usize>,
    k: &Coeffs<S::Weight>,
    base: usize,
) -> Vec<S> {
    let c = src.channels;
    let row_len = cols.len() * c;
    let stride = src.width * c;
    let mut out = vec![S::default(); k.len() * row_len];
    let mut acc = vec![S::start(); row_len];
    for (y, row_out) in out.chunks_exact_mut(row_len.max(1)).enumerate() {
        let (start, w) = k.taps(y);
        acc.fill(S::start());
        for (t, &wk) in w.iter().enumerate() {
            let off = (start - base + t) * stride + cols.start * c;
            let row = &src.data[off..off + row_len];
            for (a, &s) in acc.iter_mut().zip(row) {
                *a = S::mac(*a, s, wk);
            }
        }
        for (o, &a) in row_out.iter_mut().zip(&acc) {
            *o = S::finish(a);
        }
    }
    out
}

/// Copies a sub-rectangle (no resampling on either axis).
fn crop<S: Copy>(src: &Plane<S>, rows: Range<usize>, cols: Range<usize>) -> Vec<S> {
    let c = src.channels;
    let mut out = Vec::with_capacity(rows.len() * cols.len() * c);
    for y in rows {
        let off = y * src.width * c;
        out.extend_from_slice(&src.data[off + cols.start * c..off + cols.end * c]);
    }
    out
}

/// Pass order of `ImagingResampleInner` in Pillow 13.0.0 (`docs/REFERENCE_NOTES.md`, "Pillow's
/// bicubic resize (Resample.c), 8-bit samples"): vertical first iff the height shrinks by more than
/// twice as many pixels as the width. The intermediate image is rounded to the sample type, so the
/// order changes results by up to ~17 levels.
pub(crate) fn vertical_first(in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> bool {
    let (in_w, in_h, out_w, out_h) = (in_w as i64, in_h as i64, out_w as i64, out_h as i64);
    out_h < in_h && (in_h - out_h) > 2 * (in_w - out_w)
}

/// Resize (with `filter`) of an interleaved `in_w x in_h x channels` buffer to `out_w x out_h`, returning
/// only `win` (a rectangle inside the output) as `win.width x win.height x channels`.
/// A pass whose dimension does not change is skipped, as in Pillow.
pub(crate) fn resample_window<S: Sample>(
    filter: Filter,
    data: &[S],
    channels: usize,
    (in_w, in_h): (usize, usize),
    (out_w, out_h): (usize, usize),
    win: Window,
) -> Vec<S> {
    let src = Plane {
        data,
        width: in_w,
        channels,
    };
    let need_h = in_w != out_w;
    let need_v = in_h != out_h;
    let kh = need_h.then(|| S::coeffs(filter, in_w, out_w, win.cols()));
    let kv = need_v.then(|| S::coeffs(filter, in_h, out_h, win.rows()));
    if vertical_first(in_w, in_h, out_w, out_h) {
        let cols = kh.as_ref().map_or(win.cols(), Coeffs::span);
        let tmp = match &kv {
            Some(kv) => S::vertical(&src, cols.clone(), kv, 0),
            None => crop(&src, win.rows(), cols.clone()),
        };
        let tmp = Plane {
            data: &tmp,
            width: cols.len(),
            channels,
        };
        match &kh {
            Some(kh) => S::horizontal(&tmp, 0..win.height, kh, cols.start),
            None => tmp.data.to_vec(),
        }
    } else {
        let rows = kv.as_ref().map_or(win.rows(), Coeffs::span);
        let tmp = match &kh {
            Some(kh) => S::horizontal(&src, rows.clone(), kh, 0),
            None => crop(&src, rows.clone(), win.cols()),
        };
        let tmp = Plane {
            data: &tmp,
            width: win.width,
            channels,
        };
        match &kv {
            Some(kv) => S::vertical(&tmp, 0..win.width, kv, rows.start),
            None => tmp.data.to_vec(),
        }
    }
}

/// Source indices of Pillow's NEAREST scale (`ImagingScaleAffine`): `a = in/out`, the coordinate
/// starts at `a/2` and is *accumulated* (`+= a`) in double, then truncated.
fn nearest_table(in_size: usize, out_size: usize, outputs: Range<usize>) -> Vec<usize> {
    let a = in_size as f64 / out_size as f64;
    let mut o = a * 0.5;
    let mut table = Vec::with_capacity(outputs.len());
    for i in 0..outputs.end {
        if i >= outputs.start {
            table.push((o as usize).min(in_size - 1));
        }
        o += a;
    }
    table
}

/// NEAREST resize of a one-byte-per-pixel image (modes `P` and `1`), returning only `win`.
pub(crate) fn nearest_window(
    data: &[u8],
    (in_w, in_h): (usize, usize),
    (out_w, out_h): (usize, usize),
    win: Window,
) -> Vec<u8> {
    let xs = nearest_table(in_w, out_w, win.cols());
    let ys = nearest_table(in_h, out_h, win.rows());
    let mut out = Vec::with_capacity(win.width * win.height);
    for &y in &ys {
        let row = &data[y * in_w..(y + 1) * in_w];
        out.extend(xs.iter().map(|&x| row[x]));
    }
    out
}

/// The rectangle `win` of an image that is not resized.
pub(crate) fn crop_window<S: Copy>(
    data: &[S],
    channels: usize,
    in_w: usize,
    win: Window,
) -> Vec<S> {
    crop(
        &Plane {
            data,
            width: in_w,
            channels,
        },
        win.rows(),
        win.cols(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Straight port of the numpy spec (the reference set's `tools/pil_resize_reference.py`): whole
    /// image, always both coefficient tables for the full output, explicit pass order. The
    /// production code must agree with it on every window.
    pub(crate) fn spec_resize<S: Sample>(
        filter: Filter,
        data: &[S],
        c: usize,
        (w, h): (usize, usize),
        (ow, oh): (usize, usize),
    ) -> Vec<S> {
        let pass_h = |d: &[S], w: usize, h: usize| {
            let k = S::coeffs(filter, w, ow, 0..ow);
            let mut out = Vec::new();
            for y in 0..h {
                for x in 0..ow {
                    let (s, wk) = k.taps(x);
                    for ch in 0..c {
                        let mut acc = S::start();
                        for (t, &wt) in wk.iter().enumerate() {
                            acc = S::mac(acc, d[(y * w + s + t) * c + ch], wt);
                        }
                        out.push(S::finish(acc));
                    }
                }
            }
            out
        };
        let pass_v = |d: &[S], w: usize, h: usize| {
            let k = S::coeffs(filter, h, oh, 0..oh);
            let mut out = Vec::new();
            for y in 0..oh {
                let (s, wk) = k.taps(y);
                for x in 0..w {
                    for ch in 0..c {
                        let mut acc = S::start();
                        for (t, &wt) in wk.iter().enumerate() {
                            acc = S::mac(acc, d[((s + t) * w + x) * c + ch], wt);
                        }
                        out.push(S::finish(acc));
                    }
                }
            }
            out
        };
        let mut cur = data.to_vec();
        let (mut cw, mut chh) = (w, h);
        let order: [bool; 2] = if vertical_first(w, h, ow, oh) {
            [false, true]
        } else {
            [true, false]
        };
        for horizontal_pass in order {
            if horizontal_pass && cw != ow {
                cur = pass_h(&cur, cw, chh);
                cw = ow;
            } else if !horizontal_pass && chh != oh {
                cur = pass_v(&cur, cw, chh);
                chh = oh;
            }
        }
        cur
    }

    /// Deterministic xorshift, to avoid a dev-dependency for random data.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn window_of(full: &[u8], c: usize, ow: usize, win: Window) -> Vec<u8> {
        crop_window(full, c, ow, win)
    }

    #[test]
    fn pass_order_rule() {
        // hubble_portrait_rgb.png 240x560 -> 224x522: vertical first (38 > 2*16).
        assert!(vertical_first(240, 560, 224, 522));
        // Landscape and square photos and pure upscales: horizontal first.
        assert!(!vertical_first(451, 300, 336, 224));
        assert!(!vertical_first(512, 512, 224, 224));
        assert!(!vertical_first(50, 1200, 224, 5376));
        // Strict inequality: 32 == 2*16 is horizontal first.
        assert!(!vertical_first(240, 554, 224, 522));
        assert!(vertical_first(240, 555, 224, 522));
    }

    #[test]
    fn pass_order_changes_portrait_downscale() {
        // A portrait downscale with a high-contrast pattern: both orders give different bytes, and
        // the production code follows Pillow 13's vertical-first order.
        let (w, h) = (60, 140);
        let mut rng = Rng::new(5);
        let data: Vec<u8> = (0..w * h * 3)
            .map(|_| if rng.below(2) == 0 { 0 } else { 255 })
            .collect();
        let (ow, oh) = (56, 130);
        assert!(vertical_first(w, h, ow, oh));
        let full = Window {
            left: 0,
            top: 0,
            width: ow,
            height: oh,
        };
        let got = resample_window(Filter::Bicubic, &data, 3, (w, h), (ow, oh), full);
        // Horizontal-then-vertical, by hand.
        let kh = u8::coeffs(Filter::Bicubic, w, ow, 0..ow);
        let kv = u8::coeffs(Filter::Bicubic, h, oh, 0..oh);
        let src = Plane {
            data: &data,
            width: w,
            channels: 3,
        };
        let tmp = u8::horizontal(&src, 0..h, &kh, 0);
        let hv = u8::vertical(
            &Plane {
                data: &tmp,
                width: ow,
                channels: 3,
            },
            0..ow,
            &kv,
            0,
        );
        let tmp = u8::vertical(&src, 0..w, &kv, 0);
        let vh = u8::horizontal(
            &Plane {
                data: &tmp,
                width: w,
                channels: 3,
            },
            0..oh,
            &kh,
            0,
        );
        assert_ne!(hv, vh, "pattern should expose the pass order");
        assert_eq!(got, vh);
        assert_eq!(
            got,
            spec_resize(Filter::Bicubic, &data, 3, (w, h), (ow, oh))
        );
    }

    #[test]
    fn windows_match_whole_image_resize() {
        let mut rng = Rng::new(1234);
        for case in 0..300 {
            let c = 1 + case % 4;
            let filter = if case % 2 == 0 {
                Filter::Bicubic
            } else {
                Filter::Bilinear
            };
            let (w, h) = (1 + rng.below(89), 1 + rng.below(89));
            let (ow, oh) = (1 + rng.below(199), 1 + rng.below(199));
            let data: Vec<u8> = (0..w * h * c).map(|_| rng.next() as u8).collect();
            let full = spec_resize(filter, &data, c, (w, h), (ow, oh));
            let (ww, wh) = (1 + rng.below(ow), 1 + rng.below(oh));
            let win = Window {
                left: rng.below(ow - ww + 1),
                top: rng.below(oh - wh + 1),
                width: ww,
                height: wh,
            };
            let got = resample_window(filter, &data, c, (w, h), (ow, oh), win);
            assert_eq!(
                got,
                window_of(&full, c, ow, win),
                "case {case}: {filter:?} {w}x{h}x{c} -> {ow}x{oh} {win:?}"
            );
        }
    }

    #[test]
    fn fast_8bit_passes_match_scalar_ones() {
        let mut rng = Rng::new(7);
        for case in 0..100 {
            let c = 1 + case % 4;
            let (w, h) = (1 + rng.below(300), 1 + rng.below(40));
            let out = 1 + rng.below(120);
            let data: Vec<u8> = (0..w * h * c).map(|_| rng.next() as u8).collect();
            let src = Plane {
                data: &data,
                width: w,
                channels: c,
            };
            let k = u8::coeffs(Filter::Bicubic, w, out, 0..out);
            assert_eq!(
                u8::horizontal(&src, 0..h, &k, 0),
                horizontal(&src, 0..h, &k, 0),
                "case {case}"
            );
            assert_eq!(
                horizontal_u8(&src, 0..h, &k, 0),
                horizontal(&src, 0..h, &k, 0),
                "case {case}"
            );
        }
    }

    #[test]
    fn sixteen_bit_windows_match_spec() {
        let mut rng = Rng::new(99);
        for case in 0..60 {
            let (w, h) = (1 + rng.below(60), 1 + rng.below(60));
            let (ow, oh) = (1 + rng.below(120), 1 + rng.below(120));
            let data: Vec<u16> = (0..w * h).map(|_| rng.next() as u16).collect();
            let full = spec_resize(Filter::Bicubic, &data, 1, (w, h), (ow, oh));
            let win = Window {
                left: 0,
                top: 0,
                width: ow,
                height: oh,
            };
            assert_eq!(
                resample_window(Filter::Bicubic, &data, 1, (w, h), (ow, oh), win),
                full,
                "case {case}"
            );
        }
    }

    #[test]
    fn fixed_point_coefficients_follow_pillow() {
        // Upscale 2 -> 4: centres 0.25, 0.75, 1.25, 1.75; every window is clamped to [0, 2).
        let k = u8::coeffs(Filter::Bicubic, 2, 4, 0..4);
        for i in 0..4 {
            let (s, w) = k.taps(i);
            assert_eq!(s, 0);
            // Normalised weights sum to 2^22 up to rounding of each tap.
            let sum: i32 = w.iter().sum();
            assert!((sum - (1 << 22)).abs() <= w.len() as i32, "{sum}");
        }
        // Constant images stay constant (weights sum to one).
        let data = vec![77u8; 5 * 3];
        let win = Window {
            left: 0,
            top: 0,
            width: 11,
            height: 7,
        };
        assert!(
            resample_window(Filter::Bicubic, &data, 1, (5, 3), (11, 7), win)
                .iter()
                .all(|&v| v == 77)
        );
    }

    #[test]
    fn bilinear_matches_pillow() {
        // `Image.fromarray(row, "L").resize((w, 1), Image.BILINEAR)` with Pillow 13.0.0.
        let row = [0u8, 100, 200, 255, 10, 90, 30];
        let cases: [(usize, &[u8]); 4] = [
            (3, &[86, 166, 51]),
            (2, &[124, 92]),
            (5, &[33, 156, 200, 46, 50]),
            (11, &[0, 45, 109, 173, 220, 255, 99, 32, 83, 57, 30]),
        ];
        for (w, want) in cases {
            let win = Window {
                left: 0,
                top: 0,
                width: w,
                height: 1,
            };
            let got = resample_window(Filter::Bilinear, &row, 1, (7, 1), (w, 1), win);
            assert_eq!(got, want, "7 -> {w}");
        }
        // Support 1 per unit of scale: a 2x shrink reads 4 taps, a 2x enlargement at most 2.
        let k = u8::coeffs(Filter::Bilinear, 8, 4, 0..4);
        assert!((0..4).all(|i| k.taps(i).1.len() <= 4));
        let k = u8::coeffs(Filter::Bilinear, 4, 8, 0..8);
        assert!((0..8).all(|i| k.taps(i).1.iter().filter(|&&w| w != 0).count() <= 2));
    }

    #[test]
    fn nearest_accumulates_in_double() {
        // 3 -> 7: a = 3/7, positions 0.214, 0.643, 1.071, 1.5, 1.929, 2.357, 2.786.
        assert_eq!(nearest_table(3, 7, 0..7), vec![0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(nearest_table(7, 3, 0..3), vec![1, 3, 5]);
        assert_eq!(nearest_table(10, 4, 1..3), vec![3, 6]);
        let data: Vec<u8> = (0..12).collect();
        let win = Window {
            left: 1,
            top: 0,
            width: 2,
            height: 2,
        };
        assert_eq!(
            nearest_window(&data, (4, 3), (3, 2), win),
            vec![2, 3, 10, 11]
        );
    }
}
