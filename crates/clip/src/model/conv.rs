//! The ResNet's convolutions, computed exactly as candle's CPU `conv2d` computes them, only faster
//! around the products.
//!
//! 1 x 1, stride 1, no padding: candle (0.11, `conv2d_1x1`) multiplies the kernel `[c_out, c_in]`
//! by each image `[c_in, H*W]`, after copying the image element by element (it is already that
//! matrix in NCHW) and before copying the result back element by element; here the image is used
//! in place and the result copied as one block. k x k (k > 1): candle (`conv2d_tiled`) multiplies
//! the kernel `[c_out, k*k*c_in]` (ordered kh, kw, c_in)
//! by patch matrices `[k*k*c_in, 512 output pixels]`, one per image and tile of 512 pixels. Those
//! products are kept here as they are, through candle's own matmul on the same shapes and layouts:
//! the same sums in the same order, so the outputs are bit-identical (a test checks it), which
//! the ResNet's parity bar needs (a GEMM with another summation order landed outside the RN50
//! goldens' 4.4e-3 bar). What changes is the work around them: candle first copies the whole
//! batch to NHWC on one thread, then fills each patch matrix element by element, writing 2 KB
//! apart, and scatters the results back pixel by pixel: a large share of RN50's time. Here each
//! patch
//! row is filled from a row of the NCHW input (sequential reads and writes), the kernel is
//! reordered once at load, and results are copied back a row at a time.

use std::mem::MaybeUninit;

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::footprint::footprint;
use super::layers::with_f32;
use crate::kernels::OutPtr;

/// candle's `TILE_SIZE`: the products' shapes, hence their sums, follow from it.
const TILE: usize = 512;

/// A `[c_out, c_in, k, k]` convolution kernel, reordered for the products.
pub(crate) struct Conv2d {
    /// `[c_out, k * k * c_in]`, columns ordered (kh, kw, c_in) as candle orders them.
    kernel: Tensor,
    c_in: usize,
    k: usize,
}

footprint!(Conv2d: kernel);

impl Conv2d {
    /// A square `[c_out, c_in, k, k]` kernel, reordered once to `[c_out, (kh, kw, c_in)]`.
    pub fn new(weight: &Tensor) -> Result<Self> {
        let (c_out, c_in, kh, kw) = weight.dims4()?;
        if kh != kw || kh == 0 {
            candle_core::bail!("convolution with a {kh} x {kw} kernel");
        }
        let kernel = weight
            .permute((0, 2, 3, 1))?
            .contiguous()?
            .reshape((c_out, kh * kw * c_in))?;
        Ok(Self {
            kernel,
            c_in,
            k: kh,
        })
    }

