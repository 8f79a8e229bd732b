//! [`PackedMatrix`]: a weight matrix packed once for one precision's kernels, and its product.

use std::fmt;

use crate::drive::drive;
use crate::epilogue::Epilogue;
use crate::precision::{Isa, Precision};
use crate::{bf16, fma, int8};

/// A `[k, n]` weight matrix packed for one precision's kernels.
///
/// Packed once at load, in the layout its micro-kernel streams, so that a product reads the
/// weights in order, once per row block; it also fixes the kernel set ([`PackedMatrix::isa`]),
/// checked against the CPU once, so that no tile re-checks it.
pub struct PackedMatrix {
    k: usize,
    n: usize,
    isa: Isa,
    data: Packed,
}

/// The packed weights of each format.
enum Packed {
    F32(fma::FmaMatrix<f32>),
    Bf16(bf16::Bf16Matrix),
    F16(fma::FmaMatrix<half::f16>),
    Int8(int8::Int8Matrix),
}

impl fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PackedMatrix({}x{} {} {:?})",
            self.k,
            self.n,
            self.precision(),
            self.isa
        )
    }
}

impl PackedMatrix {
    /// Packs `w` where `w(k, n)` is element `[k, n]` of the `[k, n]` matrix (so a `[out, in]`
    /// torch weight passes `|k, n| w[n * in + k]`). `isa` must be one of [`Isa::available`] for
    /// `precision`: the kernels run that CPU's instructions, so asking for others is refused here,
    /// once, rather than checked in every tile.
    pub fn pack(
        k: usize,
        n: usize,
        precision: Precision,
        isa: Isa,
        w: impl Fn(usize, usize) -> f32 + Sync,
    ) -> PackedMatrix {
        assert!(
            Isa::available(precision).contains(&isa),
            "{isa:?} kernels for {precision} need CPU features this machine lacks"
        );
        let data = match precision {
            Precision::Bf16 => Packed::Bf16(bf16::Bf16Matrix::pack(k, n, isa, &w)),
            Precision::F16 => Packed::F16(fma::FmaMatrix::pack(k, n, &w)),
            Precision::Int8 => Packed::Int8(int8::Int8Matrix::pack(k, n, isa, &w)),
            Precision::F32 => Packed::F32(fma::FmaMatrix::pack(k, n, &w)),
        };
        PackedMatrix { k, n, isa, data }
    }

    /// Rows of `W`: the width of the activations it multiplies.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of `W`: the width of the product.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The kernel set it was packed for (and runs on).
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The precision of its weights and products.
    pub fn precision(&self) -> Precision {
        match self.data {
            Packed::F32(_) => Precision::F32,
            Packed::Bf16(_) => Precision::Bf16,
            Packed::F16(_) => Precision::F16,
            Packed::Int8(_) => Precision::Int8,
        }
    }

    /// Bytes held by the packed weights.
    pub fn bytes(&self) -> usize {
        match &self.data {
            Packed::F32(b) => b.bytes(),
            Packed::Bf16(b) => b.bytes(),
            Packed::F16(b) => b.bytes(),
            Packed::Int8(b) => b.bytes(),
        }
    }

    /// `epilogue(x @ W)` for `x` `[m, k]` row-major; returns `[m, n]` row-major.
    pub fn matmul(&self, x: &[f32], m: usize, epi: &Epilogue) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "activations are not [m, k]");
        if let Some(b) = epi.bias {
            assert_eq!(b.len(), self.n, "bias is not [n]");
        }
        if let Some(r) = epi.residual {
            assert_eq!(r.len(), m * self.n, "residual is not [m, n]");
        }
        match &self.data {
            Packed::F32(b) => drive(b, (self.k, self.n), self.isa, x, m, epi),
            Packed::Bf16(b) => drive(b, (self.k, self.n), self.isa, x, m, epi),
            Packed::F16(b) => drive(b, (self.k, self.n), self.isa, x, m, epi),
            Packed::Int8(b) => drive(b, (self.k, self.n), self.isa, x, m, epi),
        }
    }
}

