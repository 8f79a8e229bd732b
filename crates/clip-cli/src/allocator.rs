//! glibc malloc settings for a process that runs models.
//!
//! By default glibc serves every allocation above 128 KiB-32 MiB (a dynamic threshold) with a
//! fresh `mmap` and unmaps it on free, so each layer's output buffer (up to ~20 MB for ViT-B/32 at
//! batch 32, ~100 MB for a ResNet's early layers) is page-faulted and zeroed by the kernel again
//! on every call: a tenth or more of an inference's time on this project's machines. Keeping freed
//! memory in the heap for reuse removes that; the resident size then stays near the peak working
//! set, which it reaches anyway.

/// Serves every allocation from the heap (no `mmap` per large block: the threshold cannot be
/// raised past 32 MiB, and RN50's activations at batch 32 are larger: page faults were ~15% of
/// its time, +12-23% img/s without them, peak RSS +8%) and stops heap trimming. No effect outside
/// glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes allocator tunables; called before any other thread runs.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}