    /// `finish(conv2d(x, weight, padding, stride))` for `x` `[B, c_in, H, W]`:
    /// `[B, c_out, H', W']`, each output row finished as it is copied out of its product.
    pub fn forward(
        &self,
        x: &Tensor,
        padding: usize,
        stride: usize,
        finish: &Finish,
    ) -> Result<Tensor> {
        let k = self.k;
        if k == 1 && (padding, stride) == (0, 1) {
            return self.pointwise(x, finish);
        }
        if k == 1 {
            // candle's full-im2col path (no ResNet layer takes it), finished in a second pass.
            let (c_out, c_in) = self.kernel.dims2()?;
            let weight = self.kernel.reshape((c_out, c_in, 1, 1))?;
            return finish.apply(&x.conv2d(&weight, padding, stride, 1, 1)?);
        }
        let (b, c, h, w) = x.dims4()?;
        if c != self.c_in || h + 2 * padding < k || w + 2 * padding < k || stride == 0 {
            candle_core::bail!(
                "conv2d: input {:?} for a {k} x {k} kernel over {} channels (padding {padding}, stride {stride})",
                x.dims(),
                self.c_in
            );
        }
        let (oh, ow) = (
            (h + 2 * padding - k) / stride + 1,
            (w + 2 * padding - k) / stride + 1,
        );
        let (c_out, k_size) = self.kernel.dims2()?;
        let pixels = oh * ow;
        let tiles = pixels.div_ceil(TILE);
        let geometry = Geometry {
            h,
            w,
            ow,
            k,
            padding,
            stride,
        };
        finish.check(&[b, c_out, oh, ow])?;
        let out = with_f32(x, |xs| -> Result<Vec<f32>> {
            // Not zeroed: the tasks below write every element (a zeroing pass per layer).
            let mut dst: Vec<f32> = Vec::with_capacity(b * c_out * pixels);
            let ptr = OutPtr(dst.as_mut_ptr());
            (0..b * tiles).into_par_iter().try_for_each(|task| {
                let (bi, t) = (task / tiles, task % tiles);
                let (p0, p1) = (t * TILE, ((t + 1) * TILE).min(pixels));
                let image = &xs[bi * c * h * w..][..c * h * w];
                let mut col = vec![0f32; k_size * (p1 - p0)];
                geometry.patches(image, self.c_in, (p0, p1), &mut col);
                let col = Tensor::from_vec(col, (k_size, p1 - p0), x.device())?;
                let y = self.kernel.matmul(&col)?; // [c_out, p1 - p0]
                with_f32(&y, |ys| {
                    for (co, row) in ys.chunks_exact(p1 - p0).enumerate() {
                        let at = (bi * c_out + co) * pixels + p0;
                        // SAFETY: `bi < b`, `co < c_out` (`y` is `[c_out, p1 - p0]`) and
                        // `p0 + row.len() = p1 <= pixels`: the run lies inside `dst`'s capacity
                        // of `b * c_out * pixels`, which outlives the tasks; task (bi, t) writes
                        // pixels p0..p1 of image bi's planes only, so no two tasks' slices
                        // overlap. The floats are uninitialised capacity, hence the
                        // `MaybeUninit` view, which `finish.row` only writes.
                        let out = unsafe {
                            std::slice::from_raw_parts_mut(
                                ptr.get().add(at).cast::<MaybeUninit<f32>>(),
                                row.len(),
                            )
                        };
                        finish.row(co, row, out, at);
                    }
                })?
                .ok_or_else(not_f32_cpu)
            })?;
            // SAFETY: the capacity is `b * c_out * pixels`, and the tasks (all joined, none
            // failed: an error returned above) wrote every (image, channel, pixel) once.
            unsafe { dst.set_len(b * c_out * pixels) };
            Ok(dst)
        })?
        .ok_or_else(not_f32_cpu)??;
        Tensor::from_vec(out, (b, c_out, oh, ow), x.device())
    }

    /// The 1 x 1, stride 1 convolution: `kernel [c_out, c_in] @ image [c_in, H*W]` per image.
    fn pointwise(&self, x: &Tensor, finish: &Finish) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        if c != self.c_in {
            candle_core::bail!(
                "conv2d: input {:?} for a kernel over {} channels",
                x.dims(),
                self.c_in
            );
        }
        let (c_out, hw) = (self.kernel.dim(0)?, h * w);
        finish.check(&[b, c_out, h, w])?;
        let x = x.contiguous()?;
        // Not zeroed: the tasks below write every element.
        let mut dst: Vec<f32> = Vec::with_capacity(b * c_out * hw);
        let ptr = OutPtr(dst.as_mut_ptr());
        (0..b).into_par_iter().try_for_each(|bi| {
            let image = x.get(bi)?.reshape((c, hw))?;
            let y = self.kernel.matmul(&image)?; // [c_out, hw]
            with_f32(&y, |ys| {
                for (co, row) in ys.chunks_exact(hw.max(1)).enumerate() {
                    let at = (bi * c_out + co) * hw;
                    // SAFETY: `bi < b`, `co < c_out` (`y` is `[c_out, hw]`): the run of `hw`
                    // lies inside `dst`'s capacity of `b * c_out * hw`, which outlives the
                    // tasks; task bi writes image bi's block only, so no two tasks' slices
                    // overlap. The floats are uninitialised capacity, hence the
                    // `MaybeUninit` view, which `finish.row` only writes.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(
                            ptr.get().add(at).cast::<MaybeUninit<f32>>(),
                            hw,
                        )
                    };
                    finish.row(co, row, out, at);
                }
            })?
            .ok_or_else(not_f32_cpu)
        })?;
        // SAFETY: the capacity is `b * c_out * hw`, and the tasks (all joined, none failed: an
        // error returned above) wrote every image's block once.
        unsafe { dst.set_len(b * c_out * hw) };
        Tensor::from_vec(dst, (b, c_out, h, w), x.device())
    }
}

