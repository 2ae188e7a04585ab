//! The viewer's `unsafe`: a shared memory mapping of a memfd, which rustix can create but
//! only hand out as a raw pointer. Each block states the invariant it relies on.

use std::os::unix::io::AsFd;

/// A `len`-byte shared, writable mapping, unmapped on drop.
pub struct SharedMap {
    ptr: *mut u32,
    len: usize,
}

impl SharedMap {
    /// Maps the first `len` bytes of `fd` (which must be at least that long).
    pub fn new(fd: impl AsFd, len: usize) -> rustix::io::Result<SharedMap> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh shared mapping at an address the kernel picks, so it overlaps
        // nothing we own; it lives until `drop` unmaps it.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        Ok(SharedMap {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The mapping as XRGB words.
    pub fn words_mut(&mut self) -> &mut [u32] {
        // SAFETY: the mapping is `len` bytes long, readable and writable, and page aligned
        // (so 4-aligned); `&mut self` makes this the only reference into it from here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len / 4) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping `new` made, unmapped once (here); no slice
        // from `words_mut` outlives the borrow of `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}
