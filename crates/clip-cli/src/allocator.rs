//! glibc malloc settings for a process that runs models.
//!
//! By default glibc serves every allocation above 128 KiB-32 MiB (a dynamic threshold) with a
//! fresh `mmap` and unmaps it on free, so each layer's output buffer (large at batch 32, largest
//! in a ResNet's early layers) is page-faulted and zeroed by the kernel again on every call, a
//! measurable share of an inference's time. Keeping freed memory in the heap for reuse
//! removes that; the resident size then stays near the peak working set, which it reaches anyway.

/// Serves every allocation from the heap (no `mmap` per large block: the threshold cannot be
/// raised past 32 MiB, and RN50's activations at batch 32 are larger), stops heap trimming, and
/// keeps one heap for all threads. No effect outside glibc.
///
/// One heap (`M_ARENA_MAX` 1): each further thread otherwise gets an arena of 64 MiB heaps, and
/// glibc unmaps such a heap as soon as its last block is freed, whatever the trim setting: a
/// rayon worker allocating a layer output made and dropped a heap per layer, so every batch
/// faulted in fresh pages again. Small blocks still come from per-thread caches without the lock,
/// and a model's allocations are few and large. Where many threads allocate at once the lock
/// shows: `clip serve` on the tiny fixture model (all overhead, no model) is unchanged with its
/// default batching and slower on single-text requests with `--max-batch 1`, at lower RSS
/// (docs/BENCHMARKS.md has the measurements).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        const M_ARENA_MAX: i32 = -8;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: the declaration matches glibc's `int mallopt(int param, int value)`, which takes
        // no pointers and only changes allocator tunables (under glibc's own lock); `main` calls
        // this before any other thread exists, so no allocation races the change.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_ARENA_MAX, 1);
        }
    }
}
