//! The one driver behind every packed product: splits the output into row blocks and column
//! ranges for rayon, packs the activations of each block once, and runs the format's tiles.

use rayon::prelude::*;

use crate::epilogue::{self, Epilogue};
use crate::layout::{a_block_bytes, tile_rows, TileFormat, NR};
use crate::precision::Isa;

/// The output pointer shared by parallel tasks (matrix tiles, attention heads, the engine's
/// convolutions); each task writes its own part only. Raw pointers are neither `Send` nor `Sync`,
/// so a closure that captures one cannot run on rayon's pool; this wrapper can.
#[derive(Clone, Copy)]
pub struct OutPtr(pub *mut f32);
// SAFETY: the wrapper only carries the address across threads; every write through it is an
// `unsafe` operation of its own, whose caller shows that the tasks' parts are disjoint and that
// the buffer outlives them (rayon's scope joins every task before the owner reads it).
unsafe impl Send for OutPtr {}
// SAFETY: as for `Send`: sharing the address gives no access without `unsafe`.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the `Send` wrapper, not its field).
    pub fn get(self) -> *mut f32 {
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

/// `epi(x @ W)` for the packed matrix `f` (`[k, n]`) and `x` `[m, k]`: the output is cut into
/// row blocks (each packed once, sized for L2) and column ranges, run as rayon tasks, each tile
/// written once by `f`'s micro-kernel and finished while in cache.
///
/// `isa` must be one of [`Isa::available`] for `f`'s precision: [`crate::PackedMatrix`] checks
/// it once, when it packs, and the kernels rely on it (this function does not check again).
pub(crate) fn drive<F: TileFormat>(
    f: &F,
    (k, n): (usize, usize),
    isa: Isa,
    x: &[f32],
    m: usize,
    epi: &Epilogue,
) -> Vec<f32> {
    // Not zeroed: the tiles below write every element (zeroing would be one more pass over
    // the whole output).
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
                // SAFETY: `row < m` and `c0 < n`: inside `out`'s capacity of `m * n`.
                let c = unsafe { ptr.get().add(row * n + c0) };
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
                // SAFETY: the tile, `rows` rows of `cols` floats at stride `n` from `c`, lies
                // inside `out`'s capacity (`row + rows <= m`, `c0 + cols <= n`) and belongs to
                // this task alone (tasks own disjoint panels x column blocks, each tile visited
                // once); the residual (`[m, n]`, checked by `matmul`) holds the
                // `(rows - 1) * n + cols` values from the tile's corner; `a` is this block's
                // packing; `isa` is available (this function's contract).
                unsafe { f.tile(isa, a, p - p0, nb, &tile) };
            }
        }
    });
    // SAFETY: the capacity is `m * n`, and the tiles cover rows 0..m x columns 0..n, each
    // written once above by a task that rayon has joined (a panic would have propagated before
    // this point, dropping `out` with length 0).
    unsafe { out.set_len(m * n) };
    out
}

/// Prefetches the first `NR` floats of `rows` rows at stride `ld` of `x` (into all cache levels).
#[inline(always)]
fn prefetch_rows(x: &[f32], ld: usize, rows: usize) {
    #[cfg(target_arch = "x86_64")]
    for r in 0..rows {
        let p = x[r * ld..].as_ptr();
        // SAFETY: a prefetch is a hint that never faults or changes memory; the addresses are
        // inside `x` (a row holds >= 1 float; the second line may lie past a short row, which a
        // prefetch tolerates, and `wrapping_add` computes it without an in-bounds requirement).
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(16) as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, ld, rows);
}

#[cfg(test)]
mod tests {
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
}
