//! Intel AMX tiles (Sapphire Rapids and later): `tdpbf16ps` and `tdpbusd` multiply a 16 x 64-byte
//! tile of activations by a 16 x 64-byte tile of weights in one instruction (16 x 16 x 32 bf16 or
//! 16 x 16 x 64 int8 products), several times what `vdpbf16ps` / `vpdpbusd` do per cycle.
//!
//! A micro-kernel computes a `32 x 32` output tile in four accumulator tiles (`tmm0..tmm3`) from
//! two activation tiles (`tmm4`, `tmm5`: rows 0-15 and 16-31) and two weight tiles (`tmm6`,
//! `tmm7`: columns 0-15 and 16-31), the usual 2 x 2 blocking of the eight tile registers.
//!
//! The weights keep the AVX-512 kernels' packing: `[k groups][NR]` 32-bit groups (a bf16 pair or
//! four int8 per column) are exactly the "VNNI" layout a weight tile wants, so the two weight tiles
//! are the left and right halves of 16 consecutive groups (row stride `NR * 4` bytes). Activations
//! are packed tile by tile ([`tile_offset`]): each 16-row x 16-group tile is 1 KB of consecutive
//! memory, in the order the kernel reads them, so a panel streams from cache like the weights do
//! (row-major activations put a tile's 16 rows a whole activation row apart: measured slower).
//!
//! The instructions are written with `asm!`: Rust's AMX intrinsics are unstable. Tile registers
//! are not allocated by the compiler, so they hold their values from one `asm!` block to the next.

use std::cell::Cell;
use std::sync::OnceLock;

/// Rows and columns of one micro-kernel tile (two 16-row tiles by two 16-column tiles).
pub(super) const TILE: usize = 32;
/// 32-bit groups of `k` one activation (or weight) tile spans: 64 bytes a row.
pub(super) const GROUPS: usize = 16;

