//! What `no_std` leaves to the library itself: the panic handler and a global allocator.
//!
//! Neither is used on the hook path, which has no panic path and never allocates. The
//! allocator exists because the wire crate links `alloc` for its owned (daemon-side) types;
//! it forwards to libc's malloc so that, were it ever reached, it would behave like any C
//! allocation in the host process.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort never returns and is async-signal-safe.
    unsafe { libc::abort() }
}

struct LibcAlloc;

/// malloc's alignment guarantee on 64-bit glibc.
const MALLOC_ALIGN: usize = 16;

// SAFETY: every method forwards to the matching libc function with a size and alignment
// libc accepts; null results are passed on as allocation failures.
unsafe impl GlobalAlloc for LibcAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain malloc.
            return unsafe { libc::malloc(layout.size()) }.cast();
        }
        let mut out: *mut c_void = core::ptr::null_mut();
        // SAFETY: the alignment is a power of two and a multiple of the pointer size.
        if unsafe { libc::posix_memalign(&mut out, layout.align(), layout.size()) } != 0 {
            return core::ptr::null_mut();
        }
        out.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: ptr came from malloc or posix_memalign.
        unsafe { libc::free(ptr.cast()) }
    }
}

#[global_allocator]
static ALLOCATOR: LibcAlloc = LibcAlloc;
