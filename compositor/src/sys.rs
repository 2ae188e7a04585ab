//! The compositor's `unsafe`: what neither std nor rustix offers as a safe call (evdev
//! ioctls, smithay's raw shm mapping and dropping its pages, calloop's display source).
//! Each block states the invariant it relies on.

use std::os::unix::io::AsFd;

use rustix::ioctl::{IntegerSetter, Opcode, Updater, ioctl, opcode};
use smithay::reexports::calloop::generic::NoIoDrop;
use smithay::reexports::wayland_server::Display;

/// `EVIOCGBIT(0, 4)`: which event types a device reports (EV_CNT = 32 bits).
pub const EVIOCGBIT_EV: Opcode = opcode::read::<[u8; 4]>(b'E', 0x20);
/// `EVIOCGBIT(EV_KEY, 96)`: which keys a device has (KEY_CNT = 768 bits).
pub const EVIOCGBIT_KEY: Opcode = opcode::read::<[u8; 96]>(b'E', 0x21);
/// `EVIOCGRAB`: exclusive access, so the console does not see the keys too.
pub const EVIOCGRAB: Opcode = opcode::write::<std::ffi::c_int>(b'E', 0x90);

/// The event-type and key bitmaps of an evdev device.
pub fn evdev_bits(fd: impl AsFd) -> Option<([u8; 4], [u8; 96])> {
    let mut ev = [0u8; 4];
    let mut keys = [0u8; 96];
    // SAFETY: both opcodes are EVIOCGBIT reads of exactly the buffer's size; the kernel
    // writes at most that many bytes into our zeroed (initialised) arrays.
    unsafe {
        ioctl(&fd, Updater::<EVIOCGBIT_EV, [u8; 4]>::new(&mut ev)).ok()?;
        ioctl(&fd, Updater::<EVIOCGBIT_KEY, [u8; 96]>::new(&mut keys)).ok()?;
    }
    Some((ev, keys))
}

/// Grabs an evdev device for this open file.
pub fn evdev_grab(fd: impl AsFd) -> rustix::io::Result<()> {
    // SAFETY: EVIOCGRAB takes an int by value; 1 means grab.
    unsafe { ioctl(fd, IntegerSetter::<EVIOCGRAB>::new_usize(1)) }
}

/// Calls `f` on `needed` bytes at `offset` of an shm pool mapping, if they lie inside it.
/// `ptr`/`len` must be the mapping smithay's `with_buffer_contents` hands out.
pub fn with_shm_bytes<R>(
    ptr: *const u8,
    len: usize,
    offset: usize,
    needed: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    if offset.checked_add(needed).is_none_or(|end| end > len) {
        return None;
    }
    // SAFETY: smithay keeps the pool mapping (ptr, len) alive and readable during the
    // with_buffer_contents callback we are called from; [offset, offset + needed) was
    // checked to lie inside it. The slice does not outlive `f`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.add(offset), needed) };
    Some(f(bytes))
}

/// Drops this process's page-table entries for bytes `[offset, offset + len)` of the shm
/// pool mapping `ptr`/`map_len` that smithay's `with_buffer_contents` hands out, rounded
/// out to whole pages inside the mapping. The client's pages themselves stay: the mapping
/// is `MAP_SHARED` of the client's file, and madvise(2) says MADV_DONTNEED on a shared
/// file or shmem mapping only makes the next access "repopulate the memory contents from
/// the up-to-date contents of the underlying mapped file", while "the resident set size
/// of the calling process will be immediately reduced". So a frame that was copied into
/// a scanout buffer no longer counts in our RSS (it is the viewer's memory), and a later
/// read faults it back in unchanged. Returns false if nothing was dropped.
pub fn drop_shared_pages(ptr: *const u8, map_len: usize, offset: usize, len: usize) -> bool {
    let page = rustix::param::page_size();
    let base = ptr as usize;
    // mmap returns page-aligned mappings; anything else is not smithay's pool.
    if !base.is_multiple_of(page) || offset >= map_len {
        return false;
    }
    let Some(end) = offset.checked_add(len).map(|e| e.min(map_len)) else {
        return false;
    };
    // mmap maps whole pages, so rounding the end up stays inside the mapping.
    let first = offset - offset % page;
    let Some(last) = end.checked_next_multiple_of(page) else {
        return false;
    };
    if last <= first {
        return false;
    }
    // SAFETY: [base + first, base + last) lies inside one live mapping: smithay keeps the
    // pool mapped (read lock held) during the with_buffer_contents callback we are called
    // from, `base` is its page-aligned start and `last` is at most its length rounded up
    // to a page, which mmap mapped. The mapping is MAP_SHARED of the client's fd (smithay's
    // `shm::pool::map`), so MADV_DONTNEED discards no data, only this process's page-table
    // entries; no Rust reference into the range is alive here (the pixel slices lived only
    // inside the copy). Should smithay have replaced the pool with its private anonymous
    // stand-in after a SIGBUS, the range only reads as zeros again, as that stand-in
    // already does.
    unsafe {
        rustix::mm::madvise(
            (base + first) as *mut std::ffi::c_void,
            last - first,
            rustix::mm::Advice::LinuxDontNeed,
        )
    }
    .is_ok()
}