/// AMX tiles with bf16 (`bf16 = true`) or int8 products are present and the kernel lets this
/// process use them (Linux keeps the 8 KB tile state off until a process asks for it:
/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`).
pub(super) fn available(bf16: bool) -> bool {
    let (tile, b16, i8) = *features();
    tile && if bf16 { b16 } else { i8 }
}

/// `(amx-tile, amx-bf16, amx-int8)`, each false unless the permission was granted.
fn features() -> &'static (bool, bool, bool) {
    static FEATURES: OnceLock<(bool, bool, bool)> = OnceLock::new();
    FEATURES.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            use std::arch::x86_64::{__cpuid, __cpuid_count};
            // Leaf 7 only where the CPU reports it.
            if __cpuid(0).eax < 7 {
                return (false, false, false);
            }
            let edx = __cpuid_count(7, 0).edx;
            let (tile, b16, i8) = (edx >> 24 & 1 == 1, edx >> 22 & 1 == 1, edx >> 25 & 1 == 1);
            if !tile || !request_permission() {
                return (false, false, false);
            }
            (tile, b16, i8)
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        (false, false, false)
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_permission() -> bool {
    extern "C" {
        fn syscall(number: std::ffi::c_long, ...) -> std::ffi::c_long;
    }
    const SYS_ARCH_PRCTL: std::ffi::c_long = 158;
    const ARCH_REQ_XCOMP_PERM: std::ffi::c_long = 0x1023;
    const XFEATURE_XTILEDATA: std::ffi::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes which XSAVE features this process
    // may use; it fails (non-zero) on kernels without AMX support.
    unsafe { syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

/// The tile configuration every kernel here uses: palette 1, tiles 0-7 all 16 rows x 64 bytes.
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: Config = Config {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

thread_local! {
    /// Whether this thread has loaded [`CONFIG`]: nothing else in the process configures tiles,
    /// so each thread loads it once instead of once per tile.
    static CONFIGURED: Cell<bool> = const { Cell::new(false) };
}

/// Loads the tile configuration on this thread if it has not been.
///
/// # Safety
/// AMX must be [`available`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn configure() {
    if !CONFIGURED.get() {
        // SAFETY: AMX is available (the caller's contract: the CPU has it and Linux granted this
        // process the tile state), so `ldtilecfg` does not fault; it reads the 64 bytes of
        // `CONFIG` (a valid palette-1 configuration, 64-byte aligned) and writes only the tile
        // configuration, which no compiled code uses.
        unsafe { std::arch::asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        CONFIGURED.set(true);
    }
}

/// One 32 x 32 tile of 4-byte sums on the stack, starting a cache line like the tile rows stored
/// to it (see [`crate::aligned`]).
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
pub(super) struct Sums<T>(pub(super) [T; TILE * crate::layout::NR]);

/// Where group `16 * step` of row `r` starts in packed activations of `groups` groups a row:
/// `[32-row panel][step][16-row half][row][16 groups]`.
pub(super) fn tile_offset(groups: usize, r: usize, step: usize) -> usize {
    let (panel, half, row) = (r / TILE, r % TILE / 16, r % 16);
    panel * TILE * groups + step * TILE * GROUPS + half * 16 * GROUPS + row * GROUPS
}

/// Which dot-product instruction a kernel runs.
#[derive(Clone, Copy)]
pub(super) enum Product {
    /// `tdpbf16ps`: bf16 pairs, f32 sums.
    Bf16,
    /// `tdpbusd`: unsigned activation bytes times signed weight bytes, i32 sums.
    Int8,
}

/// `c[32][32] = a[32 rows][groups] @ b[groups][32]` (f32 or i32 sums, by `product`).
///
/// `a`: one panel laid out by [`tile_offset`]; `b`: group `g`'s 32 columns at `b + g * 32`; `c`:
/// row `r` at `c + r * ldc` (elements of 4 bytes).
///
/// # Safety
/// AMX with `product` must be [`available`]; `groups` a multiple of [`GROUPS`]; `a` valid for 32
/// rows, `b` for `groups` groups and `c` for 32 rows of 32 elements.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn tile(
    product: Product,
    a: *const u32,
    b: *const u32,
    groups: usize,
    c: *mut u32,
    ldc: usize,
) {
    use std::arch::asm;
    // SAFETY: AMX is available (the caller's contract).
    unsafe { configure() };
    // SAFETY: AMX is available and this thread's tiles are configured (just above); `tilezero`
    // touches tile registers only, which no compiled code allocates.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        )
    };
    let (sa, sb) = (GROUPS * 4, crate::layout::NR * 4);
    for (s, g) in (0..groups).step_by(GROUPS).enumerate() {
        // SAFETY: step `s` (groups `g = 16s..16s + 16`, `g < groups`) starts inside the caller's
        // panels: `a`'s 32 rows hold `groups / 16` tiles of 32 x 16 groups, `b` holds `groups`
        // rows of `NR` groups.
        let (a0, a1, b0, b1) = unsafe {
            let a0 = a.add(s * TILE * GROUPS);
            let b0 = b.add(g * crate::layout::NR);
            (a0, a0.add(16 * GROUPS), b0, b0.add(16))
        };
        // One step of 16 groups: two activation tiles, two weight tiles, four products. The
        // instruction is part of the template (`asm!` takes literal strings), hence the macro.
        macro_rules! step {
            ($dot:literal) => {
                // SAFETY: AMX with this product is available and the tiles configured (above).
                // Each `tileloadd` reads 16 rows of 64 bytes: `a0` and `a1` the two 16-row
                // halves of step `s`'s activation tile (rows 64 bytes apart), `b0` and `b1` the
                // left and right 16 columns of groups `g..g + 16` (rows `NR * 4` bytes apart),
                // all inside the caller's panels (`groups` is a multiple of 16). The products
                // write tile registers only.
                unsafe {
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa} * 1]",
                        "tileloadd tmm6, [{b0} + {sb} * 1]",
                        concat!($dot, " tmm0, tmm4, tmm6"),
                        "tileloadd tmm7, [{b1} + {sb} * 1]",
                        concat!($dot, " tmm1, tmm4, tmm7"),
                        "tileloadd tmm5, [{a1} + {sa} * 1]",
                        concat!($dot, " tmm2, tmm5, tmm6"),
                        concat!($dot, " tmm3, tmm5, tmm7"),
                        a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1,
                        sa = in(reg) sa, sb = in(reg) sb,
                        options(nostack, readonly)
                    )
                }
            };
        }
        match product {
            Product::Bf16 => step!("tdpbf16ps"),
            Product::Int8 => step!("tdpbusd"),
        }
    }
    let sc = ldc * 4;
    // SAFETY: AMX is available and configured (above). The four stores write the 16 x 16
    // quarters of the 32 x 32 output, rows `ldc * 4` bytes apart, all inside the 32 rows of 32
    // elements at stride `ldc` that the caller guarantees `c` is valid for.
    unsafe {
        asm!(
            "tilestored [{c00} + {sc} * 1], tmm0",
            "tilestored [{c01} + {sc} * 1], tmm1",
            "tilestored [{c10} + {sc} * 1], tmm2",
            "tilestored [{c11} + {sc} * 1], tmm3",
            c00 = in(reg) c,
            c01 = in(reg) c.add(16),
            c10 = in(reg) c.add(16 * ldc),
            c11 = in(reg) c.add(16 * ldc + 16),
            sc = in(reg) sc,
            options(nostack)
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_offsets_cover_each_packed_group_once() {
        // Runs on every machine (the layout is plain arithmetic): 2 panels of 40 groups padded to
        // 48, every (row, group) lands on its own slot and the panels fill their space exactly.
        let groups = 48;
        let mut seen = vec![false; 2 * TILE * groups];
        for r in 0..2 * TILE {
            for g in 0..groups {
                let at = tile_offset(groups, r, g / GROUPS) + g % GROUPS;
                assert!(!seen[at], "row {r} group {g} collides");
                seen[at] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        // A tile is 16 consecutive rows of 16 groups (stride 64 bytes), as the kernel loads it.
        assert_eq!(
            tile_offset(groups, 1, 0) - tile_offset(groups, 0, 0),
            GROUPS
        );
        assert_eq!(
            tile_offset(groups, 16, 0) - tile_offset(groups, 0, 0),
            16 * GROUPS
        );
    }
}
