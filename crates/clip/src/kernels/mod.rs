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

mod aligned;
mod amx;
mod attention;
mod bf16;
mod epilogue;
mod fma;
mod int8;
#[cfg(target_arch = "x86_64")]
mod transpose;

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

pub use attention::{packed_attention, AttentionKernels, Products, Queries};

/// Rows of one micro-kernel tile (14 x 2 accumulators + 2 weight vectors + 1 broadcast: 31 of
/// the 32 AVX-512 registers).
pub(crate) const MR: usize = 14;
/// Columns of one micro-kernel tile: two 16-lane vectors.
pub(crate) const NR: usize = 32;
/// Packed activations of one row block are kept under this size so the block stays in L2 while
/// every weight panel passes over it (each block reads all the weights once: bigger blocks, fewer
/// passes over them).
fn a_block_bytes(isa: Isa) -> usize {
    match isa {
        // Sapphire Rapids and later: 2 MB of L2 a core. With 256 KB blocks the 3072-wide MLP
        // products held one 32-row panel a block and streamed the weights from L3 for every tile.
        Isa::Amx => 1024 * 1024,
        _ => 256 * 1024,
    }
}

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
    pub const ALL: [Precision; 4] = [Self::F32, Self::Bf16, Self::F16, Self::Int8];

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
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                v.push(Isa::Avx2);
            }
            let f = is_x86_feature_detected!("avx512f");
            let native = match precision {
                Precision::F32 => f,
                Precision::Bf16 => f && is_x86_feature_detected!("avx512bf16"),
                Precision::F16 => f,
                Precision::Int8 => {
                    f && is_x86_feature_detected!("avx512bw")
                        && is_x86_feature_detected!("avx512vnni")
                }
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

/// What follows the product, applied to each finished tile while it is in cache.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Added to every row (`[n]`).
    pub bias: Option<&'a [f32]>,
    /// QuickGELU `x * sigmoid(1.702 x)` after the bias (exact GELU models apply theirs after).
    pub quick_gelu: bool,
    /// Added last (`[m, n]`, row-major), after the activation.
    pub residual: Option<&'a [f32]>,
}

/// Whether the linear layers of `precision` run on these kernels with `isa`: always for the
/// reduced precisions; for f32 only with AVX-512 (below it candle's GEMM is the faster one).
pub fn runs_packed(precision: Precision, isa: Isa) -> bool {
    precision != Precision::F32 || isa >= Isa::Avx512
}

/// Rows of one micro-kernel tile, and of one panel of packed activations, for `isa`.
fn tile_rows(isa: Isa) -> usize {
    match isa {
        Isa::Amx => amx::TILE,
        _ => MR,
    }
}

/// u32 words of one packed activation group (a bf16 pair, an int8 quad): the AVX2 kernels, which
/// lack the formats' dot-product instructions, read their groups widened when packed (two f32, four
/// i16: two words), so that they broadcast them straight from memory; every other set one word.
fn a_words(isa: Isa) -> usize {
    match isa {
        Isa::Avx2 => 2,
        _ => 1,
    }
}

/// `k` groups (pairs, quads) of a packed matrix: AMX tiles take them sixteen at a time, so their
/// matrices are padded with zero groups to a multiple of 16.
fn padded_groups(groups: usize, isa: Isa) -> usize {
    match isa {
        Isa::Amx => groups.next_multiple_of(amx::GROUPS),
        _ => groups,
    }
}

/// A `[k, n]` weight matrix packed for one precision's kernels.
pub struct PackedMatrix {
    k: usize,
    n: usize,
    isa: Isa,
    data: Packed,
}

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

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

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

/// One packed weight format and its micro-kernels.
trait Format: Sync {
    /// Packed activations of a block of rows, in panels of [`tile_rows`] rows.
    type Panels: Send + Sync;

