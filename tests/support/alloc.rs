//! A counting global allocator for the no-allocation tests: it counts per thread, so tests
//! running in parallel do not disturb each other. A test binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: dwcp_support::alloc::Counting = dwcp_support::alloc::Counting;
//! ```
//!
//! and measures with [`allocations_in`]. Without that line the count stays at zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to [`System`], counting `alloc`, `alloc_zeroed` and `realloc` on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

thread_local! {
    // Const-initialised, and `Cell<u64>` has no destructor: touching it never allocates and
    // never registers a thread-local destructor, so the allocator may use it at any time.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: never panics, even while the thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made on this thread while running `f` (zero unless [`Counting`] is the
/// binary's global allocator).
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the only addition is a thread-local counter that
// itself never allocates (a const-initialised `Cell` with no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same layout as the caller gave us, which the caller guarantees is valid.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`, as the
        // caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}
