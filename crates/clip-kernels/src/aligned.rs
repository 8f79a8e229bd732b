//! Buffers whose first element starts a 64-byte cache line.
//!
//! The kernels load 64-byte rows (an AVX-512 vector of the weights, a row of an AMX tile) at
//! multiples of 64 bytes from the start of the packed weights and activations. A `Vec` of 4-byte
//! elements starts wherever the allocator puts it (glibc: 16 bytes past a line in general), and
//! then every such row straddles two cache lines: two line accesses for one load.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// `len` elements of `T` from the start of a cache line, zero-initialised.
pub(super) struct Aligned<T> {
    lines: Vec<Line>,
    len: usize,
    _elements: PhantomData<T>,
}

impl<T: bytemuck::Zeroable + Copy> Aligned<T> {
    /// `len` zeroed elements (the only constructor: zeroed bytes are valid for a `Zeroable` `T`,
    /// which is what lets `Deref` hand the lines out as `[T]`).
    pub(super) fn zeroed(len: usize) -> Self {
        const { assert!(std::mem::align_of::<T>() <= 64) };
        let n = (len * std::mem::size_of::<T>()).div_ceil(64);
        let mut lines = Vec::with_capacity(n);
        advise_huge_pages(lines.as_mut_ptr() as usize, n * 64);
        lines.resize(n, Line([0; 64]));
        Aligned {
            lines,
            len,
            _elements: PhantomData,
        }
    }
}

/// Asks Linux to back the whole 2 MiB pages inside `[addr, addr + len)` with huge pages (where
/// transparent huge pages are in `madvise` mode, the common default): a model's packed weights
/// are large and written once at load, and faulting them in 4 KiB at a time dominated the
/// kernel time of a large model's start-up. Advice only: refused or unsupported, nothing
/// changes.
fn advise_huge_pages(addr: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        const MADV_HUGEPAGE: i32 = 14;
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        let (start, end) = (addr.next_multiple_of(HUGE), (addr + len) / HUGE * HUGE);
        if end > start {
            // SAFETY: the range lies inside an allocation this process owns (whole pages of
            // it); MADV_HUGEPAGE changes how its pages are backed, never their contents.
            unsafe { madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (addr, len);
}

impl<T> Deref for Aligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: an `Aligned` is only built by `zeroed`, so `T: Zeroable + Copy` with alignment
        // <= 64 (asserted there): the lines hold `len * size_of::<T>()` bytes or more from their
        // start, valid `T`s (zeroed, or written as `T` through `deref_mut`), aligned for `T`,
        // owned by `self` and borrowed with it.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr() as *const T, self.len) }
    }
}

impl<T> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut T, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_a_cache_line_and_holds_zeroes() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let mut b = Aligned::<u32>::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&v| v == 0));
            assert_eq!(b.as_ptr() as usize % 64, 0);
            b.iter_mut().enumerate().for_each(|(i, v)| *v = i as u32);
            assert!(b.iter().enumerate().all(|(i, &v)| v == i as u32));
        }
    }
}
