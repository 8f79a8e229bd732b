//! The per-tile finish of [`super::drive`]: bias, QuickGELU, residual, vectorised.
//!
//! QuickGELU uses a polynomial `exp` (Cephes `expf`, ~1 ulp) instead of libm's scalar call: in
//! the reduced-precision modes the exponentials of the MLP were a fifth of the run time. The f32
//! parity path does not come here.

use super::Isa;

/// `o = act(o + bias) + residual`, element by element.
pub(super) fn finish(
    isa: Isa,
    o: &mut [f32],
    bias: Option<&[f32]>,
    quick_gelu: bool,
    residual: Option<&[f32]>,
) {
    if bias.is_none() && !quick_gelu && residual.is_none() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `PackedMatrix::pack` admits only an `isa` of `Isa::available`, and every
        // precision's `Avx512` level includes avx512f.
        match isa {
            Isa::Avx512 => unsafe { return finish_avx512(o, bias, quick_gelu, residual) },
            Isa::Avx2 => unsafe { return finish_avx2(o, bias, quick_gelu, residual) },
            Isa::Portable => {}
        }
    }
    finish_body(o, bias, quick_gelu, residual)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn finish_avx512(o: &mut [f32], b: Option<&[f32]>, g: bool, r: Option<&[f32]>) {
    finish_body(o, b, g, r)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn finish_avx2(o: &mut [f32], b: Option<&[f32]>, g: bool, r: Option<&[f32]>) {
    finish_body(o, b, g, r)
}

#[inline(always)]
fn finish_body(o: &mut [f32], bias: Option<&[f32]>, quick_gelu: bool, residual: Option<&[f32]>) {
    if let Some(b) = bias {
        for (o, &b) in o.iter_mut().zip(b) {
            *o += b;
        }
    }
    if quick_gelu {
        for o in o.iter_mut() {
            *o = quick_gelu_fast(*o);
        }
    }
    if let Some(r) = residual {
        for (o, &r) in o.iter_mut().zip(r) {
            *o += r;
        }
    }
}

/// `x * sigmoid(1.702 x)`.
#[inline(always)]
fn quick_gelu_fast(x: f32) -> f32 {
    x / (1.0 + exp_fast(-1.702 * x))
}

/// `exp(x)`, branch-free so that loops of it vectorise: `x = n ln2 + r`, `|r| <= ln2 / 2`,
/// Cephes' degree-6 polynomial for `exp(r)`, `2^n` through the exponent bits. Inputs are clamped
/// to the range where `2^n` is a normal float (the result saturates near 1.7e38 and 1.2e-38).
#[inline(always)]
fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_fast_is_within_two_ulp_of_libm() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (a, b) = (super::exp_fast(x), x.exp());
            assert!(((a - b) / b).abs() < 2.5e-7, "exp({x}): {a} vs {b}");
            x += 0.01;
        }
        assert!(super::quick_gelu_fast(-200.0).abs() < 1e-30);
        assert_eq!(super::quick_gelu_fast(200.0), 200.0);
    }
}