/// Whether the linear layers of `precision` run on these kernels with `isa`: always for the
/// reduced precisions; for f32 only with AVX-512 (below it candle's GEMM is the faster one).
pub fn runs_packed(precision: Precision, isa: Isa) -> bool {
    precision != Precision::F32 || isa >= Isa::Avx512
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Naive `[m, k] @ [k, n]` in f64 after rounding both sides as the format does.
    fn reference(x: &[f32], w: &[f32], m: usize, k: usize, n: usize, epi: &Epilogue) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += x[i * k + p] as f64 * w[p * n + j] as f64;
                }
                let mut v = s as f32;
                if let Some(b) = epi.bias {
                    v += b[j];
                }
                if epi.quick_gelu {
                    v = (v as f64 / (1.0 + (-1.702 * v as f64).exp())) as f32;
                }
                if let Some(r) = epi.residual {
                    v += r[i * n + j];
                }
                out[i * n + j] = v;
            }
        }
        out
    }

    fn round_bf16(v: &[f32]) -> Vec<f32> {
        v.iter()
            .map(|&x| half::bf16::from_f32(x).to_f32())
            .collect()
    }

    fn round_f16(v: &[f32]) -> Vec<f32> {
        v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (0, 5, 3),
        (2, 0, 3),
        (1, 1, 1),
        (1, 7, 129),
        (7, 3, 33),
        (14, 64, 32),
        (15, 129, 7),
        (129, 65, 100),
        (30, 768, 48),
        (70, 600, 64),
        (3, 1030, 17),
    ];

    /// Every shape, every kernel set this CPU has, with and without an epilogue.
    fn check(precision: Precision, tol: impl Fn(usize) -> f32) {
        for &(m, k, n) in SHAPES {
            let x = values(m * k, (m * 1000 + k) as u64);
            let w = values(k * n, (k * 1000 + n) as u64 + 7);
            let bias = values(n, 99);
            let residual = values(m * n, 5);
            let (xr, wr) = match precision {
                Precision::Bf16 => (round_bf16(&x), round_bf16(&w)),
                Precision::F16 => (x.clone(), round_f16(&w)),
                _ => (x.clone(), w.clone()),
            };
            for isa in Isa::available(precision) {
                let packed = PackedMatrix::pack(k, n, precision, isa, |p, j| w[p * n + j]);
                for epi in [
                    Epilogue::default(),
                    Epilogue {
                        bias: Some(&bias),
                        quick_gelu: true,
                        residual: Some(&residual),
                    },
                ] {
                    let want = reference(&xr, &wr, m, k, n, &epi);
                    let got = packed.matmul(&x, m, &epi);
                    let worst = want
                        .iter()
                        .zip(&got)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(
                        worst <= tol(k),
                        "{precision} {isa:?} m={m} k={k} n={n}: max abs diff {worst} > {}",
                        tol(k)
                    );
                }
            }
        }
    }

    #[test]
    fn bf16_matches_a_naive_product_of_the_rounded_values() {
        // Only the f32 accumulation order differs.
        check(Precision::Bf16, |k| 2e-6 * k as f32 + 1e-5);
    }

    #[test]
    fn f32_matches_a_naive_product() {
        check(Precision::F32, |k| 2e-6 * k as f32 + 1e-5);
    }

    #[test]
    fn f16_matches_a_naive_product_with_half_weights() {
        check(Precision::F16, |k| 2e-6 * k as f32 + 1e-5);
    }

    #[test]
    fn int8_stays_within_its_quantisation_error() {
        // Per-row uint8 activations (step <= 2/255) and per-column int8 weights (step <= 1/127):
        // each product errs by at most ~|x| * 1/254 + |w| * 1/255; sums grow with sqrt(k)-ish but
        // bound them linearly.
        check(Precision::Int8, |k| k as f32 * 0.009 + 1e-4);
    }

    #[test]
    fn int8_is_exact_on_values_it_represents() {
        // Weights on multiples of 1/127 of their column maximum (1: row 0) and activations on the
        // uint8 grid of their row (range [-1, 127/128]: scale 1/128, zero point 128) reproduce
        // the f32 product to rounding.
        let (m, k, n) = (9, 40, 35);
        let mut w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 37 % 255) as f32 - 127.0) / 127.0)
            .collect();
        w[..n].fill(1.0);
        let mut x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 11 % 256) as f32 - 128.0) / 128.0)
            .collect();
        for row in x.chunks_mut(k) {
            row[0] = -1.0;
            row[1] = 127.0 / 128.0;
        }
        let want = reference(&x, &w, m, k, n, &Epilogue::default());
        for isa in Isa::available(Precision::Int8) {
            let packed = PackedMatrix::pack(k, n, Precision::Int8, isa, |p, j| w[p * n + j]);
            let got = packed.matmul(&x, m, &Epilogue::default());
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() < 1e-4, "{isa:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn int8_kernel_sets_agree_bit_for_bit() {
        // Every set sums the same integers exactly and dequantises with the same two products,
        // so they differ from the portable kernel in no bit (QuickGELU aside: its vector `exp`
        // fuses multiply-adds). Odd shapes: partial AVX2 passes of rows and columns, k not a
        // multiple of four.
        for (m, k, n) in [(1, 7, 1), (13, 129, 37), (20, 64, 33), (29, 300, 70)] {
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 37 % 97) as f32 - 48.0) / 31.0)
                .collect();
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 11 % 89) as f32 - 30.0) / 17.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 7.0 - 2.0).collect();
            let residual: Vec<f32> = (0..m * n).map(|i| (i % 13) as f32 - 6.0).collect();
            for epi in [
                Epilogue::default(),
                Epilogue {
                    bias: Some(&bias),
                    quick_gelu: false,
                    residual: Some(&residual),
                },
            ] {
                let run = |isa| {
                    PackedMatrix::pack(k, n, Precision::Int8, isa, |p, j| w[p * n + j])
                        .matmul(&x, m, &epi)
                };
                let want = run(Isa::Portable);
                for isa in Isa::available(Precision::Int8) {
                    let got = run(isa);
                    for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                        assert_eq!(
                            a.to_bits(),
                            b.to_bits(),
                            "{isa:?} {m}x{k}x{n} [{i}]: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
