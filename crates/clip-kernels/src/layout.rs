//! How packed operands are laid out: the micro-kernel tile size, how activation rows are grouped
//! and scattered into panels, and the [`TileFormat`] trait each weight format implements.

use crate::amx;
use crate::epilogue;
use crate::precision::Isa;

/// Rows of one micro-kernel tile (14 x 2 accumulators + 2 weight vectors + 1 broadcast: 31 of
/// the 32 AVX-512 registers).
pub(crate) const MR: usize = 14;
/// Columns of one micro-kernel tile: two 16-lane vectors.
pub(crate) const NR: usize = 32;
/// Packed activations of one row block are kept under this size so the block stays in L2 while
/// every weight panel passes over it (each block reads all the weights once: bigger blocks, fewer
/// passes over them).
pub(crate) fn a_block_bytes(isa: Isa) -> usize {
    match isa {
        // Sapphire Rapids and later: 2 MB of L2 a core. With 256 KB blocks the 3072-wide MLP
        // products held one 32-row panel a block and streamed the weights from L3 for every tile.
        Isa::Amx => 1024 * 1024,
        _ => 256 * 1024,
    }
}

/// Rows of one micro-kernel tile, and of one panel of packed activations, for `isa`.
pub(crate) fn tile_rows(isa: Isa) -> usize {
    match isa {
        Isa::Amx => amx::TILE,
        _ => MR,
    }
}

/// u32 words of one packed activation group (a bf16 pair, an int8 quad): the AVX2 kernels, which
/// lack the formats' dot-product instructions, read their groups widened when packed (two f32, four
/// i16: two words), so that they broadcast them straight from memory; every other set one word.
pub(crate) fn a_words(isa: Isa) -> usize {
    match isa {
        Isa::Avx2 => 2,
        _ => 1,
    }
}

/// `k` groups (pairs, quads) of a packed matrix: AMX tiles take them sixteen at a time, so their
/// matrices are padded with zero groups to a multiple of 16.
pub(crate) fn padded_groups(groups: usize, isa: Isa) -> usize {
    match isa {
        Isa::Amx => groups.next_multiple_of(amx::GROUPS),
        _ => groups,
    }
}

/// One packed weight format and its micro-kernels.
pub(crate) trait TileFormat: Sync {
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
    /// `isa` must be one of [`Isa::available`] for this format's precision (the kernels run its
    /// instructions unchecked); `out.c` must be valid for writes of `out.rows <= tile_rows(isa)`
    /// rows of `out.cols <= NR` floats at stride `out.ld`, which nothing else accesses during
    /// the call (they may be uninitialised: the tile writes them all before the epilogue reads
    /// them); bias and residual as for [`epilogue::finish`].
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
pub(crate) fn scatter_row<T: Copy>(isa: Isa, panels: &mut [T], groups: &[T], r: usize) {
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
