//! The harness's allocator settings, as an application on this crate would
//! choose them.
//!
//! glibc's malloc hands a freed block of a megabyte or so back to the
//! kernel at once (a thread arena trims its top with `madvise`, larger
//! blocks are `mmap`ed and `munmap`ed), so a member that receives 1 MiB
//! messages page-faults every byte of every body in again: measured, most
//! of the receiver's time at 1 MiB entries, and about a third of the
//! loopback limit instead of nearly all of it. Go's runtime keeps its heap,
//! so etcd never pays this. The harness keeps freed memory for reuse, as
//! an application with large messages would (with these settings, the
//! same `MALLOC_*_` environment variables, or jemalloc or mimalloc); the
//! library itself never touches the process's allocator.
//!
//! `BENCH_GLIBC_DEFAULTS=1` leaves glibc's defaults, to measure both.

/// Keeps up to this much freed memory before trimming, and `mmap`s only
/// blocks larger than the mmap threshold below.
const TRIM_THRESHOLD: i32 = 256 << 20;
/// Blocks up to this size come from the heap, where they are reused.
const MMAP_THRESHOLD: i32 = 64 << 20;

/// Applies the settings above, unless `BENCH_GLIBC_DEFAULTS` is set.
/// Returns whether it did, for the RESULT line.
pub(crate) fn tune() -> bool {
    if std::env::var_os("BENCH_GLIBC_DEFAULTS").is_some() {
        return false;
    }
    // SAFETY: mallopt only changes malloc's parameters; it is called
    // before any thread is started.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
    true
}