    /// Bytes of one packed activation row for `isa`'s kernels (sizes the row blocks).
    fn a_row_bytes(&self, isa: Isa) -> usize;
    /// Packs `rows` rows of `x` (`[rows, k]`) into panels of [`tile_rows`] rows (the last
    /// zero-padded): `[panel][group][MR]` for the vector kernels, whole tiles for AMX.
    fn pack_a(&self, isa: Isa, x: &[f32], rows: usize) -> Self::Panels;
    /// Writes the `out.rows x out.cols` tile of `panels[panel] @ W[:, nb*NR..]` to `out.c` (row
    /// stride `out.ld`), finished by `out`'s epilogue.
    ///
    /// # Safety
    /// As [`epilogue::finish`]: `out` must describe valid memory; `isa` must be one of
    /// [`Isa::available`] for this format's precision.
    unsafe fn tile(
        &self,
        isa: Isa,
        a: &Self::Panels,
        panel: usize,
        nb: usize,
        out: &epilogue::Tile,
    );
}

/// Writes one activation row's packed groups (`k` elements, pairs or quads, as the format groups
/// them) where `isa`'s kernels read row `r` of the block: strided into its `MR`-row panel
/// (`[panel][group][MR]`), or into AMX tiles ([`amx::tile_offset`]).
fn scatter_row<T: Copy>(isa: Isa, panels: &mut [T], groups: &[T], r: usize) {
    let g = groups.len();
    if isa == Isa::Amx {
        for (s, chunk) in groups.chunks(amx::GROUPS).enumerate() {
            panels[amx::tile_offset(g, r, s)..][..chunk.len()].copy_from_slice(chunk);
        }
        return;
    }
    let panel = &mut panels[(r / MR) * g * MR..][..g * MR];
    for (i, &v) in groups.iter().enumerate() {
        panel[i * MR + r % MR] = v;
    }
}

/// The output pointer shared by parallel tasks (matrix tiles, attention heads); each task
/// writes its own part only.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the `Send` wrapper, not its field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// How [`drive`] cuts a product into parallel tasks: `m_chunks` row blocks (each at most the
/// cache bound of panels) times `n_chunks` column ranges, all of (nearly) equal size and as many
/// tasks as a multiple of the threads. Cutting by the cache bound alone left a short last block
/// and a task count the threads do not divide: ViT-B/32's int8 products at batch 32 (115 panels,
/// 24 a block) ran as 5 tasks on 2 threads, one thread doing 3 of them while the other idled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    panels: usize,
    nblocks: usize,
    m_chunks: usize,
    n_chunks: usize,
}

impl Split {
    fn new(panels: usize, nblocks: usize, max_block_panels: usize, threads: usize) -> Split {
        let threads = threads.max(1);
        let mut m_chunks = panels.div_ceil(max_block_panels.max(1));
        if m_chunks > 1 {
            // (One block stays one: splitting it would read the weights once per block, which
            // is what bounds a small batch; its columns are split instead.)
            m_chunks = m_chunks.next_multiple_of(threads).min(panels);
        }
        // Enough tasks for every thread (twice over, for balance): split the columns when the
        // rows alone do not give that (small batches), into a multiple of the threads.
        let want = 2 * threads;
        let n_chunks = if m_chunks >= want {
            1
        } else {
            want.div_ceil(m_chunks)
                .next_multiple_of(threads)
                .min(nblocks)
        };
        Split {
            panels,
            nblocks,
            m_chunks: m_chunks.max(1),
            n_chunks: n_chunks.max(1),
        }
    }

    /// Panels `p0..p1` of row block `mi`.
    fn panels(&self, mi: usize) -> (usize, usize) {
        even_range(self.panels, self.m_chunks, mi)
    }

    /// Column blocks `nb0..nb1` of column range `ni`.
    fn blocks(&self, ni: usize) -> (usize, usize) {
        even_range(self.nblocks, self.n_chunks, ni)
    }
}

/// Part `i` of `0..len` cut into `parts` ranges whose lengths differ by at most one.
fn even_range(len: usize, parts: usize, i: usize) -> (usize, usize) {
    (i * len / parts, (i + 1) * len / parts)
}

