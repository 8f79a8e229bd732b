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
    pub(super) fn zeroed(len: usize) -> Self {
        const { assert!(std::mem::align_of::<T>() <= 64) };
        let bytes = len * std::mem::size_of::<T>();
        Aligned {
            lines: vec![Line([0; 64]); bytes.div_ceil(64)],
            len,
            _elements: PhantomData,
        }
    }
}

impl<T> Deref for Aligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the lines hold `len` elements from their start (zeroed bytes are valid `T`s:
        // `Zeroable`), aligned for `T` (64 >= its alignment), owned by `self`.
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