/// What follows each convolution of the ResNet, applied to an output row while it is copied out
/// of its product (a separate pass over the activations, the model's largest, cost a noticeable
/// share of RN50's time): the eval-mode BatchNorm `y * alpha[c] + beta[c]`, then `+ residual`,
/// then ReLU, the same f32 operations in the same order as torch's kernels.
pub(crate) struct Finish<'a> {
    /// Per output channel: the BatchNorm's scale.
    pub alpha: &'a [f32],
    /// Per output channel: the BatchNorm's shift.
    pub beta: &'a [f32],
    /// Added after the BatchNorm: the block's input, `[B, c_out, H', W']` like the output.
    pub residual: Option<&'a [f32]>,
    /// Whether a ReLU follows.
    pub relu: bool,
}

impl Finish<'_> {
    /// Refuses an output shape the parameters do not fit (before any work).
    fn check(&self, dims: &[usize]) -> Result<()> {
        let c = dims[1];
        if self.alpha.len() != c || self.beta.len() != c {
            candle_core::bail!(
                "BatchNorm of {} channels after a convolution to {c}",
                self.alpha.len()
            );
        }
        let n: usize = dims.iter().product();
        if let Some(r) = self.residual {
            if r.len() != n {
                candle_core::bail!("residual of {} values for an output {dims:?}", r.len());
            }
        }
        Ok(())
    }

    /// `out = finish(y)` for one run of channel `c`'s outputs, which lands at `at` in the
    /// whole output.
    #[inline]
    fn row(&self, c: usize, y: &[f32], out: &mut [MaybeUninit<f32>], at: usize) {
        let (a, b) = (self.alpha[c], self.beta[c]);
        match self.residual {
            Some(r) => {
                for ((o, &v), &r) in out.iter_mut().zip(y).zip(&r[at..at + y.len()]) {
                    let v = v * a + b + r;
                    o.write(if self.relu { v.max(0.0) } else { v });
                }
            }
            None => {
                for (o, &v) in out.iter_mut().zip(y) {
                    let v = v * a + b;
                    o.write(if self.relu { v.max(0.0) } else { v });
                }
            }
        }
    }

    /// The same over a whole `[B, C, H, W]` output, in a pass of its own.
    fn apply(&self, y: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = y.dims4()?;
        self.check(&[b, c, h, w])?;
        let plane = (h * w).max(1);
        let out = with_f32(y, |ys| {
            let mut out = vec![0f32; ys.len()];
            out.par_chunks_mut(plane)
                .zip(ys.par_chunks(plane))
                .enumerate()
                .for_each(|(p, (o, v))| {
                    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and every value written
                    // through the view is an initialised `f32`.
                    let o: &mut [MaybeUninit<f32>] =
                        unsafe { std::slice::from_raw_parts_mut(o.as_mut_ptr().cast(), o.len()) };
                    self.row(p % c, v, o, p * plane)
                });
            out
        })?
        .ok_or_else(not_f32_cpu)?;
        Tensor::from_vec(out, (b, c, h, w), y.device())
    }
}

/// The error of a ResNet tensor that is not f32 on the CPU (the only kind the tower builds).
pub(super) fn not_f32_cpu() -> candle_core::Error {
    candle_core::Error::Msg("the ResNet runs on f32 CPU tensors".into())
}

/// Where output pixels read the input.
struct Geometry {
    h: usize,
    w: usize,
    ow: usize,
    k: usize,
    padding: usize,
    stride: usize,
}

impl Geometry {
    /// The patch matrix of output pixels `p0..p1` of one image (`[c_in, H, W]`): row
    /// `(kh * k + kw) * c_in + ci`, column `p - p0`, holds the input at `(ci, oy * stride + kh -
    /// padding, ox * stride + kw - padding)`, zero outside the image.
    fn patches(&self, image: &[f32], c_in: usize, (p0, p1): (usize, usize), col: &mut [f32]) {
        let n = p1 - p0;
        let plane = self.h * self.w;
        for kh in 0..self.k {
            for kw in 0..self.k {
                for ci in 0..c_in {
                    let row = &mut col[((kh * self.k + kw) * c_in + ci) * n..][..n];
                    self.fill_row(&image[ci * plane..][..plane], (kh, kw), p0, row);
                }
            }
        }
    }