fn drive<F: Format>(
    f: &F,
    (k, n): (usize, usize),
    isa: Isa,
    x: &[f32],
    m: usize,
    epi: &Epilogue,
) -> Vec<f32> {
    // Not zeroed: the tiles below write every element (a zeroing pass cost ~2% at batch 32).
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    if m == 0 || n == 0 {
        return out;
    }
    let mr = tile_rows(isa);
    let panels = m.div_ceil(mr);
    let nblocks = n.div_ceil(NR);
    let block_panels = (a_block_bytes(isa) / (mr * f.a_row_bytes(isa)).max(1)).max(1);
    let split = Split::new(panels, nblocks, block_panels, rayon::current_num_threads());
    let (m_chunks, n_chunks) = (split.m_chunks, split.n_chunks);
    let rows_of = |mi: usize| {
        let (p0, p1) = split.panels(mi);
        (p0, p1, p0 * mr, (p1 * mr).min(m))
    };
    let pack = |mi: usize| {
        let (_, _, r0, r1) = rows_of(mi);
        f.pack_a(isa, &x[r0 * k..r1 * k], r1 - r0)
    };
    // With the columns split (small batches), every column task needs every row block: pack
    // them once, up front, instead of once per task. Otherwise each task packs its own block
    // right before use, while it is hot in cache.
    let shared: Vec<F::Panels> = if n_chunks > 1 {
        (0..m_chunks).into_par_iter().map(pack).collect()
    } else {
        Vec::new()
    };
    let ptr = OutPtr(out.as_mut_ptr());
    (0..m_chunks * n_chunks).into_par_iter().for_each(|t| {
        let (mi, ni) = (t / n_chunks, t % n_chunks);
        let (p0, p1, _, _) = rows_of(mi);
        let (nb0, nb1) = split.blocks(ni);
        if nb0 >= nb1 {
            return;
        }
        let own;
        let a = match shared.get(mi) {
            Some(a) => a,
            None => {
                own = pack(mi);
                &own
            }
        };
        for nb in nb0..nb1 {
            let c0 = nb * NR;
            let cols = NR.min(n - c0);
            for p in p0..p1 {
                let row = p * mr;
                let rows = mr.min(m - row);
                // SAFETY: tile (row.., c0..) lies inside `out` and belongs to this task alone.
                unsafe {
                    let c = ptr.get().add(row * n + c0);
                    if let Some(res) = epi.residual {
                        // The epilogue reads this tile's residual rows, scattered fragments the
                        // hardware prefetcher does not foresee: ask for them while the tile computes.
                        prefetch_rows(&res[row * n + c0..], n, rows);
                    }
                    let tile = epilogue::Tile {
                        c,
                        ld: n,
                        rows,
                        cols,
                        bias: epi.bias.map(|b| &b[c0..c0 + cols]),
                        quick_gelu: epi.quick_gelu,
                        residual: epi.residual.map(|res| &res[row * n + c0..]),
                    };
                    f.tile(isa, a, p - p0, nb, &tile);
                }
            }
        }
    });
    // SAFETY: the tiles cover rows 0..m x columns 0..n, each written once above.
    unsafe { out.set_len(m * n) };
    out
}

/// Prefetches the first `NR` floats of `rows` rows at stride `ld` of `x` (into all cache levels).
#[inline(always)]
fn prefetch_rows(x: &[f32], ld: usize, rows: usize) {
    #[cfg(target_arch = "x86_64")]
    for r in 0..rows {
        let p = x[r * ld..].as_ptr();
        // SAFETY: prefetching is a hint; the addresses are inside `x` (a row holds >= 1 float;
        // the second line may lie past a short row, which a prefetch tolerates).
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(16) as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, ld, rows);
}

/// The passes an AVX2 kernel covers a `rows x cols` tile (`cols <= NR`) in, with its 16 ymm
/// registers: `width` columns (16 for the f32 sums, two 8-lane vectors; 8 for int8's pairs of
/// partial sums) by up to `max_rows` rows; `pass(r0, c0, rows, cols)` for each, every pass a
/// stream over `k`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx2_passes(
    (rows, cols): (usize, usize),
    (max_rows, width): (usize, usize),
    mut pass: impl FnMut(usize, usize, usize, usize),
) {
    for c0 in (0..cols).step_by(width) {
        let n = (cols - c0).min(width);
        let mut r0 = 0;
        while r0 < rows {
            let r = (rows - r0).min(max_rows);
            pass(r0, c0, r, n);
            r0 += r;
        }
    }
}

