//! CPU kernels: the linear layers of the reduced-precision modes (`y = x @ W (+ bias,
//! activation, residual)` with `W` packed once at load time in the layout its micro-kernel
//! streams) and the fused multi-head attention every precision uses ([`packed_attention`]).
//!
//! Why our own kernels: candle's CPU matmul has no bf16 or int8 arithmetic (its bf16 path widens
//! to f32), so the native dot-product instructions of the CPU (AMX tiles, AVX512-BF16
//! `vdpbf16ps`, AVX512-VNNI `vpdpbusd`) are out of reach through it. f32 runs these kernels on
//! AVX-512 machines (faster than candle's GEMM there, same f32 arithmetic in another order of
//! additions) and candle's GEMM elsewhere ([`runs_packed`]).
//!
//! One driver (behind [`PackedMatrix::matmul`]) splits the output into tiles of `MR x NR`
//! (32 x 32 for AMX) and the rows into blocks whose packed activations fit the L2 cache; each
//! weight format brings its packing and its micro-kernels. The instruction set is picked at run time ([`Isa::detect`]); `CLIP_KERNELS`
//! (`portable`, `avx2`, `avx512`) caps it, which is how the fallbacks are tested on any machine.
//!
//! Unsafe code: the micro-kernels are `unsafe fn`s whose `# Safety` sections name two kinds of
//! precondition, the CPU features of their `#[target_feature]` (guaranteed once, where an [`Isa`]
//! is admitted: [`Isa::available`], checked by [`PackedMatrix::pack`] and by the attention's
//! dispatch) and the extents of the raw pointers they read and write (guaranteed by the driver's
//! tiling). Every `unsafe` block names which of them it relies on.

#![deny(unsafe_op_in_unsafe_fn)]

mod aligned;
mod amx;
mod attention;
mod bf16;
mod drive;
mod epilogue;
mod fma;
mod int8;
mod layout;
mod matrix;
mod precision;
#[cfg(target_arch = "x86_64")]
mod simd;
#[cfg(target_arch = "x86_64")]
mod transpose;

pub use attention::{packed_attention, AttentionKernels, Products, Queries};
pub use drive::OutPtr;
pub use epilogue::Epilogue;
pub use matrix::{runs_packed, PackedMatrix};
pub use precision::{Isa, Precision};