    /// One patch row, a run of output pixels along an output row at a time: the input pixels
    /// inside the image copied (one slice at stride 1), zeros for the padding around them.
    fn fill_row(&self, plane: &[f32], (kh, kw): (usize, usize), p0: usize, row: &mut [f32]) {
        let s = self.stride;
        // Output columns whose input column `ox * s + kw - padding` lies inside the image.
        let first = self.padding.saturating_sub(kw).div_ceil(s);
        let end = if self.w + self.padding > kw {
            ((self.w + self.padding - kw - 1) / s + 1).min(self.ow)
        } else {
            0
        };
        let mut i = 0;
        while i < row.len() {
            let (oy, ox0) = ((p0 + i) / self.ow, (p0 + i) % self.ow);
            let run = (self.ow - ox0).min(row.len() - i);
            let dst = &mut row[i..i + run];
            let iy = (oy * s + kh) as isize - self.padding as isize;
            if iy < 0 || iy >= self.h as isize {
                dst.fill(0.0);
            } else {
                let src = &plane[iy as usize * self.w..][..self.w];
                // This run's columns ox0..ox0 + run: zeros, inside, zeros.
                let lo = first.clamp(ox0, ox0 + run);
                let hi = end.clamp(lo, ox0 + run);
                dst[..lo - ox0].fill(0.0);
                let inside = &mut dst[lo - ox0..hi - ox0];
                if !inside.is_empty() {
                    let x0 = lo * s + kw - self.padding;
                    if s == 1 {
                        inside.copy_from_slice(&src[x0..x0 + inside.len()]);
                    } else {
                        for (d, &v) in inside.iter_mut().zip(src[x0..].iter().step_by(s)) {
                            *d = v;
                        }
                    }
                }
                dst[hi - ox0..].fill(0.0);
            }
            i += run;
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::{Conv2d, Finish};

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0) - 1.0)
            .collect()
    }

    #[test]
    fn bit_identical_to_candles_conv2d() {
        let dev = Device::Cpu;
        // (batch, c_in, h, w, c_out, k, padding, stride): odd sizes, several tiles, the RN50
        // stem (stride 2) and its 3x3 blocks.
        for (b, ci, h, w, co, k, pad, s) in [
            (2, 5, 13, 11, 7, 3, 1, 1),
            (1, 3, 40, 30, 4, 3, 1, 1),
            (3, 3, 33, 29, 8, 3, 1, 2),
            (2, 16, 24, 24, 16, 3, 1, 1),
            (1, 2, 9, 7, 3, 5, 2, 1),
            (1, 4, 8, 8, 6, 3, 0, 1),
            // Padding wider than the kernel's reach, stride 3, a row narrower than the kernel.
            (1, 2, 7, 9, 3, 3, 2, 3),
            (2, 3, 6, 2, 4, 3, 1, 2),
            (1, 1, 5, 5, 2, 7, 3, 1),
            // 1 x 1: candle's per-image product, and its im2col path (stride 2, padding).
            (3, 6, 7, 5, 4, 1, 0, 1),
            (2, 64, 28, 28, 32, 1, 0, 1),
            (2, 5, 9, 9, 3, 1, 1, 2),
        ] {
            let x = Tensor::from_vec(values(b * ci * h * w, 1), (b, ci, h, w), &dev).unwrap();
            let wt = Tensor::from_vec(values(co * ci * k * k, 2), (co, ci, k, k), &dev).unwrap();
            let y = x.conv2d(&wt, pad, s, 1, 1).unwrap();
            let (oh, ow) = (y.dim(2).unwrap(), y.dim(3).unwrap());
            let alpha = values(co, 3);
            let beta = values(co, 4);
            let residual = values(b * co * oh * ow, 5);
            // The BatchNorm, residual and ReLU as candle ops on candle's convolution.
            let a = Tensor::from_vec(alpha.clone(), (1, co, 1, 1), &dev).unwrap();
            let be = Tensor::from_vec(beta.clone(), (1, co, 1, 1), &dev).unwrap();
            let r = Tensor::from_vec(residual.clone(), y.dims(), &dev).unwrap();
            let bn = y.broadcast_mul(&a).unwrap().broadcast_add(&be).unwrap();
            for (with_residual, relu) in [(false, false), (false, true), (true, true)] {
                let mut want = bn.clone();
                if with_residual {
                    want = (want + &r).unwrap();
                }
                if relu {
                    want = want.relu().unwrap();
                }
                let finish = Finish {
                    alpha: &alpha,
                    beta: &beta,
                    residual: with_residual.then_some(&residual[..]),
                    relu,
                };
                let got = Conv2d::new(&wt)
                    .unwrap()
                    .forward(&x, pad, s, &finish)
                    .unwrap();
                assert_eq!(got.dims(), want.dims());
                let (g, e) = (
                    got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                );
                let same = g.iter().zip(&e).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{:?} residual {with_residual} relu {relu}: not bit-identical",
                    (b, ci, h, w, co, k, pad, s)
                );
            }
        }
    }
}
