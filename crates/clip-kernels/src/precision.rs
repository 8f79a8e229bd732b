//! What the kernels are asked for ([`Precision`]) and what they run on ([`Isa`]): the two facts
//! every other module of the crate keys its choices on.

use std::fmt;
use std::str::FromStr;

use crate::amx;

/// Numeric precision of the weights (and of the matrix products) of the model's linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// f32 everywhere: the reference's numbers.
    #[default]
    F32,
    /// Weights and activations rounded to bfloat16 for the products, f32 accumulation
    /// (AVX512-BF16 `vdpbf16ps` where present).
    Bf16,
    /// Weights stored as IEEE half (half the memory), products computed in f32.
    F16,
    /// Weights int8 per output channel, activations uint8 per row (dynamic, asymmetric), i32
    /// accumulation (AVX512-VNNI `vpdpbusd` where present).
    Int8,
}

impl Precision {
    /// Every precision, f32 first (the order the CLI lists them in).
    pub const ALL: [Precision; 4] = [Self::F32, Self::Bf16, Self::F16, Self::Int8];

    /// The lower-case name the CLI takes and prints (what [`FromStr`] parses).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
            Self::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown precision {s:?}: one of f32, bf16, f16, int8"))
    }
}

/// Which micro-kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, compiled for the baseline target.
    Portable,
    /// The portable kernels compiled with AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512 kernels with the format's native instruction (`vdpbf16ps`, `vpdpbusd`,
    /// `vcvtph2ps` + FMA).
    Avx512,
    /// AMX tile products (`tdpbf16ps`, `tdpbusd`) for bf16 and int8, AVX-512 for the rest of the
    /// layer (activation packing, epilogue).
    Amx,
}

impl Isa {
    /// The best kernels this CPU runs for `precision`, capped by `CLIP_KERNELS`
    /// (`portable`, `avx2` or `avx512`; anything else: no cap).
    pub fn detect(precision: Precision) -> Isa {
        let cap = match std::env::var("CLIP_KERNELS").ok().as_deref() {
            Some("portable") => Isa::Portable,
            Some("avx2") => Isa::Avx2,
            Some("avx512") => Isa::Avx512,
            _ => Isa::Amx,
        };
        Self::available(precision)
            .into_iter()
            .filter(|&i| i <= cap)
            .max()
            .unwrap_or(Isa::Portable)
    }

    /// Every kernel set this CPU can run for `precision` (always includes `Portable`).
    pub fn available(precision: Precision) -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2 {
                v.push(Isa::Avx2);
            }
            // Every AVX-512 kernel may use the AVX2 level's instructions too, and the bf16 and
            // int8 ones byte/word masks and 256-bit masked stores: the whole set is checked, not
            // assumed from avx512f (a hypervisor can hide any one of them).
            let f = avx2
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl");
            let native = match precision {
                Precision::F32 | Precision::F16 => f,
                Precision::Bf16 => f && is_x86_feature_detected!("avx512bf16"),
                Precision::Int8 => f && is_x86_feature_detected!("avx512vnni"),
            };
            if native {
                v.push(Isa::Avx512);
                let tiles = match precision {
                    Precision::Bf16 => amx::available(true),
                    Precision::Int8 => amx::available(false),
                    Precision::F32 | Precision::F16 => false,
                };
                if tiles {
                    v.push(Isa::Amx);
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_parse_and_print() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
        }
        assert!("fp8"
            .parse::<Precision>()
            .unwrap_err()
            .contains("one of f32, bf16, f16, int8"));
    }

    #[test]
    fn detection_is_capped_by_the_environment_knob() {
        // Portable is always there; detection never picks something unavailable.
        for p in Precision::ALL {
            let all = Isa::available(p);
            assert_eq!(all[0], Isa::Portable);
            assert!(all.contains(&Isa::detect(p)));
        }
    }
}