/// Stores the first `rows` rows x `n` columns of AVX2 accumulators (two 8-lane vectors a row).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_rows<const R: usize>(
    acc: &[[std::arch::x86_64::__m256; 2]; R],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    n: usize,
) {
    use std::arch::x86_64::_mm256_storeu_ps;
    let mut row = [0f32; 16];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
        _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
        std::ptr::copy_nonoverlapping(row.as_ptr(), out.add(r * ldc), n);
    }
}

/// The mask of a 16-lane vector's first `n` lanes (all 16 for `n >= 16`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lanes(n: usize) -> u16 {
    ((1u32 << n.min(16)) - 1) as u16
}

/// `row[i..i + 16]`, zeros past the row's end.
///
/// # Safety
/// The CPU must have avx512f.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load16(row: &[f32], i: usize) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::_mm512_maskz_loadu_ps;
    // Masked-off lanes are not read, so the address may lie past the row.
    let mask = lanes(row.len().saturating_sub(i));
    _mm512_maskz_loadu_ps(mask, row.as_ptr().wrapping_add(i))
}

/// Column masks of a tile's two 16-lane halves.
#[cfg(target_arch = "x86_64")]
fn lane_masks(cols: usize) -> (u16, u16) {
    (lanes(cols), lanes(cols.saturating_sub(16)))
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

    #[test]
    fn splits_are_even_and_a_multiple_of_the_threads() {
        use super::Split;
        // (panels, column blocks, cache bound in panels, threads)
        for (panels, nblocks, bound, threads) in [
            (115, 96, 24, 2),
            (115, 72, 12, 2),
            (115, 24, 6, 2),
            (23, 64, 18, 2),
            (4, 72, 1000, 2),
            (1, 16, 1000, 2),
            (1, 1, 1000, 2),
            (7, 3, 2, 3),
            (1000, 5, 7, 16),
            (9, 100, 1, 1),
        ] {
            let s = Split::new(panels, nblocks, bound, threads);
            let tasks = s.m_chunks * s.n_chunks;
            let mut rows = vec![0usize; panels];
            for mi in 0..s.m_chunks {
                let (p0, p1) = s.panels(mi);
                assert!(p1 - p0 <= bound, "{s:?}: block {mi} over the cache bound");
                rows[p0..p1].iter_mut().for_each(|c| *c += 1);
            }
            assert!(
                rows.iter().all(|&c| c == 1),
                "{s:?}: panels not covered once"
            );
            let mut cols = vec![0usize; nblocks];
            for ni in 0..s.n_chunks {
                let (b0, b1) = s.blocks(ni);
                cols[b0..b1].iter_mut().for_each(|c| *c += 1);
            }
            assert!(
                cols.iter().all(|&c| c == 1),
                "{s:?}: columns not covered once"
            );
            let sizes: Vec<usize> = (0..tasks)
                .map(|t| {
                    let ((p0, p1), (b0, b1)) = (s.panels(t / s.n_chunks), s.blocks(t % s.n_chunks));
                    (p1 - p0) * (b1 - b0)
                })
                .collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            // Equal up to one panel or one column block either way.
            assert!(
                hi - lo <= (panels / s.m_chunks + 1).max(nblocks / s.n_chunks + 1),
                "{s:?}: {sizes:?}"
            );
            if tasks >= threads && panels * nblocks >= threads {
                assert!(
                    tasks.is_multiple_of(threads) || s.n_chunks == nblocks || s.m_chunks == panels,
                    "{s:?}: {tasks} tasks on {threads} threads"
                );
            }
        }
        // The case that motivated it: 5 blocks of 24 panels on 2 threads became 6 of 19-20.
        let s = Split::new(115, 96, 24, 2);
        assert_eq!((s.m_chunks, s.n_chunks), (6, 1));
        // One block (a small batch) is not cut: its columns are.
        let s = Split::new(4, 72, 1000, 2);
        assert_eq!((s.m_chunks, s.n_chunks), (1, 4));
    }

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