/// The display inside calloop's source wrapper.
pub fn display_mut<D>(d: &mut NoIoDrop<Display<D>>) -> &mut Display<D> {
    // SAFETY: calloop forbids replacing or dropping the inner value while its fd is
    // registered; we only dispatch through the reference.
    unsafe { d.get_mut() }
}

/// `std::env::set_var`, for the start of `main` (see `process::ensure_runtime_dir`).
pub fn set_env_single_threaded(key: &str, value: &str) {
    // SAFETY: callers run before any other thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var(key, value) };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use std::os::fd::OwnedFd;

    /// A MAP_SHARED read-write mapping of `fd` (`len` bytes), as smithay maps a shm pool.
    fn map_shared(fd: &OwnedFd, len: usize) -> *mut u8 {
        // SAFETY: a fresh mapping at an address the kernel chooses; the tests unmap it.
        unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        }
        .unwrap()
        .cast()
    }

    fn unmap(ptr: *mut u8, len: usize) {
        // SAFETY: `ptr`/`len` is a mapping made by `map_shared`, no longer used.
        unsafe { rustix::mm::munmap(ptr.cast(), len) }.unwrap();
    }

    /// The `Rss:` of the mapping starting at `ptr`, in kB, from /proc/self/smaps.
    fn rss_kb(ptr: *const u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", ptr as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        assert!(lines.next().is_some(), "mapping {start} not in smaps");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn read_all(ptr: *const u8, len: usize) -> Vec<u8> {
        // SAFETY: `ptr` is a live mapping of at least `len` bytes made by `map_shared`.
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    }

    /// The claim `drop_shared_pages` rests on, checked on the kernel it runs on: on a
    /// MAP_SHARED memfd mapping (a client's wl_shm pool), MADV_DONTNEED takes the pages out
    /// of this mapping's RSS, leaves another mapping of the same memfd (the client's)
    /// resident, and the data reads back unchanged through both and through the fd.
    #[test]
    fn dropping_shared_pages_frees_our_rss_and_keeps_the_data() {
        let page = rustix::param::page_size();
        let len = 64 * page;
        let fd =
            rustix::fs::memfd_create("nekos-test-pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, len as u64).unwrap();
        let client = map_shared(&fd, len);
        let ours = map_shared(&fd, len);
        let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        // SAFETY: `client` is a live, writable mapping of `len` bytes; nothing else
        // references it while it is written.
        unsafe { std::ptr::copy_nonoverlapping(pattern.as_ptr(), client, len) };
        assert_eq!(read_all(ours, len), pattern, "both mappings see one memfd");
        let full = (len / 1024) as u64;
        assert_eq!(rss_kb(ours), full, "reading touched every page of ours");

        // A frame in the middle, not page-aligned: pages 3..=10 are dropped, none else.
        assert!(drop_shared_pages(ours, len, 3 * page + 100, 7 * page));
        assert_eq!(rss_kb(ours), full - (8 * page / 1024) as u64);
        // All of it.
        assert!(drop_shared_pages(ours, len, 0, len));
        assert_eq!(rss_kb(ours), 0, "our RSS for the pool is gone");
        assert_eq!(rss_kb(client), full, "the client's mapping is untouched");

        // The data is the client's and still there: through the fd, the client's mapping
        // and (faulted back in) ours.
        let mut via_fd = vec![0u8; len];
        rustix::io::pread(&fd, &mut via_fd, 0).unwrap();
        assert_eq!(via_fd, pattern);
        assert_eq!(read_all(client, len), pattern);
        assert_eq!(read_all(ours, len), pattern);
        unmap(ours, len);
        unmap(client, len);
    }

    #[test]
    fn drop_shared_pages_refuses_ranges_outside_the_mapping() {
        let page = rustix::param::page_size();
        let fd =
            rustix::fs::memfd_create("nekos-test-pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, (4 * page) as u64).unwrap();
        let map = map_shared(&fd, 4 * page);
        assert!(
            !drop_shared_pages(map, 4 * page, 4 * page, 1),
            "offset past the end"
        );
        assert!(
            !drop_shared_pages(map, 4 * page, 1, usize::MAX),
            "length overflows"
        );
        assert!(
            !drop_shared_pages(map.wrapping_add(1), 4 * page, 0, 1),
            "unaligned base"
        );
        // A length past the end is clipped to the mapping, not refused.
        assert!(drop_shared_pages(map, 4 * page, 0, 100 * page));
        unmap(map, 4 * page);
    }
}
